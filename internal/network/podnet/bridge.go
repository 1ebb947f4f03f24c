package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
)

// Gateway is the bridge's address for a node's pod CIDR: the first address
// of the range, with the range's length (10.42.3.1/24 for 10.42.3.0/24).
func Gateway(podCIDR netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(podCIDR.Masked().Addr().Next(), podCIDR.Bits())
}

// EnsureBridge makes the named bridge exist, up, with exactly the gateway
// address of its family (an address another run left — a former pod CIDR,
// another data dir — is removed) and the MTU asked for (0 keeps it). h is
// the netlink handle of the network namespace to work in (nil: the
// process's).
func EnsureBridge(h *netlink.Handle, name string, gateway netip.Prefix, mtu int) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if mtu > 0 {
			attrs.MTU = mtu
		}
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("creating the pod bridge %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("the pod bridge %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("the pod bridge %s: %w", name, err)
	case link.Type() != "bridge":
		return fmt.Errorf("%s exists and is a %s, not a bridge: remove it (ip link delete %s) or name another bridge", name, link.Type(), name)
	}
	if mtu > 0 && link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("setting the MTU of %s to %d: %w", name, mtu, err)
		}
	}
	family := netlink.FAMILY_V4
	if gateway.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.AddrList(link, family)
	if err != nil {
		return fmt.Errorf("listing the addresses of %s: %w", name, err)
	}
	have := false
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if ok && p == gateway {
			have = true
			continue
		}
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		slog.Info("removing an address the pod bridge had from an earlier run", "bridge", name, "address", a.IPNet.String(), "want", gateway.String())
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("removing %s from %s: %w", a.IPNet, name, err)
		}
	}
	if !have {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: gateway.Addr().AsSlice(), Mask: net.CIDRMask(gateway.Bits(), gateway.Addr().BitLen())}}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding %s to %s: %w", gateway, name, err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing %s up: %w", name, err)
		}
	}
	return nil
}

// RemoveBridge deletes the named bridge (its routes go with it); a missing
// bridge is no error. Pods' veths attached to it go with their sandboxes.
func RemoveBridge(h *netlink.Handle, name string) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("%s is a %s, not the pod bridge: left alone", name, link.Type())
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("deleting the pod bridge %s: %w", name, err)
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// Sysctls the pod network needs in the node's network namespace: routing
// between the bridge and the node, and bridged pod-to-pod traffic through
// netfilter (so that a Service reply from a pod on the same bridge is
// un-NATed).
var Sysctls = map[string]string{
	"net/ipv4/ip_forward":                "1",
	"net/bridge/bridge-nf-call-iptables": "1",
}

// SetSysctls writes Sysctls under /proc/sys.
func SetSysctls() error {
	var errs []error
	for k, v := range Sysctls {
		path := "/proc/sys/" + k
		if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("setting %s to %s: %w", strings.ReplaceAll(k, "/", "."), v, err))
		}
	}
	return errors.Join(errs...)
}
