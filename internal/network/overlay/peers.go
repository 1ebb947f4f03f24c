package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// VTEPMAC is the MAC address of the VXLAN device of the node whose
// underlay address is ip (IPv4): 02:48 ('H') and the address's four bytes,
// a locally administered unicast address. Every node derives its peers'
// from their Node objects alone.
func VTEPMAC(ip netip.Addr) net.HardwareAddr {
	a := ip.Unmap().As4()
	return net.HardwareAddr{0x02, 0x48, a[0], a[1], a[2], a[3]}
}

// VTEPAddr is the VTEP address of a node with pod CIDR cidr: its network
// address.
func VTEPAddr(cidr netip.Prefix) netip.Addr { return cidr.Masked().Addr() }

// peer is another node as the overlay routes to it.
type peer struct {
	name     string
	nodeIP   netip.Addr
	podCIDRs []netip.Prefix // IPv4, masked, at least one
	direct   bool
}

func (p peer) vtep() netip.Addr { return VTEPAddr(p.podCIDRs[0]) }

func (p peer) equal(q peer) bool {
	return p.name == q.name && p.nodeIP == q.nodeIP && p.direct == q.direct && slices.Equal(p.podCIDRs, q.podCIDRs)
}

func (p peer) String() string {
	via := "vxlan"
	if p.direct {
		via = "direct"
	}
	cidrs := make([]string, len(p.podCIDRs))
	for i, c := range p.podCIDRs {
		cidrs[i] = c.String()
	}
	return fmt.Sprintf("%s (pod CIDR %s, node IP %s, %s)", p.name, strings.Join(cidrs, ","), p.nodeIP, via)
}

// self is what peersFrom needs to know of this node.
type self struct {
	name    string
	nodeIP  netip.Addr
	podCIDR netip.Prefix
	mode    Mode
	// segment is the uplink's subnet (the node IP's prefix on it); invalid
	// when unknown.
	segment netip.Prefix
}

// nodeRoute is what the overlay reads from a Node: its IPv4 pod CIDRs
// (spec.podCIDRs, or spec.podCIDR when that is empty) and its first IPv4
// InternalIP. Entries that do not parse are left out.
func nodeRoute(n *v1.Node) (cidrs []netip.Prefix, ip netip.Addr) {
	raw := n.Spec.PodCIDRs
	if len(raw) == 0 && n.Spec.PodCIDR != "" {
		raw = []string{n.Spec.PodCIDR}
	}
	for _, s := range raw {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		cidrs = append(cidrs, p.Masked())
	}
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		if addr, err := netip.ParseAddr(a.Address); err == nil && addr.Unmap().Is4() {
			return cidrs, addr.Unmap()
		}
	}
	return cidrs, netip.Addr{}
}

// peersFrom is the peers the nodes make, sorted by name, and why nodes
// that should be peers are not. A node without an IPv4 pod CIDR or
// InternalIP yet is no peer and no problem (it was just registered); one
// whose pod CIDR overlaps this node's or an earlier peer's (by name), or
// whose IP is this node's or an earlier peer's, is a problem, as is a peer
// off the uplink's subnet in ModeDirect.
func peersFrom(nodes []*v1.Node, me self) (peers []peer, problems []string) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *v1.Node) int { return strings.Compare(a.Name, b.Name) })
	var taken []peer
	for _, n := range sorted {
		if n.Name == me.name {
			continue
		}
		cidrs, ip := nodeRoute(n)
		if len(cidrs) == 0 || !ip.IsValid() {
			continue
		}
		p := peer{name: n.Name, nodeIP: ip, podCIDRs: cidrs}
		if problem := conflict(p, me, taken); problem != "" {
			problems = append(problems, problem)
			continue
		}
		switch me.mode {
		case ModeDirect:
			if !me.segment.IsValid() || !me.segment.Contains(ip) {
				problems = append(problems, fmt.Sprintf("node %s: its IP %s is not on this node's subnet %s, so mode direct cannot route to it: use mode auto or vxlan", n.Name, ip, me.segment))
				continue
			}
			p.direct = true
		case ModeAuto:
			p.direct = me.segment.IsValid() && me.segment.Contains(ip)
		}
		taken = append(taken, p)
		peers = append(peers, p)
	}
	return peers, problems
}

func conflict(p peer, me self, taken []peer) string {
	if p.nodeIP == me.nodeIP {
		return fmt.Sprintf("node %s has this node's IP %s: left out", p.name, p.nodeIP)
	}
	for _, c := range p.podCIDRs {
		if c.Overlaps(me.podCIDR) {
			return fmt.Sprintf("node %s: its pod CIDR %s overlaps this node's %s: left out", p.name, c, me.podCIDR)
		}
		if c.Contains(me.nodeIP) {
			return fmt.Sprintf("node %s: its pod CIDR %s holds this node's IP %s: left out", p.name, c, me.nodeIP)
		}
	}
	for _, q := range taken {
		if q.nodeIP == p.nodeIP {
			return fmt.Sprintf("node %s has node %s's IP %s: left out", p.name, q.name, p.nodeIP)
		}
		for _, c := range p.podCIDRs {
			for _, d := range q.podCIDRs {
				if c.Overlaps(d) {
					return fmt.Sprintf("node %s: its pod CIDR %s overlaps node %s's %s: left out", p.name, c, q.name, d)
				}
			}
		}
	}
	return ""
}
