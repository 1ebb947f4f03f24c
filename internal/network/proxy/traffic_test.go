package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testNet is a "node" netns running the table and a "pod" netns with two pod addresses,
// joined by a veth.
type testNet struct {
	node, pod netns.NsHandle
	nodeIP    netip.Addr
	pods      []netip.Addr
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	tn := &testNet{node: newNetns(t), pod: newNetns(t), nodeIP: netip.MustParseAddr("192.168.77.2"),
		pods: []netip.Addr{netip.MustParseAddr("10.42.0.5"), netip.MustParseAddr("10.42.0.6")}}
	nh, err := netlink.NewHandleAt(tn.node)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	ph, err := netlink.NewHandleAt(tn.pod)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	must := func(err error, what string) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hv0"}, PeerName: "hv1", PeerNamespace: netlink.NsFd(tn.pod)}), "veth")
	hv0, err := nh.LinkByName("hv0")
	must(err, "hv0")
	lo, err := nh.LinkByName("lo")
	must(err, "lo")
	must(nh.LinkSetUp(lo), "node lo up")
	must(nh.AddrAdd(hv0, &netlink.Addr{IPNet: prefixNet("10.42.0.1/24")}), "hv0 addr")
	must(nh.AddrAdd(lo, &netlink.Addr{IPNet: prefixNet(tn.nodeIP.String() + "/32")}), "node IP")
	must(nh.LinkSetUp(hv0), "hv0 up")
	must(nh.RouteAdd(&netlink.Route{LinkIndex: hv0.Attrs().Index, Dst: prefixNet("10.43.0.0/16")}), "service route")
	hv1, err := ph.LinkByName("hv1")
	must(err, "hv1")
	plo, err := ph.LinkByName("lo")
	must(err, "pod lo")
	must(ph.LinkSetUp(plo), "pod lo up")
	for _, a := range tn.pods {
		must(ph.AddrAdd(hv1, &netlink.Addr{IPNet: prefixNet(a.String() + "/24")}), "pod addr")
	}
	must(ph.LinkSetUp(hv1), "hv1 up")
	must(ph.RouteAdd(&netlink.Route{LinkIndex: hv1.Attrs().Index, Gw: net.ParseIP("10.42.0.1")}), "pod default route")
	return tn
}

func prefixNet(s string) *net.IPNet {
	ip, n, _ := net.ParseCIDR(s)
	n.IP = ip
	return n
}

// serve starts, in the pod netns, TCP and UDP servers on every pod address that answer with
// their own address.
func (tn *testNet) serve(t testing.TB, tcpPort, udpPort int) {
	t.Helper()
	inNetns(t, tn.pod, func() {
		for _, a := range tn.pods {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(tcpPort)).String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = io.WriteString(c, a.String())
					c.Close()
				}
			}()
			pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, uint16(udpPort)).String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 512)
				for {
					_, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteTo([]byte(a.String()), from)
				}
			}()
		}
	})
}

// dialTCP connects from the node netns and returns what the server said.
func (tn *testNet) dialTCP(t testing.TB, to string) (string, error) {
	var got string
	var err error
	inNetns(t, tn.node, func() {
		var c net.Conn
		c, err = net.DialTimeout("tcp", to, 5*time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var b []byte
		b, err = io.ReadAll(c)
		got = string(b)
	})
	return got, err
}

// udpConn is a UDP socket in the node netns.
func (tn *testNet) udpConn(t testing.TB, to string) *net.UDPConn {
	var c *net.UDPConn
	inNetns(t, tn.node, func() {
		raddr, err := net.ResolveUDPAddr("udp", to)
		if err != nil {
			t.Fatal(err)
		}
		if c, err = net.DialUDP("udp", nil, raddr); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func udpAsk(t testing.TB, c *net.UDPConn) string {
	t.Helper()
	if _, err := c.Write([]byte("?")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("UDP answer: %v", err)
	}
	return string(buf[:n])
}

// TestRealTraffic sends connections through the programmed table between two netns.
func TestRealTraffic(t *testing.T) {
	tn := newTestNet(t)
	tn.serve(t, 8080, 5353)
	bc := testBuildConfig()
	bc.NodeIPs = []netip.Addr{tn.nodeIP}
	both := []discovery.Endpoint{ep("10.42.0.5"), ep("10.42.0.6")}
	services := []*v1.Service{
		svc("default", "web", "10.43.0.20", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30080)),
		svc("default", "empty", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0)),
		svc("default", "sticky", "10.43.0.22", port("http", v1.ProtocolTCP, 80, 0), affinity(600)),
		svc("default", "dns", "10.43.0.23", port("dns", v1.ProtocolUDP, 53, 0)),
	}
	slices := []*discovery.EndpointSlice{
		slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, both...),
		slice("default", "sticky", "sticky-1", []slicePort{tcp("http", 8080)}, both...),
		slice("default", "dns", "dns-1", []slicePort{udp("dns", 5353)}, ep("10.42.0.5")),
	}
	m := Build(bc, services, slices)
	inShard := map[int]bool{}
	for _, s := range services {
		inShard[shardOf(typesNN(s.Namespace, s.Name), m.Shards)] = true
	}
	if len(inShard) < 2 {
		t.Fatalf("the test's Services all hash to one of %d shards: pick other names", m.Shards)
	}
	k, err := newKernel(bc.Table, int(tn.node))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	program(t, k, m)
	t.Cleanup(func() { _ = cleanup(bc.Table, int(tn.node)) })
	isPod := func(s string) bool { return s == "10.42.0.5" || s == "10.42.0.6" }

	t.Run("ClusterIP reaches a pod", func(t *testing.T) {
		seen := map[string]bool{}
		// Random balancing over two endpoints: 64 connections all to one has odds 2^-63.
		for range 64 {
			got, err := tn.dialTCP(t, "10.43.0.20:80")
			if err != nil || !isPod(got) {
				t.Fatalf("got %q, %v", got, err)
			}
			seen[got] = true
		}
		if len(seen) != 2 {
			t.Errorf("balancing reached only %v", seen)
		}
	})
	t.Run("no endpoints: refused at once", func(t *testing.T) {
		_, err := tn.dialTCP(t, "10.43.0.21:80")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want connection refused, got %v", err)
		}
	})
	t.Run("session affinity sticks", func(t *testing.T) {
		first, err := tn.dialTCP(t, "10.43.0.22:80")
		if err != nil || !isPod(first) {
			t.Fatalf("got %q, %v", first, err)
		}
		for range 10 {
			if got, err := tn.dialTCP(t, "10.43.0.22:80"); err != nil || got != first {
				t.Fatalf("affinity broken: first %q, then %q (%v)", first, got, err)
			}
		}
	})
	t.Run("NodePort on the node IP", func(t *testing.T) {
		got, err := tn.dialTCP(t, netip.AddrPortFrom(tn.nodeIP, 30080).String())
		if err != nil || !isPod(got) {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("UDP ClusterIP, stale conntrack removed when the endpoint goes", func(t *testing.T) {
		c := tn.udpConn(t, "10.43.0.23:53")
		if got := udpAsk(t, c); got != "10.42.0.5" {
			t.Fatalf("UDP answer from %q", got)
		}
		// The endpoint moves from .5 to .6; the same client socket must follow.
		slices2 := []*discovery.EndpointSlice{slices[0], slices[1], slice("default", "dns", "dns-1", []slicePort{udp("dns", 5353)}, ep("10.42.0.6"))}
		m2 := Build(bc, services, slices2)
		name := types.NamespacedName{Namespace: "default", Name: "dns"}
		applyChange(t, k, m, m2, name)
		filters := staleUDP(m.Services[name], m2.Services[name])
		h, err := netlink.NewHandleAt(tn.node)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filters...)
		if err != nil || n == 0 {
			t.Fatalf("conntrack delete: %d entries, %v", n, err)
		}
		if got := udpAsk(t, c); got != "10.42.0.6" {
			t.Fatalf("after the endpoint change UDP still answered by %q", got)
		}
	})
}
