package overlay

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
)

// TestVXLAN: three nodes in mode vxlan; every pod reaches every other
// pod over TCP, UDP and ICMP, keeping its address; a node reaches the
// others' pods from its VTEP address; the kernel holds exactly what the
// package documentation says.
func TestVXLAN(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll(t, nil)
	for _, n := range c.nodes {
		n.serve(t)
	}
	for _, from := range c.nodes {
		if got, want := from.ov.PodMTU(), 1500-Overhead; got != want {
			t.Errorf("%s: PodMTU = %d, want %d", from.name, got, want)
		}
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			t.Run(from.name+"-to-"+to.name, func(t *testing.T) {
				conn, err := dialTCP(from.pod, to.podIP)
				if err != nil {
					t.Fatalf("TCP from pod %s to pod %s: %v", from.podIP, to.podIP, err)
				}
				defer conn.Close()
				if want := netip.AddrPortFrom(from.podIP, 0).Addr().String(); !strings.HasPrefix(conn.seen, want+":") {
					t.Errorf("the server saw the client as %s, want %s (no NAT between pods)", conn.seen, want)
				}
				if err := conn.echo(strings.Repeat("overlay ", 4096)); err != nil {
					t.Errorf("TCP echo: %v", err)
				}
				seen, err := udpAsk(from.pod, to.podIP, "hello")
				if err != nil {
					t.Errorf("UDP from pod %s to pod %s: %v", from.podIP, to.podIP, err)
				} else if !strings.HasPrefix(seen, from.podIP.String()+":") {
					t.Errorf("the UDP server saw %s, want %s", seen, from.podIP)
				}
				res, err := ping(from.pod, to.podIP, 84, false)
				if err != nil || !res.reply {
					t.Errorf("ping from pod %s to pod %s: %+v, %v", from.podIP, to.podIP, res, err)
				}
				// The node itself, from its VTEP address.
				nc, err := dialTCP(from.ns, to.podIP)
				if err != nil {
					t.Fatalf("TCP from node %s to pod %s: %v", from.name, to.podIP, err)
				}
				defer nc.Close()
				if want := VTEPAddr(from.cidr).String() + ":"; !strings.HasPrefix(nc.seen, want) {
					t.Errorf("a connection from node %s came from %s, want its VTEP address %s", from.name, nc.seen, want)
				}
				if res, err := ping(from.ns, to.podIP, 84, false); err != nil || !res.reply {
					t.Errorf("ping from node %s to pod %s: %+v, %v", from.name, to.podIP, res, err)
				}
			})
		}
	}

	// The kernel of n0, entry by entry.
	n0 := c.nodes[0]
	link, err := n0.h.LinkByName(testDevice)
	must(t, err, "VXLAN device")
	vx := link.(*netlink.Vxlan)
	eth0, err := n0.h.LinkByName("eth0")
	must(t, err, "eth0")
	if vx.VxlanId != 1 || vx.Port != 8472 || vx.Learning || !vx.SrcAddr.Equal(n0.ip.AsSlice()) || vx.VtepDevIndex != eth0.Attrs().Index ||
		vx.MTU != 1450 || vx.HardwareAddr.String() != VTEPMAC(n0.ip).String() || vx.Flags&(1<<0) == 0 {
		t.Errorf("VXLAN device: %+v", vx)
	}
	addrs, err := n0.h.AddrList(link, netlink.FAMILY_V4)
	must(t, err, "addresses")
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.42.0.0/32" {
		t.Errorf("VXLAN device addresses %v, want only 10.42.0.0/32", addrs)
	}
	got := n0.kernel(t)
	wanted := want([]peer{
		{name: "n1", nodeIP: c.nodes[1].ip, podCIDRs: []netip.Prefix{c.nodes[1].cidr}},
		{name: "n2", nodeIP: c.nodes[2].ip, podCIDRs: []netip.Prefix{c.nodes[2].cidr}},
	}, links{vxlan: vx.Index, uplink: eth0.Attrs().Index})
	if p := diff(wanted, got); p.size() != 0 {
		t.Errorf("n0's kernel differs from what it should hold: %+v\nhave %+v", p, got)
	}
	if len(got.routes) != 2 || len(got.neighs) != 2 || len(got.fdbs) != 2 {
		t.Errorf("n0's kernel has more than its peers' entries: %+v", got)
	}
	// No route to the node's own pod CIDR but the bridge's.
	routes, err := n0.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipNet(n0.cidr)}, netlink.RT_FILTER_DST)
	must(t, err, "routes")
	for _, r := range routes {
		if r.Protocol != unix.RTPROT_KERNEL {
			t.Errorf("a route to the node's own pod CIDR: %+v", r)
		}
	}
}

// TestPathMTU: the largest packet a pod may send (its MTU, PodMTU) crosses
// the overlay whole, with DF, and is not fragmented on the underlay; one
// byte more is refused by the pod's own route, and, from a pod given a
// larger MTU, by its node with "fragmentation needed" and the overlay's
// MTU.
func TestPathMTU(t *testing.T) {
	c := newTestCluster(t, 2)
	c.startAll(t, nil)
	a, b := c.nodes[0], c.nodes[1]
	mtu := a.ov.PodMTU()

	before := fragCreates(t, a.ns)
	res, err := ping(a.pod, b.podIP, mtu, true)
	if err != nil || !res.reply {
		t.Fatalf("a %d-byte ping with DF from pod to pod: %+v, %v", mtu, res, err)
	}
	if after := fragCreates(t, a.ns); after != before {
		t.Errorf("the node fragmented %d packets carrying a %d-byte ping: the overlay's MTU is too large", after-before, mtu)
	}
	if res, err := ping(a.pod, b.podIP, mtu+1, true); err != nil || !res.tooBig {
		t.Errorf("a %d-byte ping with DF from a pod with MTU %d: %+v, %v; want it refused", mtu+1, mtu, res, err)
	}
	// The node too: its routes to remote pods go through the device.
	if res, err := ping(a.ns, b.podIP, mtu, true); err != nil || !res.reply {
		t.Errorf("a %d-byte ping with DF from the node: %+v, %v", mtu, res, err)
	}
	if res, err := ping(a.ns, b.podIP, mtu+1, true); err != nil || !res.tooBig {
		t.Errorf("a %d-byte ping with DF from the node: %+v, %v; want it refused", mtu+1, res, err)
	}
	// A pod with the uplink's MTU learns the overlay's from its node.
	a.setPodMTU(t, 1500)
	if res, err := ping(a.pod, b.podIP, mtu+1, true); err != nil || res.fragMTU != mtu {
		t.Errorf("a %d-byte ping with DF from a pod with MTU 1500: %+v, %v; want fragmentation needed, MTU %d", mtu+1, res, err, mtu)
	}
	// Without DF it is fragmented and arrives.
	if res, err := ping(a.pod, b.podIP, 4000, false); err != nil || !res.reply {
		t.Errorf("a 4000-byte ping without DF: %+v, %v", res, err)
	}
}

// TestNodeChanges: a deleted Node's route, neighbour and forwarding
// entry disappear from every other node, and its pods become unreachable;
// a Node whose pod CIDR or address changes has its entries replaced.
func TestNodeChanges(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll(t, nil)
	n0, n1, n2 := c.nodes[0], c.nodes[1], c.nodes[2]
	nodes := c.client.CoreV1().Nodes()
	ctx := context.Background()
	for _, n := range []*testNode{n0, n1} {
		if r, ne, f := n.entriesFor(t, n2); !r || !ne || !f {
			t.Fatalf("%s has no entries for n2 to start with: route %v, neighbour %v, fdb %v", n.name, r, ne, f)
		}
	}

	must(t, nodes.Delete(ctx, "n2", metav1.DeleteOptions{}), "deleting Node n2")
	for _, n := range []*testNode{n0, n1} {
		eventually(t, n.name+" removes n2's entries", func() bool {
			r, ne, f := n.entriesFor(t, n2)
			return !r && !ne && !f
		})
		if r, _, _ := n.entriesFor(t, n1); n == n0 && !r {
			t.Errorf("n0 lost its route to n1")
		}
	}
	if res, err := ping(n0.pod, n2.podIP, 84, false); err != nil || res.reply || res.unreach < 0 {
		t.Errorf("ping to a deleted node's pod: %+v, %v; want destination unreachable", res, err)
	}
	eventually(t, "n0 logs the peer's removal", func() bool { return strings.Contains(n0.logs.String(), "peer removed") })

	// n1 gets another pod CIDR and another address.
	n1obj, err := nodes.Get(ctx, "n1", metav1.GetOptions{})
	must(t, err, "Node n1")
	n1obj.Spec.PodCIDR, n1obj.Spec.PodCIDRs = "10.42.11.0/24", []string{"10.42.11.0/24"}
	n1obj.Status.Addresses[1].Address = "100.64.0.111"
	_, err = nodes.Update(ctx, n1obj, metav1.UpdateOptions{})
	must(t, err, "updating Node n1")
	moved := &testNode{ip: netip.MustParseAddr("100.64.0.111"), cidr: netip.MustParsePrefix("10.42.11.0/24")}
	eventually(t, "n0 replaces n1's entries", func() bool {
		r, ne, f := n0.entriesFor(t, n1)
		nr, nne, nf := n0.entriesFor(t, moved)
		return !r && !ne && !f && nr && nne && nf
	})
	s := n0.kernel(t)
	if len(s.routes) != 1 || len(s.neighs) != 1 || len(s.fdbs) != 1 {
		t.Errorf("n0's kernel after the changes: %+v; want n1's new entries only", s)
	}
	eventually(t, "n0 logs the peer's change", func() bool { return strings.Contains(n0.logs.String(), "peer changed") })
}

// TestRestart: an Overlay started again on a namespace an earlier one
// programmed (an agent restart) writes nothing at all — no netlink event
// about the device, its addresses, neighbours, forwarding entries or the
// overlay's routes — and a TCP connection across it keeps working.
func TestRestart(t *testing.T) {
	c := newTestCluster(t, 2)
	c.startAll(t, nil)
	a, b := c.nodes[0], c.nodes[1]
	b.serve(t)
	conn, err := dialTCP(a.pod, b.podIP)
	must(t, err, "TCP across the overlay")
	defer conn.Close()
	must(t, conn.echo("before"), "echo before the restart")

	before := a.snapshot(t)
	events := watchKernel(t, a)
	a.stop()
	a.start(t, nil)
	if evs := events.until(t); len(evs) > 0 {
		t.Errorf("the restarted overlay changed the kernel:\n%s", strings.Join(evs, "\n"))
	}
	if after := a.snapshot(t); after != before {
		t.Errorf("the kernel differs after the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	must(t, conn.echo("after"), "echo after the restart")
	if !strings.Contains(a.logs.String(), "writes=0") {
		t.Errorf("the restarted overlay did not report zero writes:\n%s", a.logs)
	}
}

// TestResyncRepairs: damage done behind the overlay's back (no Node
// changed) is repaired at the next resync, on the overlay's clock.
func TestResyncRepairs(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll(t, nil)
	a, b := c.nodes[0], c.nodes[1]
	b.serve(t)
	before := a.snapshot(t)
	h := a.h
	vxIdx := a.vxlanIndex(t)
	link, err := h.LinkByIndex(vxIdx)
	must(t, err, "VXLAN device")
	s := a.kernel(t)
	must(t, h.RouteDel(toNetlinkRoute(s.routes[0])), "deleting a route")
	must(t, h.NeighDel(toNeigh(vxIdx, s.neighs[1])), "deleting a neighbour")
	must(t, h.NeighDel(toFDB(vxIdx, s.fdbs[0])), "deleting a forwarding entry")
	must(t, h.NeighSet(toFDB(vxIdx, fdb{MAC: "02:48:01:02:03:04", Dst: netip.MustParseAddr("100.64.0.99")})), "adding a forwarding entry")
	must(t, h.RouteAdd(&netlink.Route{LinkIndex: vxIdx, Dst: ipNet(netip.MustParsePrefix("192.0.2.0/24")), Scope: netlink.SCOPE_LINK}), "adding a route")
	must(t, h.LinkSetMTU(link, 1400), "changing the MTU")
	must(t, h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.9/24"))}), "adding an address")
	must(t, h.LinkSetDown(link), "setting the device down")
	if conn, err := dialTCP(a.pod, b.podIP); err == nil {
		conn.Close()
		t.Fatalf("the damage did not break pod-to-pod traffic: the test proves nothing")
	}
	eventually(t, "the resync repairs the damage", func() bool {
		a.clock.Step(DefaultResyncPeriod)
		return a.snapshot(t) == before
	})
	conn, err := dialTCP(a.pod, b.podIP)
	must(t, err, "TCP after the repair")
	conn.Close()
	eventually(t, "the repair is logged", func() bool { return strings.Contains(a.logs.String(), "repaired") })
}

// TestDirect: mode direct routes to peers on the node's subnet through
// the uplink, with no VXLAN device and the uplink's MTU; a peer off the
// subnet is reported and left out.
func TestDirect(t *testing.T) {
	c := newTestCluster(t, 3)
	_, err := c.client.CoreV1().Nodes().Create(context.Background(), node("far", "100.65.0.9", "10.42.9.0/24"), metav1.CreateOptions{})
	must(t, err, "Node far")
	c.startAll(t, func(cfg *Config) { cfg.Mode = ModeDirect })
	for _, n := range c.nodes {
		n.serve(t)
		if n.vxlanIndex(t) != 0 {
			t.Errorf("%s has a VXLAN device in mode direct", n.name)
		}
		if got := n.ov.PodMTU(); got != 1500 {
			t.Errorf("%s: PodMTU = %d in mode direct, want the uplink's 1500", n.name, got)
		}
	}
	checkAllPairs(t, c)
	n0 := c.nodes[0]
	eth0, err := n0.h.LinkByName("eth0")
	must(t, err, "eth0")
	got := n0.kernel(t)
	if len(got.routes) != 2 {
		t.Fatalf("n0's routes: %+v; want one to each of n1 and n2", got.routes)
	}
	for i, r := range got.routes {
		peer := c.nodes[i+1]
		if want := directRouteOn(peer, eth0.Attrs().Index); r != want {
			t.Errorf("route %+v, want %+v", r, want)
		}
	}
	if logs := n0.logs.String(); !strings.Contains(logs, "node far: its IP 100.65.0.9 is not on this node's subnet") {
		t.Errorf("the unreachable peer was not reported:\n%s", logs)
	}
	if len(got.neighs)+len(got.fdbs) != 0 {
		t.Errorf("neighbours or forwarding entries in mode direct: %+v", got)
	}
}

func directRouteOn(n *testNode, uplink int) route {
	return route{Dst: n.cidr, Gw: n.ip, Link: uplink, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST}
}

// TestAuto: mode auto routes directly to the peers on the subnet (the
// VXLAN device carries none of their traffic) and encapsulates for the
// rest.
func TestAuto(t *testing.T) {
	c := newTestCluster(t, 2)
	_, err := c.client.CoreV1().Nodes().Create(context.Background(), node("far", "100.65.0.9", "10.42.9.0/24"), metav1.CreateOptions{})
	must(t, err, "Node far")
	c.startAll(t, func(cfg *Config) { cfg.Mode = ModeAuto })
	n0, n1 := c.nodes[0], c.nodes[1]
	if got := n0.ov.PodMTU(); got != 1450 {
		t.Errorf("PodMTU = %d in mode auto, want 1450 (some peers may need VXLAN)", got)
	}
	vxIdx := n0.vxlanIndex(t)
	if vxIdx == 0 {
		t.Fatalf("no VXLAN device in mode auto")
	}
	stats := func() (tx, rx uint64) {
		l, err := n0.h.LinkByIndex(vxIdx)
		must(t, err, "VXLAN device")
		return l.Attrs().Statistics.TxPackets, l.Attrs().Statistics.RxPackets
	}
	tx0, rx0 := stats()
	c.nodes[1].serve(t)
	conn, err := dialTCP(n0.pod, n1.podIP)
	must(t, err, "TCP to the peer on the subnet")
	must(t, conn.echo(strings.Repeat("direct ", 1000)), "echo")
	conn.Close()
	if tx, rx := stats(); tx != tx0 || rx != rx0 {
		t.Errorf("the VXLAN device carried traffic to a peer on the subnet: tx %d→%d, rx %d→%d", tx0, tx, rx0, rx)
	}
	eth0, err := n0.h.LinkByName("eth0")
	must(t, err, "eth0")
	got := n0.kernel(t)
	farVTEP := netip.MustParseAddr("10.42.9.0")
	wantRoutes := []route{
		directRouteOn(n1, eth0.Attrs().Index),
		{Dst: netip.MustParsePrefix("10.42.9.0/24"), Gw: farVTEP, Link: vxIdx, OnLink: true, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST},
	}
	if fmt.Sprint(got.routes) != fmt.Sprint(wantRoutes) && fmt.Sprint([]route{got.routes[len(got.routes)-1], got.routes[0]}) != fmt.Sprint(wantRoutes) {
		t.Errorf("routes %+v, want %+v", got.routes, wantRoutes)
	}
	if len(got.neighs) != 1 || got.neighs[0].IP != farVTEP || len(got.fdbs) != 1 || got.fdbs[0].Dst != netip.MustParseAddr("100.65.0.9") {
		t.Errorf("neighbours %+v, forwarding entries %+v: want the far peer's only", got.neighs, got.fdbs)
	}
}

// TestModeSwitch: restarting a node's overlay in another mode replaces its
// routes (the device goes in mode direct, comes back in mode vxlan), and
// traffic flows once every node has switched.
func TestModeSwitch(t *testing.T) {
	c := newTestCluster(t, 2)
	c.startAll(t, nil)
	for _, n := range c.nodes {
		n.serve(t)
	}
	for _, mode := range []Mode{ModeDirect, ModeVXLAN, ModeAuto} {
		for _, n := range c.nodes {
			n.start(t, func(cfg *Config) { cfg.Mode = mode })
		}
		n0 := c.nodes[0]
		s := n0.kernel(t)
		if len(s.routes) != 1 {
			t.Fatalf("mode %s: routes %+v, want one", mode, s.routes)
		}
		vx := n0.vxlanIndex(t)
		if (vx == 0) != (mode == ModeDirect) {
			t.Errorf("mode %s: VXLAN device index %d", mode, vx)
		}
		if direct := s.routes[0].Link != vx; direct != (mode != ModeVXLAN) {
			t.Errorf("mode %s: route %+v", mode, s.routes[0])
		}
		checkAllPairs(t, c)
	}
}

// checkAllPairs: every pod reaches every other over TCP.
func checkAllPairs(t *testing.T, c *testCluster) {
	t.Helper()
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			conn, err := dialTCP(from.pod, to.podIP)
			if err != nil {
				t.Errorf("TCP from pod %s to pod %s: %v", from.podIP, to.podIP, err)
				continue
			}
			if err := conn.echo("x"); err != nil {
				t.Errorf("echo from pod %s to pod %s: %v", from.podIP, to.podIP, err)
			}
			conn.Close()
		}
	}
}

// TestCleanup: Cleanup removes the device and the direct routes, leaves
// other routes and links alone, and is idempotent.
func TestCleanup(t *testing.T) {
	for _, mode := range []Mode{ModeVXLAN, ModeAuto, ModeDirect} {
		t.Run(string(mode), func(t *testing.T) {
			c := newTestCluster(t, 2)
			c.startAll(t, func(cfg *Config) { cfg.Mode = mode })
			n0 := c.nodes[0]
			eth0, err := n0.h.LinkByName("eth0")
			must(t, err, "eth0")
			foreign := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("192.0.2.0/24")), Gw: netip.MustParseAddr("100.64.0.1").AsSlice(), Protocol: unix.RTPROT_STATIC}
			must(t, n0.h.RouteAdd(foreign), "a route of someone else's")
			if len(n0.kernel(t).routes) == 0 {
				t.Fatalf("nothing to clean up")
			}
			n0.stop()
			must(t, Cleanup(n0.h, testDevice), "Cleanup")
			if n0.vxlanIndex(t) != 0 {
				t.Errorf("the VXLAN device is still there")
			}
			if s := n0.kernel(t); len(s.routes) != 0 {
				t.Errorf("routes left: %+v", s.routes)
			}
			routes, err := n0.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: foreign.Dst}, netlink.RT_FILTER_DST)
			must(t, err, "routes")
			if len(routes) != 1 {
				t.Errorf("Cleanup removed a route that is not the overlay's")
			}
			must(t, Cleanup(n0.h, testDevice), "Cleanup again")
		})
	}
	t.Run("not a vxlan device", func(t *testing.T) {
		c := newTestCluster(t, 1)
		n0 := c.nodes[0]
		if err := Cleanup(n0.h, testBridge); err == nil || !strings.Contains(err.Error(), "left alone") {
			t.Errorf("Cleanup of a bridge: %v, want it refused", err)
		}
		if _, err := n0.h.LinkByName(testBridge); err != nil {
			t.Errorf("the bridge is gone: %v", err)
		}
	})
}

// TestNewErrors: what New refuses, and what it says.
func TestNewErrors(t *testing.T) {
	c := newTestCluster(t, 1)
	n0 := c.nodes[0]
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"node IP on no interface", func(cfg *Config) { cfg.NodeIP = netip.MustParseAddr("100.64.0.99") }, "no interface of this network namespace holds the node IP 100.64.0.99"},
		{"device name taken by another kind of link", func(cfg *Config) { cfg.Device = testBridge }, "exists and is a bridge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Device: testDevice, NodeName: n0.name, NodeIP: n0.ip, PodCIDR: n0.cidr, Handle: n0.h, Clock: n0.clock}
			tc.edit(&cfg)
			_, err := New(cfg, informers.NewSharedInformerFactory(c.client, 0).Core().V1().Nodes())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
