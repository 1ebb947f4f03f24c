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
	taken := newClaims(me)
	for _, n := range sorted {
		if n.Name == me.name {
			continue
		}
		cidrs, ip := nodeRoute(n)
		if len(cidrs) == 0 || !ip.IsValid() {
			continue
		}
		p := peer{name: n.Name, nodeIP: ip, podCIDRs: cidrs}
		if problem := taken.conflict(p); problem != "" {
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
		taken.add(p)
		peers = append(peers, p)
	}
	return peers, problems
}

// claim is a pod CIDR and the node that has it ("" for this node).
type claim struct {
	node   string
	prefix netip.Prefix
}

// claims are the pod CIDRs and node IPs taken so far. Two prefixes overlap
// when one contains the other: a new prefix conflicts when one of its
// ancestors (or itself) is taken, or when it is an ancestor of a taken
// one; both are map lookups, one per prefix length.
type claims struct {
	me      self
	taken   map[netip.Prefix]claim // the prefixes claimed
	covered map[netip.Prefix]claim // every ancestor of a claimed prefix, itself included
	ips     map[netip.Addr]string
}

func newClaims(me self) *claims {
	c := &claims{me: me, taken: map[netip.Prefix]claim{}, covered: map[netip.Prefix]claim{}, ips: map[netip.Addr]string{}}
	c.claim(claim{prefix: me.podCIDR.Masked()})
	return c
}

func (c *claims) claim(cl claim) {
	c.taken[cl.prefix] = cl
	for bits := cl.prefix.Bits(); bits >= 0; bits-- {
		anc, _ := cl.prefix.Addr().Prefix(bits)
		if _, ok := c.covered[anc]; ok {
			break // and so are its ancestors
		}
		c.covered[anc] = cl
	}
}

func (c *claims) add(p peer) {
	for _, pc := range p.podCIDRs {
		c.claim(claim{node: p.name, prefix: pc})
	}
	c.ips[p.nodeIP] = p.name
}

// overlap is a claim overlapping pc, if any.
func (c *claims) overlap(pc netip.Prefix) (claim, bool) {
	if cl, ok := c.covered[pc]; ok {
		return cl, true
	}
	for bits := pc.Bits() - 1; bits >= 0; bits-- {
		anc, _ := pc.Addr().Prefix(bits)
		if cl, ok := c.taken[anc]; ok {
			return cl, true
		}
	}
	return claim{}, false
}

// conflict says why p cannot be a peer, or "".
func (c *claims) conflict(p peer) string {
	if p.nodeIP == c.me.nodeIP {
		return fmt.Sprintf("node %s has this node's IP %s: left out", p.name, p.nodeIP)
	}
	if other, ok := c.ips[p.nodeIP]; ok {
		return fmt.Sprintf("node %s has node %s's IP %s: left out", p.name, other, p.nodeIP)
	}
	for _, pc := range p.podCIDRs {
		if pc.Contains(c.me.nodeIP) {
			return fmt.Sprintf("node %s: its pod CIDR %s holds this node's IP %s: left out", p.name, pc, c.me.nodeIP)
		}
		if cl, ok := c.overlap(pc); ok {
			if cl.node == "" {
				return fmt.Sprintf("node %s: its pod CIDR %s overlaps this node's %s: left out", p.name, pc, cl.prefix)
			}
			return fmt.Sprintf("node %s: its pod CIDR %s overlaps node %s's %s: left out", p.name, pc, cl.node, cl.prefix)
		}
	}
	for i, pc := range p.podCIDRs {
		for _, qc := range p.podCIDRs[:i] {
			if pc.Overlaps(qc) {
				return fmt.Sprintf("node %s: its pod CIDRs %s and %s overlap: left out", p.name, qc, pc)
			}
		}
	}
	return ""
}
