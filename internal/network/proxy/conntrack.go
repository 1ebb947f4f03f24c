package proxy

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// staleUDP lists the conntrack filters for UDP flows that still point at endpoints a
// service port no longer has: without their removal a client's "connection" keeps going
// to the old endpoint for as long as it keeps sending.
func staleUDP(old, new *Fragment) []netlink.CustomConntrackFilter {
	if old == nil || len(old.UDP) == 0 {
		return nil
	}
	type portID struct {
		port, nodePort uint16
		vip            netip.Addr
	}
	now := map[portID]map[netip.Addr]bool{}
	if new != nil {
		for _, u := range new.UDP {
			eps := map[netip.Addr]bool{}
			for _, e := range u.Endpoints {
				eps[e] = true
			}
			now[portID{u.Port, u.NodePort, u.VIPs[0]}] = eps
		}
	}
	var filters []netlink.CustomConntrackFilter
	for _, u := range old.UDP {
		eps := now[portID{u.Port, u.NodePort, u.VIPs[0]}]
		for _, e := range u.Endpoints {
			if eps[e] {
				continue
			}
			for _, vip := range u.VIPs {
				f := &netlink.ConntrackFilter{}
				_ = f.AddProtocol(unix.IPPROTO_UDP)
				_ = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(vip.AsSlice()))
				_ = f.AddPort(netlink.ConntrackOrigDstPort, u.Port)
				_ = f.AddIP(netlink.ConntrackReplySrcIP, net.IP(e.AsSlice()))
				filters = append(filters, f)
			}
			if u.NodePort != 0 {
				f := &netlink.ConntrackFilter{}
				_ = f.AddProtocol(unix.IPPROTO_UDP)
				_ = f.AddPort(netlink.ConntrackOrigDstPort, u.NodePort)
				_ = f.AddIP(netlink.ConntrackReplySrcIP, net.IP(e.AsSlice()))
				filters = append(filters, f)
			}
		}
	}
	return filters
}
