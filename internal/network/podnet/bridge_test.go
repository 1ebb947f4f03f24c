package podnet

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/havre/havre/internal/network/netnstest"
)

func TestGateway(t *testing.T) {
	for in, want := range map[string]string{"10.42.3.0/24": "10.42.3.1/24", "10.42.3.7/24": "10.42.3.1/24", "fd00:1::/64": "fd00:1::1/64"} {
		if got := Gateway(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("Gateway(%s) = %s, want %s", in, got, want)
		}
	}
}

func addrsOf(t *testing.T, h *netlink.Handle, name string) []string {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.IPNet.String())
	}
	return out
}

// TestEnsureBridge: the agent owns its bridge. Whatever an earlier run
// left on it (another pod CIDR's address), the bridge ends with exactly the
// gateway address, up, with the MTU asked for; CNI's bridge plugin then
// finds the address it expects instead of failing every sandbox with
// "already has an IP address different from".
func TestEnsureBridge(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, h *netlink.Handle)
		mtu   int
	}{
		{name: "missing", setup: func(*testing.T, *netlink.Handle) {}},
		{name: "left by an earlier run with another address", mtu: 1400, setup: func(t *testing.T, h *netlink.Handle) {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = "hvtest0"
			br := &netlink.Bridge{LinkAttrs: attrs}
			if err := h.LinkAdd(br); err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"10.200.0.1/24", "10.201.0.1/16"} {
				ip, n, _ := net.ParseCIDR(a)
				n.IP = ip
				if err := h.AddrAdd(br, &netlink.Addr{IPNet: n}); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h := netnstest.New(t)
			tc.setup(t, h)
			gw := Gateway(netip.MustParsePrefix("10.42.7.0/24"))
			for range 2 { // and again: nothing to change the second time
				if err := EnsureBridge(h, "hvtest0", gw, tc.mtu); err != nil {
					t.Fatal(err)
				}
			}
			if got := addrsOf(t, h, "hvtest0"); len(got) != 1 || got[0] != "10.42.7.1/24" {
				t.Errorf("addresses %v, want just 10.42.7.1/24", got)
			}
			link, _ := h.LinkByName("hvtest0")
			if link.Attrs().Flags&net.FlagUp == 0 {
				t.Error("bridge is down")
			}
			if tc.mtu > 0 && link.Attrs().MTU != tc.mtu {
				t.Errorf("MTU %d, want %d", link.Attrs().MTU, tc.mtu)
			}
			routes, err := h.RouteList(link, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			var dsts []string
			for _, r := range routes {
				if r.Dst != nil {
					dsts = append(dsts, r.Dst.String())
				}
			}
			if len(dsts) != 1 || dsts[0] != "10.42.7.0/24" {
				t.Errorf("routes %v, want the pod CIDR's alone", dsts)
			}
			if err := RemoveBridge(h, "hvtest0"); err != nil {
				t.Fatal(err)
			}
			if _, err := h.LinkByName("hvtest0"); err == nil {
				t.Error("bridge still there after RemoveBridge")
			}
			if err := RemoveBridge(h, "hvtest0"); err != nil {
				t.Errorf("removing a missing bridge: %v", err)
			}
		})
	}
}

// TestEnsureBridgeRefusesAnotherKind: a link of another kind under the
// bridge's name is left alone, with an error saying what to do.
func TestEnsureBridgeRefusesAnotherKind(t *testing.T) {
	_, h := netnstest.New(t)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "hvtest0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "hvtest0p"}); err != nil {
		t.Fatal(err)
	}
	err := EnsureBridge(h, "hvtest0", Gateway(netip.MustParsePrefix("10.42.7.0/24")), 0)
	if err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Fatalf("error %v, want one saying it is not a bridge", err)
	}
	if err := RemoveBridge(h, "hvtest0"); err == nil {
		t.Error("RemoveBridge deleted a veth")
	}
}
