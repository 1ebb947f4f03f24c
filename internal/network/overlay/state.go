package overlay

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// route is a main-table IPv4 route as the overlay compares them: every
// field that tells two routes apart for the kernel (those that make its key
// — Dst, Tos, Priority, Table — and those a delete matches on).
type route struct {
	Dst      netip.Prefix
	Gw       netip.Addr
	Link     int
	OnLink   bool
	Protocol int
	Table    int
	Tos      int
	Priority int
	Scope    int
	Type     int
}

type routeKey struct {
	Dst           netip.Prefix
	Table         int
	Tos, Priority int
}

func (r route) key() routeKey {
	return routeKey{Dst: r.Dst, Table: r.Table, Tos: r.Tos, Priority: r.Priority}
}

// neigh is an IPv4 neighbour (ARP) entry of the VXLAN device.
type neigh struct {
	IP        netip.Addr
	MAC       string // net.HardwareAddr.String()
	Permanent bool
}

// fdb is an entry of the VXLAN device's forwarding database: frames to MAC
// go to the VTEP at Dst.
type fdb struct {
	MAC       string
	Dst       netip.Addr
	Permanent bool
}

// state is the overlay's part of the kernel: what it wants or what it read.
type state struct {
	routes []route
	neighs []neigh
	fdbs   []fdb
}

// links are the interface indexes the wanted entries are on.
type links struct {
	vxlan  int // 0: no VXLAN device (ModeDirect)
	uplink int
}

// want is what the peers need in the kernel.
func want(peers []peer, l links) state {
	var s state
	for _, p := range peers {
		for _, c := range p.podCIDRs {
			r := route{Dst: c, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
			if p.direct {
				r.Gw, r.Link = p.nodeIP, l.uplink
			} else {
				r.Gw, r.Link, r.OnLink = p.vtep(), l.vxlan, true
			}
			s.routes = append(s.routes, r)
		}
		if p.direct {
			continue
		}
		mac := VTEPMAC(p.nodeIP).String()
		s.neighs = append(s.neighs, neigh{IP: p.vtep(), MAC: mac, Permanent: true})
		s.fdbs = append(s.fdbs, fdb{MAC: mac, Dst: p.nodeIP, Permanent: true})
	}
	return s
}

// plan is what to write, in this order: first what a new or changed peer
// needs from the bottom up (forwarding entry, neighbour, route: a route
// never points at a neighbour the kernel would have to resolve), then the
// removals from the top down.
type plan struct {
	setFDB   []fdb
	setNeigh []neigh
	setRoute []route // replace
	delRoute []route
	delNeigh []neigh
	delFDB   []fdb
}

func (p plan) size() int {
	return len(p.setFDB) + len(p.setNeigh) + len(p.setRoute) + len(p.delRoute) + len(p.delNeigh) + len(p.delFDB)
}

// diff is what turns the kernel's have into want. A route is replaced
// (one message, no gap) when the kernel has another one with its key; a
// removal that a replacement may already have done, or that could match
// a route just written, waits for the next pass over the kernel, which
// the caller makes until there is nothing left to do.
func diff(want, have state) plan {
	var p plan

	haveRoute := make(map[route]bool, len(have.routes))
	for _, r := range have.routes {
		haveRoute[r] = true
	}
	wantRoute := make(map[route]bool, len(want.routes))
	replaced := make(map[routeKey]bool)
	for _, r := range want.routes {
		wantRoute[r] = true
		if !haveRoute[r] {
			p.setRoute = append(p.setRoute, r)
			replaced[r.key()] = true
		}
	}
	for _, r := range have.routes {
		if !wantRoute[r] && !replaced[r.key()] {
			p.delRoute = append(p.delRoute, r)
		}
	}

	haveNeigh := make(map[netip.Addr]neigh, len(have.neighs))
	for _, n := range have.neighs {
		haveNeigh[n.IP] = n
	}
	wantNeigh := make(map[netip.Addr]bool, len(want.neighs))
	for _, n := range want.neighs {
		wantNeigh[n.IP] = true
		if h, ok := haveNeigh[n.IP]; !ok || h != n {
			p.setNeigh = append(p.setNeigh, n)
		}
	}
	for _, n := range have.neighs {
		if !wantNeigh[n.IP] {
			p.delNeigh = append(p.delNeigh, n)
		}
	}

	// A forwarding entry is a MAC with one or more destinations; a delete
	// names the destination. An entry whose MAC and destination are wanted
	// is never deleted (setting it fixes its state).
	type macDst struct {
		mac string
		dst netip.Addr
	}
	haveFDB := make(map[fdb]bool, len(have.fdbs))
	for _, f := range have.fdbs {
		haveFDB[f] = true
	}
	wantDst := make(map[macDst]bool, len(want.fdbs))
	for _, f := range want.fdbs {
		wantDst[macDst{f.MAC, f.Dst}] = true
		if !haveFDB[f] {
			p.setFDB = append(p.setFDB, f)
		}
	}
	for _, f := range have.fdbs {
		if !wantDst[macDst{f.MAC, f.Dst}] {
			p.delFDB = append(p.delFDB, f)
		}
	}
	return p
}
