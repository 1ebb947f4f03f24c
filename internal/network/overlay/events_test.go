package overlay

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/havre/havre/internal/network/netnstest"
)

// kernelEvents records the netlink notifications of a node's namespace
// that concern the overlay: any link or IPv4 address event, the VXLAN
// device's neighbours and forwarding entries, the routes through it or of
// RouteProtocol. One socket subscribes to all of them, so they arrive in
// the kernel's order.
type kernelEvents struct {
	n    *testNode
	sock *nl.NetlinkSocket
	vx   int

	mu     sync.Mutex
	events []string
	marker bool
	done   chan struct{}
}

// marker is a route the test adds and removes to know it has seen every
// event before.
var marker = netip.MustParsePrefix("192.0.2.77/32")

const markerProto = 73

func watchKernel(t testing.TB, n *testNode) *kernelEvents {
	t.Helper()
	k := &kernelEvents{n: n, vx: n.vxlanIndex(t), done: make(chan struct{})}
	must(t, netnstest.Do(n.ns, func() (err error) {
		k.sock, err = nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_NEIGH)
		return err
	}), "subscribing to netlink events")
	must(t, k.sock.SetReceiveTimeout(&unix.Timeval{Usec: 100_000}), "receive timeout")
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-k.done:
				return
			default:
			}
			msgs, _, err := k.sock.Receive()
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				k.record(fmt.Sprintf("receive error: %v", err))
				return
			}
			for _, m := range msgs {
				k.handle(m)
			}
		}
	}()
	t.Cleanup(func() {
		close(k.done)
		<-stopped
		k.sock.Close()
	})
	return k
}

func (k *kernelEvents) record(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.marker {
		k.events = append(k.events, s)
	}
}

func (k *kernelEvents) handle(m syscall.NetlinkMessage) {
	typ := m.Header.Type
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		msg := nl.DeserializeIfInfomsg(m.Data)
		k.record(fmt.Sprintf("link %d: %d", msg.Index, typ))
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		msg := nl.DeserializeIfAddrmsg(m.Data)
		k.record(fmt.Sprintf("address on %d: %d", msg.Index, typ))
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		ne, err := netlink.NeighDeserialize(m.Data)
		if err == nil && ne.LinkIndex == k.vx {
			k.record(fmt.Sprintf("neighbour %d: %+v", typ, ne))
		}
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		msg := nl.DeserializeRtMsg(m.Data)
		attrs, err := nl.ParseRouteAttrAsMap(m.Data[msg.Len():])
		if err != nil {
			return
		}
		oif := 0
		if a, ok := attrs[unix.RTA_OIF]; ok && len(a.Value) == 4 {
			oif = int(nl.NativeEndian().Uint32(a.Value))
		}
		if msg.Protocol == markerProto {
			if typ == unix.RTM_DELROUTE {
				k.mu.Lock()
				k.marker = true
				k.mu.Unlock()
			}
			return
		}
		if msg.Table == unix.RT_TABLE_MAIN && (oif == k.vx || msg.Protocol == RouteProtocol) {
			dst := attrs[unix.RTA_DST].Value
			k.record(fmt.Sprintf("route %d: dst %v/%d oif %d proto %d", typ, dst, msg.Dst_len, oif, msg.Protocol))
		}
	}
}

// until adds and removes the marker route, waits for its removal's event
// and returns the events recorded before it.
func (k *kernelEvents) until(t testing.TB) []string {
	t.Helper()
	lo, err := k.n.h.LinkByName("lo")
	must(t, err, "lo")
	r := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: ipNet(marker), Protocol: markerProto, Scope: netlink.SCOPE_LINK}
	must(t, k.n.h.RouteAdd(r), "marker route")
	must(t, k.n.h.RouteDel(r), "marker route")
	deadline := time.Now().Add(20 * time.Second)
	for {
		k.mu.Lock()
		done := k.marker
		events := append([]string(nil), k.events...)
		k.mu.Unlock()
		if done {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marker route's removal was never notified")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
