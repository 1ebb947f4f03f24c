package netpol

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

// Names of the fixed parts of the table.
const (
	mapIngress          = "ingress-pods"
	mapEgress           = "egress-pods"
	chainEgressForward  = "egress-forward"
	chainEgressInput    = "egress-input"
	chainIngressForward = "ingress-forward"

	// The hooks' priorities. Policies are checked at forward and input, after prerouting
	// (where the service proxy's NAT chains, priority dstnat -100, translate a Service's
	// address to an endpoint's): both directions see the real pod address and port.
	// Egress and ingress are separate base chains, so that accepting in one still lets the
	// other decide.
	priorityEgress  = 0
	priorityIngress = 1

	maxNameLen = 255 // NFT_CHAIN_MAXNAMELEN and NFT_SET_MAXNAMELEN, less the terminating NUL
)

// hashName is the first 8 characters of the base32 SHA-256 (kube-proxy's chain-name hash).
func hashName(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:8]
}

// prefixed is "prefix-HASH-suffix", the suffix cut to fit a name.
func prefixed(prefix, suffix string) string {
	n := prefix + "-" + hashName(suffix) + "-" + suffix
	if len(n) > maxNameLen {
		n = n[:maxNameLen]
	}
	return n
}

// policyChain is the chain of a policy's rules in one direction: it accepts what a rule
// allows and returns otherwise.
func policyChain(d direction, key types.NamespacedName) string {
	return prefixed("policy-"+d.String(), key.String())
}

// sigName is the chain of this node's pods that exactly these policies select in one
// direction.
func sigName(d direction, keys []types.NamespacedName) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	return "pod-" + d.String() + "-" + hashName("pods selected by "+strings.Join(parts, ","))
}

// groupSet is the set of the addresses of the pods a group selects.
func groupSet(key string) string { return "peers-" + hashName(key) }

// namedSet is the set of address . protocol . port a rule's named ports resolve to.
func namedSet(key types.NamespacedName, d direction, idx int) string {
	return prefixed("ports", fmt.Sprintf("%s/%s/%d", key, d, idx))
}

func comment(s string) string {
	if len(s) > 200 { // user data is at most 256 bytes
		return s[:197] + "..."
	}
	return s
}

var (
	accept = nft.StmtVerdict{Kind: nft.VerdictAccept}
	drop   = nft.StmtVerdict{Kind: nft.VerdictDrop}
)

// build is an owner's fragment as the engine's state says now (nil: the owner has none).
func (e *engine) build(o owner) *nft.Fragment {
	switch o.kind {
	case ownBase:
		return e.buildBase()
	case ownPolicy:
		ns, name, _ := strings.Cut(o.key, "/")
		if ps := e.policies[types.NamespacedName{Namespace: ns, Name: name}]; ps != nil && ps.active() {
			return e.buildPolicy(ps)
		}
	case ownGroup:
		if g := e.groups[o.key]; g != nil {
			return buildGroup(g)
		}
	case ownSig:
		if s := e.sigs[o.key]; s != nil {
			return buildSig(s)
		}
	case ownPod:
		if p := e.pods[types.UID(o.key)]; p != nil && p.local && len(p.ips) > 0 {
			return e.buildPod(p)
		}
	}
	return nil
}

// model is the whole table as the engine's state says now.
func (e *engine) model() nft.Table {
	t := nft.Table{Name: e.cfg.table}
	for _, o := range e.owners() {
		if f := e.build(o); f != nil {
			t.Frags = append(t.Frags, f)
		}
	}
	return t
}

// buildBase is the skeleton: the hooks, the dispatch maps, and the drop of this node's pod
// addresses the agent has not told of yet.
func (e *engine) buildBase() *nft.Fragment {
	const unclassified = "a pod address of this node not yet classified: dropped until its rules are in"
	est := nft.Rule{Match: []nft.Match{nft.MatchCtEstablished{}}, Stmt: accept}
	egressRules := func(dns bool) []nft.Rule {
		rules := []nft.Rule{est}
		if dns && e.cfg.dns.IsValid() {
			for _, proto := range []nft.Proto{nft.ProtoUDP, nft.ProtoTCP} {
				rules = append(rules, nft.Rule{
					Match:   []nft.Match{nft.MatchAddr{Field: nft.Daddr, Prefix: netip.PrefixFrom(e.cfg.dns, 32)}, nft.MatchDport{Proto: proto, Port: 53}},
					Stmt:    accept,
					Comment: "the node's cluster DNS server",
				})
			}
		}
		rules = append(rules, nft.Rule{Stmt: nft.StmtAddrVmap{Field: nft.Saddr, Map: mapEgress}})
		if e.cfg.podCIDR.IsValid() {
			rules = append(rules, nft.Rule{Match: []nft.Match{nft.MatchAddr{Field: nft.Saddr, Prefix: e.cfg.podCIDR.Masked()}}, Stmt: drop, Comment: unclassified})
		}
		return rules
	}
	ingressRules := []nft.Rule{est, {Stmt: nft.StmtAddrVmap{Field: nft.Daddr, Map: mapIngress}}}
	if e.cfg.podCIDR.IsValid() {
		ingressRules = append(ingressRules, nft.Rule{Match: []nft.Match{nft.MatchAddr{Field: nft.Daddr, Prefix: e.cfg.podCIDR.Masked()}}, Stmt: drop, Comment: unclassified})
	}
	f := &nft.Fragment{
		Sets: []nft.Set{
			{Name: mapEgress, Key: nft.KeyAddr, Map: true, Comment: "this node's pods: the chain of the policies that select them for egress, or accept"},
			{Name: mapIngress, Key: nft.KeyAddr, Map: true, Comment: "this node's pods: the chain of the policies that select them for ingress, or accept"},
		},
		Chains: []*nft.Chain{
			{Name: chainEgressForward, Base: &nft.Hook{Type: "filter", Hook: "forward", Priority: priorityEgress}, Rules: egressRules(false)},
			{Name: chainEgressInput, Base: &nft.Hook{Type: "filter", Hook: "input", Priority: priorityEgress}, Rules: egressRules(true)},
			{Name: chainIngressForward, Base: &nft.Hook{Type: "filter", Hook: "forward", Priority: priorityIngress}, Rules: ingressRules},
		},
	}
	if e.cfg.gateway.IsValid() {
		// The node's own address on the bridge: traffic from it is the node's.
		f.Elements = append(f.Elements, nft.Element{Set: mapEgress, Key: nft.Key{Addr: e.cfg.gateway}, Verdict: nft.Verdict{Kind: nft.VerdictAccept}})
	}
	return f
}

// buildPolicy is an active policy's chains (one per direction it isolates) and the sets its
// named ports resolve to.
func (e *engine) buildPolicy(ps *polState) *nft.Fragment {
	f := &nft.Fragment{}
	for _, d := range []direction{ingress, egress} {
		if !ps.isolates[d] {
			continue
		}
		ch := &nft.Chain{Name: policyChain(d, ps.key)}
		for _, r := range ps.rules[d] {
			ch.Rules = append(ch.Rules, e.ruleRules(ps, r, f)...)
		}
		f.Chains = append(f.Chains, ch)
	}
	return f
}

// ruleRules is what one NetworkPolicy rule becomes: a rule accepting each combination of a
// peer (a peer set, an ipBlock) and a port (numbered, a range, a protocol); named ports match
// a set of address . protocol . port.
func (e *engine) ruleRules(ps *polState, r *rule, f *nft.Fragment) []nft.Rule {
	field := nft.Saddr // the peer is the source of ingress, the destination of egress
	if r.dir == egress {
		field = nft.Daddr
	}
	var peers [][]nft.Match
	if r.anyPeer {
		peers = [][]nft.Match{nil}
	} else {
		if r.group != "" {
			peers = append(peers, []nft.Match{nft.MatchAddrInSet{Field: field, Set: groupSet(r.group)}})
		}
		for _, b := range r.blocks {
			m := []nft.Match{nft.MatchAddr{Field: field, Prefix: b.cidr}}
			for _, x := range b.excepts {
				m = append(m, nft.MatchAddr{Field: field, Prefix: x, Neg: true})
			}
			peers = append(peers, m)
		}
	}
	var ports [][]nft.Match
	if r.anyPort {
		ports = [][]nft.Match{nil}
	}
	for _, p := range r.numbered {
		switch {
		case p.all:
			ports = append(ports, []nft.Match{nft.MatchL4Proto{Proto: p.proto}})
		case p.lo == p.hi:
			ports = append(ports, []nft.Match{nft.MatchDport{Proto: p.proto, Port: p.lo}})
		default:
			ports = append(ports, []nft.Match{nft.MatchDportRange{Proto: p.proto, Lo: p.lo, Hi: p.hi}})
		}
	}
	// The port first: comparing it is cheaper than looking the peer up in a set.
	var out []nft.Rule
	for _, peer := range peers {
		for _, port := range ports {
			out = append(out, nft.Rule{Match: concat(port, peer), Stmt: accept})
		}
	}
	if len(r.named) > 0 {
		set := namedSet(ps.key, r.dir, r.idx)
		f.Sets = append(f.Sets, nft.Set{Name: set, Key: nft.KeyAddrProtoPort, Comment: comment(fmt.Sprintf("named ports of %s %s rule %d", ps.key, r.dir, r.idx))})
		f.Elements = append(f.Elements, e.namedElements(ps, r, set)...)
		named := nft.MatchAddrProtoPortInSet{Field: nft.Daddr, Set: set}
		if r.dir == ingress {
			for _, peer := range peers {
				out = append(out, nft.Rule{Match: concat(peer, []nft.Match{named}), Stmt: accept})
			}
		} else {
			// The set holds the peers' addresses only.
			out = append(out, nft.Rule{Match: []nft.Match{named}, Stmt: accept})
		}
	}
	return out
}

func concat(a, b []nft.Match) []nft.Match {
	return append(append([]nft.Match(nil), a...), b...)
}

// namedElements is what a rule's named ports resolve to, per destination pod: for ingress,
// the selected pods of this node; for egress, every pod the rule's peers allow.
func (e *engine) namedElements(ps *polState, r *rule, set string) []nft.Element {
	seen := map[nft.Key]bool{}
	var out []nft.Element
	add := func(p *pod, np namedPort) {
		port, ok := p.ports[np]
		if !ok {
			return
		}
		for _, a := range p.ips {
			if r.dir == egress && !e.peerAllows(r, p, a) {
				continue
			}
			k := nft.Key{Addr: a, Proto: np.proto, Port: port}
			if !seen[k] {
				seen[k] = true
				out = append(out, nft.Element{Set: set, Key: k})
			}
		}
	}
	for _, np := range r.named {
		if r.dir == ingress {
			for _, p := range ps.selected {
				add(p, np)
			}
			continue
		}
		for _, p := range e.byPortName[np.name] {
			if p.policed {
				add(p, np)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return nft.KeyLess(out[i].Key, out[j].Key) })
	return out
}

// peerAllows reports whether an egress rule's peers include the pod at this address.
func (e *engine) peerAllows(r *rule, p *pod, a netip.Addr) bool {
	if r.anyPeer {
		return true
	}
	if g := e.groups[r.group]; r.group != "" && g != nil && g.members[p.uid] != nil {
		return true
	}
	for _, b := range r.blocks {
		if b.contains(a) {
			return true
		}
	}
	return false
}

// buildGroup is a peer set: the addresses of the pods the group selects.
func buildGroup(g *group) *nft.Fragment {
	f := &nft.Fragment{Sets: []nft.Set{{Name: groupSet(g.key), Key: nft.KeyAddr, Comment: comment(g.key)}}}
	for _, p := range g.members {
		for _, a := range p.ips {
			f.Elements = append(f.Elements, nft.Element{Set: groupSet(g.key), Key: nft.Key{Addr: a}})
		}
	}
	sort.Slice(f.Elements, func(i, j int) bool { return nft.KeyLess(f.Elements[i].Key, f.Elements[j].Key) })
	return f
}

// buildSig is the chain of the pods exactly these policies select: each policy's chain in
// turn (any may accept), then drop.
func buildSig(s *sigChain) *nft.Fragment {
	ch := &nft.Chain{Name: s.name}
	for _, k := range s.policies {
		ch.Rules = append(ch.Rules, nft.Rule{Stmt: nft.StmtVerdict{Kind: nft.VerdictJump, Chain: policyChain(s.dir, k)}})
	}
	ch.Rules = append(ch.Rules, nft.Rule{Stmt: drop})
	return &nft.Fragment{Chains: []*nft.Chain{ch}}
}

// buildPod is a local pod's dispatch: each of its addresses, in both maps.
func (e *engine) buildPod(p *pod) *nft.Fragment {
	f := &nft.Fragment{}
	verdict := func(s *sigChain) nft.Verdict {
		if s == nil {
			return nft.Verdict{Kind: nft.VerdictAccept}
		}
		return nft.Verdict{Kind: nft.VerdictGoto, Chain: s.name}
	}
	for _, a := range p.ips {
		if a == e.cfg.gateway {
			continue
		}
		f.Elements = append(f.Elements,
			nft.Element{Set: mapEgress, Key: nft.Key{Addr: a}, Verdict: verdict(p.sig[egress])},
			nft.Element{Set: mapIngress, Key: nft.Key{Addr: a}, Verdict: verdict(p.sig[ingress])},
		)
	}
	return f
}
