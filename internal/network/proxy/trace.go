package proxy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// The tracer walks a packet through the model's chains the way the kernel's hooks would
// (as kube-proxy's proxier tests do) and reports what happens to it.

// TracePacket is the first packet of a connection.
type TracePacket struct {
	Src, Dst netip.Addr
	Proto    Proto
	Port     uint16
	// Local is true for a packet sent by this host (output path); false for one arriving
	// (prerouting: from a pod on the bridge or from outside).
	Local bool
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
	chains map[string]*Chain
	elems  map[string]map[Key]Verdict
	local  map[netip.Addr]bool
	dyn    map[string]map[netip.Addr]bool

	// Choose picks the numgen branch; nil explores every branch. With Choose set, affinity
	// updates are remembered across traces (so a second trace sees the first's client).
	Choose func(n int) int

	path    []int // exploration: forced choices
	seen    []int // exploration: moduli met in this run
	explore bool
}

type packet struct {
	src, dst netip.Addr
	proto    Proto
	dport    uint16
	mark     uint32
	dnat     string
	masq     bool
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

// NewTracer is a tracer for m on a host whose own addresses are local (the node IPs are
// always local).
func NewTracer(m *Model, local ...netip.Addr) *Tracer {
	t := &Tracer{chains: map[string]*Chain{}, elems: map[string]map[Key]Verdict{}, local: map[netip.Addr]bool{}, dyn: map[string]map[netip.Addr]bool{}}
	add := func(f *Fragment) {
		for _, c := range f.Chains {
			t.chains[c.Name] = c
		}
		for _, s := range f.Sets {
			t.elems[s.Name] = map[Key]Verdict{}
		}
		for _, e := range f.Elements {
			if t.elems[e.Set] == nil {
				t.elems[e.Set] = map[Key]Verdict{}
			}
			t.elems[e.Set][e.Key] = e.Verdict
			if e.Set == setNodePortIPs {
				t.local[e.Key.Addr] = true
			}
		}
	}
	add(m.Base)
	for _, f := range m.Services {
		add(f)
	}
	for _, a := range local {
		t.local[a] = true
	}
	return t
}

func (t *Tracer) inSet(set string, k Key) bool {
	if d, ok := t.dyn[set]; ok && d[k.Addr] {
		return true
	}
	_, ok := t.elems[set][k]
	return ok
}

func (t *Tracer) lookup(m string, k Key) (Verdict, bool) {
	v, ok := t.elems[m][k]
	return v, ok
}

func (t *Tracer) remember(set string, a netip.Addr) {
	if t.explore {
		return
	}
	if t.dyn[set] == nil {
		t.dyn[set] = map[netip.Addr]bool{}
	}
	t.dyn[set][a] = true
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
	p := &packet{src: in.Src, dst: in.Dst, proto: in.Proto, dport: in.Port}
	var hooks []string
	if in.Local {
		hooks = []string{chainFilterOutput, chainNATOutput, chainFilterOutputPostDNAT, chainNATPostrouting}
	} else {
		if v := t.runHook(chainNATPrerouting, p); v != stepAccept {
			return verdictName(v), p
		}
		if t.local[p.dst] {
			hooks = []string{chainFilterInput}
		} else {
			hooks = []string{chainFilterForward, chainNATPostrouting}
		}
	}
	for _, h := range hooks {
		if v := t.runHook(h, p); v != stepAccept {
			return verdictName(v), p
		}
	}
	return "ACCEPT", p
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

// runHook evaluates a base chain and what it jumps to; the result is accept, drop or reject.
func (t *Tracer) runHook(base string, p *packet) stepKind {
	if t.chains[base] == nil {
		return stepAccept
	}
	stack := []frame{{base, 0}}
	for n := 0; len(stack) > 0 && n < 100000; n++ {
		f := &stack[len(stack)-1]
		c := t.chains[f.chain]
		if c == nil {
			panic(fmt.Sprintf("trace: chain %q does not exist", f.chain))
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
