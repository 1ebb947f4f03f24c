package netpol

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/internal/network/nft"
)

// direction is ingress or egress.
type direction uint8

const (
	ingress direction = iota
	egress
)

func (d direction) String() string {
	if d == ingress {
		return "ingress"
	}
	return "egress"
}

// policy is a NetworkPolicy compiled: what it selects, which directions it isolates and its
// rules, with every selector parsed once.
type policy struct {
	key      types.NamespacedName
	selector labels.Selector
	isolates [2]bool    // by direction: the policy's policyTypes, defaulted
	rules    [2][]*rule // by direction; only for the directions it isolates
}

// rule is one ingress or egress rule: traffic is allowed when it comes from (goes to) one of
// the peers and is for one of the ports.
type rule struct {
	dir direction
	idx int

	anyPeer bool   // from/to is empty: every source (destination)
	terms   []term // pod and namespace selector peers
	blocks  []ipBlock
	group   string // the key of the terms' peer group ("" without terms)

	anyPort  bool // ports is empty: every port and protocol
	numbered []portRange
	named    []namedPort
}

// term is a peer that selects pods: those podSel matches in the namespace ns (a peer
// without namespaceSelector: the policy's own) or in the namespaces nsSel matches.
type term struct {
	ns     string
	nsSel  labels.Selector // nil: the namespace ns
	podSel labels.Selector // Everything when the peer has no podSelector
}

// ipBlock is an IPv4 ipBlock peer: cidr but the excepts.
type ipBlock struct {
	cidr    netip.Prefix
	excepts []netip.Prefix
}

func (b ipBlock) contains(a netip.Addr) bool {
	if !b.cidr.Contains(a) {
		return false
	}
	for _, e := range b.excepts {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// portRange is a numbered port, a range (endPort) or, with all set, every port of a
// protocol.
type portRange struct {
	proto  nft.Proto
	lo, hi uint16
	all    bool
}

// namedPort is a port by name: each destination pod's container port of that name and
// protocol.
type namedPort struct {
	name  string
	proto nft.Proto
}

func protoOf(p *corev1.Protocol) (nft.Proto, bool) {
	if p == nil {
		return nft.ProtoTCP, true
	}
	switch *p {
	case corev1.ProtocolTCP, "":
		return nft.ProtoTCP, true
	case corev1.ProtocolUDP:
		return nft.ProtoUDP, true
	case corev1.ProtocolSCTP:
		return nft.ProtoSCTP, true
	}
	return 0, false
}

// selector parses a label selector; one that does not parse selects nothing (the API
// validates selectors, so this is a cache holding something odd).
func selector(ls *metav1.LabelSelector, what string, key types.NamespacedName) labels.Selector {
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		slog.Warn("netpol: a selector of a NetworkPolicy does not parse; it selects nothing", "policy", key.String(), "selector", what, "err", err)
		return labels.Nothing()
	}
	return s
}

// compile turns a NetworkPolicy into a policy.
func compile(np *networkingv1.NetworkPolicy) *policy {
	key := types.NamespacedName{Namespace: np.Namespace, Name: np.Name}
	p := &policy{key: key, selector: selector(&np.Spec.PodSelector, "podSelector", key)}
	if len(np.Spec.PolicyTypes) == 0 {
		p.isolates[ingress] = true
		p.isolates[egress] = len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			p.isolates[ingress] = true
		case networkingv1.PolicyTypeEgress:
			p.isolates[egress] = true
		}
	}
	if p.isolates[ingress] {
		for i, r := range np.Spec.Ingress {
			p.rules[ingress] = append(p.rules[ingress], compileRule(key, ingress, i, r.From, r.Ports))
		}
	}
	if p.isolates[egress] {
		for i, r := range np.Spec.Egress {
			p.rules[egress] = append(p.rules[egress], compileRule(key, egress, i, r.To, r.Ports))
		}
	}
	return p
}

func compileRule(key types.NamespacedName, dir direction, idx int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) *rule {
	r := &rule{dir: dir, idx: idx, anyPeer: len(peers) == 0, anyPort: len(ports) == 0}
	for i, peer := range peers {
		what := fmt.Sprintf("%s[%d]", dir, idx)
		switch {
		case peer.IPBlock != nil:
			cidr, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil || !cidr.Addr().Is4() {
				continue // IPv6 (or odd): no IPv4 address is in it
			}
			b := ipBlock{cidr: cidr.Masked()}
			for _, e := range peer.IPBlock.Except {
				if ep, err := netip.ParsePrefix(e); err == nil && ep.Addr().Is4() {
					b.excepts = append(b.excepts, ep.Masked())
				}
			}
			r.blocks = append(r.blocks, b)
		case peer.PodSelector != nil || peer.NamespaceSelector != nil:
			t := term{ns: key.Namespace, podSel: labels.Everything()}
			if peer.NamespaceSelector != nil {
				t.ns, t.nsSel = "", selector(peer.NamespaceSelector, fmt.Sprintf("%s peer %d namespaceSelector", what, i), key)
			}
			if peer.PodSelector != nil {
				t.podSel = selector(peer.PodSelector, fmt.Sprintf("%s peer %d podSelector", what, i), key)
			}
			r.terms = append(r.terms, t)
		}
		// A peer with nothing set is invalid (the API refuses it): it matches nothing.
	}
	if len(r.terms) > 0 {
		r.group = groupKey(r.terms)
	}
	for _, port := range ports {
		proto, ok := protoOf(port.Protocol)
		if !ok {
			continue // a protocol NetworkPolicy does not know: matches nothing
		}
		switch {
		case port.Port == nil:
			r.numbered = append(r.numbered, portRange{proto: proto, all: true})
		case port.Port.Type == intstr.String:
			r.named = append(r.named, namedPort{name: port.Port.StrVal, proto: proto})
		default:
			lo := port.Port.IntVal
			if lo < 1 || lo > 65535 {
				continue
			}
			hi := lo
			if port.EndPort != nil && *port.EndPort > lo && *port.EndPort <= 65535 {
				hi = *port.EndPort
			}
			r.numbered = append(r.numbered, portRange{proto: proto, lo: uint16(lo), hi: uint16(hi)})
		}
	}
	return r
}

func (t term) String() string {
	var b strings.Builder
	if t.nsSel == nil {
		b.WriteString("namespace " + t.ns)
	} else if s := t.nsSel.String(); s == "" {
		b.WriteString("all namespaces")
	} else {
		b.WriteString("namespaces " + s)
	}
	if s := t.podSel.String(); s == "" {
		b.WriteString(": all pods")
	} else {
		b.WriteString(": pods " + s)
	}
	return b.String()
}

// groupKey names a set of terms: rules whose peers select the same pods share one peer set.
func groupKey(terms []term) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = t.String()
	}
	sort.Strings(parts)
	out := parts[:0]
	for i, p := range parts {
		if i == 0 || p != parts[i-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// matches reports whether the term selects a pod in a namespace with these labels.
func (t term) matches(p *pod, nsLabels labels.Set) bool {
	if t.nsSel == nil {
		if p.ns != t.ns {
			return false
		}
	} else if !t.nsSel.Matches(nsLabels) {
		return false
	}
	return t.podSel.Matches(labels.Set(p.labels))
}

// hasNamed reports whether any rule of the direction uses named ports.
func (p *policy) hasNamed(d direction) bool {
	for _, r := range p.rules[d] {
		if len(r.named) > 0 {
			return true
		}
	}
	return false
}

// sameSelection reports whether two compilations of a policy select the same pods for the
// same directions (then only its rules changed).
func (p *policy) sameSelection(o *policy) bool {
	return o != nil && p.selector.String() == o.selector.String() && p.isolates == o.isolates
}
