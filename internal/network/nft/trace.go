package nft

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// The tracer walks a packet through tables the way the kernel's hooks would (as kube-proxy's
// proxier tests do) and reports what happens to it. At each hook it runs the base chains of
// every table attached there, by priority (among equal priorities, in the order the tables
// were given); names in a chain's rules resolve in the chain's table; after a NAT chain has
// set up a translation, later NAT chains of the hook are skipped, as in the kernel. A packet
// arriving (from a pod on the bridge, from another node) takes prerouting, then input when
// its destination (after DNAT) is one of the host's addresses, else forward and postrouting;
// a packet the host sends takes output and postrouting.

// TracePacket is the first packet of a connection.
type TracePacket struct {
	Src, Dst netip.Addr
	Proto    Proto
	Port     uint16
	// Local is true for a packet sent by this host (output path); false for one arriving
	// (prerouting: from a pod on the bridge or from outside).
	Local bool
	// Established is true for a packet of a connection conntrack already knows (a reply, or
	// a later packet): "ct state new" does not match it, "ct state established,related" does.
	// NAT chains are walked as for a first packet.
	Established bool
}

// TraceResult is what became of a packet: its verdict ("ACCEPT", "DROP", "REJECT"), the
// endpoints it may be DNATed to (sorted "ip:port"; every one random balancing may pick) and
// whether it is masqueraded on any of those paths.
type TraceResult struct {
	Verdict    string
	Endpoints  []string
	Masquerade bool
}

func (r TraceResult) String() string {
	return fmt.Sprintf("%s dnat=[%s] masq=%v", r.Verdict, strings.Join(r.Endpoints, ","), r.Masquerade)
}

// Tracer evaluates packets against one model.
type Tracer struct {
	bases []baseChain // every table's base chains, in hook order
	local map[netip.Addr]bool
	cur   *traceTable // the table of the chain being evaluated

	// Choose picks the numgen branch; nil explores every branch. With Choose set, affinity
	// updates are remembered across traces (so a second trace sees the first's client).
	Choose func(n int) int

	path    []int // exploration: forced choices
	seen    []int // exploration: moduli met in this run
	explore bool
}

// traceTable is one table of the model as the tracer sees it.
type traceTable struct {
	name   string
	chains map[string]*Chain
	elems  map[string]map[Key]Verdict
	dyn    map[string]map[netip.Addr]bool
}

type baseChain struct {
	table *traceTable
	chain *Chain
}

type packet struct {
	src, dst    netip.Addr
	proto       Proto
	dport       uint16
	established bool
	mark        uint32
	dnat        string
	masq        bool
}

type stepKind uint8

const (
	stepContinue stepKind = iota
	stepAccept
	stepDrop
	stepReject
	stepJump
	stepGoto
	stepReturn
)

type step struct {
	kind  stepKind
	chain string
}

func verdictStep(v Verdict) step {
	switch v.Kind {
	case VerdictAccept:
		return step{kind: stepAccept}
	case VerdictDrop:
		return step{kind: stepDrop}
	case VerdictReturn:
		return step{kind: stepReturn}
	case VerdictJump:
		return step{kind: stepJump, chain: v.Chain}
	default:
		return step{kind: stepGoto, chain: v.Chain}
	}
}

// NewTracer is a tracer for the tables of a host whose own addresses are local.
func NewTracer(tables []Table, local ...netip.Addr) *Tracer {
	t := &Tracer{local: map[netip.Addr]bool{}}
	for _, v := range tables {
		tt := &traceTable{name: v.Name, chains: map[string]*Chain{}, elems: map[string]map[Key]Verdict{}, dyn: map[string]map[netip.Addr]bool{}}
		for _, f := range v.Frags {
			for _, c := range f.Chains {
				tt.chains[c.Name] = c
				if c.Base != nil {
					t.bases = append(t.bases, baseChain{tt, c})
				}
			}
			for _, s := range f.Sets {
				if tt.elems[s.Name] == nil {
					tt.elems[s.Name] = map[Key]Verdict{}
				}
			}
			for _, e := range f.Elements {
				if tt.elems[e.Set] == nil {
					tt.elems[e.Set] = map[Key]Verdict{}
				}
				tt.elems[e.Set][e.Key] = e.Verdict
			}
		}
	}
	// Stable: among equal priorities the tables keep their order.
	sort.SliceStable(t.bases, func(i, j int) bool { return t.bases[i].chain.Base.Priority < t.bases[j].chain.Base.Priority })
	for _, a := range local {
		t.local[a] = true
	}
	return t
}

func (t *Tracer) inSet(set string, k Key) bool {
	if d, ok := t.cur.dyn[set]; ok && d[k.Addr] {
		return true
	}
	_, ok := t.cur.elems[set][k]
	return ok
}

func (t *Tracer) lookup(m string, k Key) (Verdict, bool) {
	v, ok := t.cur.elems[m][k]
	return v, ok
}

func (t *Tracer) remember(set string, a netip.Addr) {
	if t.explore {
		return
	}
	if t.cur.dyn[set] == nil {
		t.cur.dyn[set] = map[netip.Addr]bool{}
	}
	t.cur.dyn[set][a] = true
}

func (t *Tracer) choose(n int) int {
	if !t.explore {
		return t.Choose(n) % n
	}
	i := len(t.seen)
	t.seen = append(t.seen, n)
	if i < len(t.path) {
		return t.path[i]
	}
	t.path = append(t.path, 0)
	return 0
}

// Trace follows the packet through every path random balancing allows (or the one Choose
// picks) and merges the outcomes.
func (t *Tracer) Trace(in TracePacket) TraceResult {
	t.explore = t.Choose == nil
	t.path = t.path[:0]
	eps := map[string]bool{}
	verdicts := map[string]bool{}
	var res TraceResult
	for runs := 0; runs < 1024; runs++ {
		t.seen = t.seen[:0]
		v, p := t.traceOnce(in)
		verdicts[v] = true
		if p.dnat != "" {
			eps[p.dnat] = true
		}
		res.Masquerade = res.Masquerade || p.masq
		if !t.explore || !t.nextPath() {
			break
		}
	}
	for v := range verdicts {
		if res.Verdict != "" {
			res.Verdict += "|"
		}
		res.Verdict += v
	}
	for e := range eps {
		res.Endpoints = append(res.Endpoints, e)
	}
	sort.Strings(res.Endpoints)
	return res
}

// nextPath advances the exploration to the next combination of choices.
func (t *Tracer) nextPath() bool {
	t.path = t.path[:len(t.seen)]
	for i := len(t.path) - 1; i >= 0; i-- {
		if t.path[i]+1 < t.seen[i] {
			t.path[i]++
			t.path = t.path[:i+1]
			return true
		}
	}
	return false
}

func (t *Tracer) traceOnce(in TracePacket) (string, *packet) {
	p := &packet{src: in.Src, dst: in.Dst, proto: in.Proto, dport: in.Port, established: in.Established}
	var hooks []string
	if in.Local {
		hooks = []string{"output", "postrouting"}
	} else {
		if v := t.runHook("prerouting", p); v != stepAccept {
			return verdictName(v), p
		}
		if t.local[p.dst] {
			hooks = []string{"input"}
		} else {
			hooks = []string{"forward", "postrouting"}
		}
	}
	for _, h := range hooks {
		if v := t.runHook(h, p); v != stepAccept {
			return verdictName(v), p
		}
	}
	return "ACCEPT", p
}

// runHook runs the base chains attached to a hook, in order, until one drops or rejects.
func (t *Tracer) runHook(hook string, p *packet) stepKind {
	for _, b := range t.bases {
		if b.chain.Base.Hook != hook {
			continue
		}
		if b.chain.Base.Type == "nat" && (hook == "postrouting" && p.masq || hook != "postrouting" && p.dnat != "") {
			continue // the connection has its translation: later NAT chains are not consulted
		}
		if v := t.runChain(b, p); v != stepAccept {
			return v
		}
	}
	return stepAccept
}

func verdictName(k stepKind) string {
	switch k {
	case stepDrop:
		return "DROP"
	case stepReject:
		return "REJECT"
	}
	return "ACCEPT"
}

type frame struct {
	chain string
	idx   int
}

// runChain evaluates a base chain and what it jumps to; the result is accept, drop or reject.
func (t *Tracer) runChain(b baseChain, p *packet) stepKind {
	t.cur = b.table
	stack := []frame{{b.chain.Name, 0}}
	for n := 0; len(stack) > 0 && n < 100000; n++ {
		f := &stack[len(stack)-1]
		c := t.cur.chains[f.chain]
		if c == nil {
			panic(fmt.Sprintf("trace: chain %q does not exist in table %s", f.chain, t.cur.name))
		}
		if f.idx >= len(c.Rules) {
			stack = stack[:len(stack)-1]
			continue
		}
		r := c.Rules[f.idx]
		f.idx++
		ok := true
		for _, m := range r.Match {
			if !m.eval(t, p) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		s := r.Stmt.exec(t, p)
		switch s.kind {
		case stepAccept, stepDrop, stepReject:
			return s.kind
		case stepJump:
			stack = append(stack, frame{s.chain, 0})
		case stepGoto:
			stack[len(stack)-1] = frame{s.chain, 0}
		case stepReturn:
			stack = stack[:len(stack)-1]
		}
	}
	return stepAccept
}
