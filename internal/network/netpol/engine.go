package netpol

import (
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// The engine is what the policer knows (pods, namespaces, NetworkPolicies) and what follows
// from it, kept incrementally: which pods each peer group selects, which of this node's pods
// each policy selects, which addresses each pod owns. Each change marks the owners of the
// table whose fragments it changes (see build.go); a sync rebuilds just those. The engine is
// used by one goroutine at a time.
type engine struct {
	cfg engineConfig

	informed map[types.UID]*corev1.Pod // pods as the informer last had them
	keyUID   map[string]types.UID      // informer key → UID
	started  map[types.UID]*startInfo  // what the agent told (PodStarting)

	pods       map[types.UID]*pod
	byNS       map[string]map[types.UID]*pod
	byPortName map[string]map[types.UID]*pod
	nsLabels   map[string]labels.Set

	claims map[netip.Addr]map[types.UID]*pod // pods that claim an address
	owner  map[netip.Addr]*pod               // the pod an address is given to

	policies map[types.NamespacedName]*polState
	polByNS  map[string]map[types.NamespacedName]*polState
	// egressNamed: the active policies with an egress rule naming a port, by port name.
	egressNamed map[string]map[types.NamespacedName]*polState
	groups      map[string]*group
	sigs        map[string]*sigChain

	dirty map[owner]bool
}

// engineConfig is what the rules depend on besides the objects.
type engineConfig struct {
	table   string
	node    string
	podCIDR netip.Prefix // this node's pods' addresses
	gateway netip.Addr   // the bridge's address (the node's, in podCIDR)
	dns     netip.Addr   // the node-local DNS server (zero: none exempted)
}

// startInfo is what PodStarting said about a pod.
type startInfo struct {
	pod *corev1.Pod
	ips []netip.Addr
	seq uint64
}

// pod is what the engine knows of a pod. One value per UID, updated in place: groups,
// policies and address claims point at it.
type pod struct {
	uid      types.UID
	ns, name string
	labels   labels.Set
	local    bool // on this node
	policed  bool // not host network, not finished: its addresses are in peer sets and dispatch
	deleting bool
	created  time.Time
	claimSeq uint64       // > 0: its addresses come from PodStarting
	claimed  []netip.Addr // its IPv4 addresses: PodStarting's, else its status'
	ports    map[namedPort]uint16

	ips    []netip.Addr // the claimed addresses it owns
	groups map[*group]bool
	sig    [2]*sigChain // local pods: the chain of the policies selecting it, by direction
}

// polState is a policy and what the engine derived from it.
type polState struct {
	*policy
	selected map[types.UID]*pod // this node's pods it selects
	groups   []*group           // held while it is active
}

func (p *polState) active() bool { return len(p.selected) > 0 }

// group is the pods the selector peers of a rule select (rules with the same peers share
// one): a peer set of the table, kept while an active policy refers to it.
type group struct {
	key     string
	terms   []term
	nsSel   bool // some term selects namespaces by label
	refs    int
	users   map[types.NamespacedName]*polState
	members map[types.UID]*pod
}

// sigChain is the chain for this node's pods that exactly these policies select in one
// direction: it tries each policy's chain in turn and drops what none accepts.
type sigChain struct {
	name     string
	dir      direction
	policies []types.NamespacedName // sorted
	refs     int
}

// ownerKind says which part of the table an owner's fragment is.
type ownerKind uint8

const (
	ownBase   ownerKind = iota // the skeleton
	ownPolicy                  // a policy's chains and named-port sets
	ownGroup                   // a peer set
	ownSig                     // a chain of this node's pods selected by the same policies
	ownPod                     // a local pod's dispatch elements
)

// owner is a part of the table that a sync rebuilds as a whole.
type owner struct {
	kind ownerKind
	key  string
}

func newEngine(cfg engineConfig) *engine {
	e := &engine{
		cfg:         cfg,
		informed:    map[types.UID]*corev1.Pod{},
		keyUID:      map[string]types.UID{},
		started:     map[types.UID]*startInfo{},
		pods:        map[types.UID]*pod{},
		byNS:        map[string]map[types.UID]*pod{},
		byPortName:  map[string]map[types.UID]*pod{},
		nsLabels:    map[string]labels.Set{},
		claims:      map[netip.Addr]map[types.UID]*pod{},
		owner:       map[netip.Addr]*pod{},
		policies:    map[types.NamespacedName]*polState{},
		polByNS:     map[string]map[types.NamespacedName]*polState{},
		groups:      map[string]*group{},
		egressNamed: map[string]map[types.NamespacedName]*polState{},
		sigs:        map[string]*sigChain{},
		dirty:       map[owner]bool{},
	}
	e.dirty[owner{kind: ownBase}] = true
	return e
}

func (e *engine) mark(k ownerKind, key string) { e.dirty[owner{k, key}] = true }

// takeDirty returns the owners changed since the last call.
func (e *engine) takeDirty() map[owner]bool {
	d := e.dirty
	e.dirty = map[owner]bool{}
	return d
}

// owners is every owner that has a fragment now.
func (e *engine) owners() []owner {
	out := []owner{{kind: ownBase}}
	for k, p := range e.policies {
		if p.active() {
			out = append(out, owner{ownPolicy, k.String()})
		}
	}
	for k := range e.groups {
		out = append(out, owner{ownGroup, k})
	}
	for k := range e.sigs {
		out = append(out, owner{ownSig, k})
	}
	for uid, p := range e.pods {
		if p.local && len(p.ips) > 0 {
			out = append(out, owner{ownPod, string(uid)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].key < out[j].key
	})
	return out
}

// Inputs.

// setInformerPod records the informer's pod under key (nil: deleted).
func (e *engine) setInformerPod(key string, obj *corev1.Pod) {
	old, had := e.keyUID[key]
	if had && (obj == nil || obj.UID != old) {
		// That pod is gone from the API (deleted, or replaced by one of the same name).
		delete(e.keyUID, key)
		delete(e.informed, old)
		delete(e.started, old)
		e.refreshPod(old)
	}
	if obj == nil {
		return
	}
	e.keyUID[key] = obj.UID
	e.informed[obj.UID] = obj
	e.refreshPod(obj.UID)
}

// startPod records what the agent says of a local pod starting: its addresses.
func (e *engine) startPod(p *corev1.Pod, ips []netip.Addr, seq uint64) {
	e.started[p.UID] = &startInfo{pod: p, ips: ips, seq: seq}
	e.refreshPod(p.UID)
}

// setNamespace records a namespace's labels (nil: deleted).
func (e *engine) setNamespace(name string, ns *corev1.Namespace) {
	var l labels.Set
	if ns != nil {
		l = labels.Set(ns.Labels)
	}
	old, had := e.nsLabels[name]
	if ns == nil {
		delete(e.nsLabels, name)
	} else {
		e.nsLabels[name] = l
	}
	if had == (ns != nil) && labels.Equals(old, l) {
		return
	}
	for _, p := range e.byNS[name] {
		e.evalGroups(p, true)
	}
}

// setPolicy records a NetworkPolicy (np nil: deleted).
func (e *engine) setPolicy(key types.NamespacedName, np *networkingv1.NetworkPolicy) {
	old := e.policies[key]
	var nw *polState
	if np != nil {
		nw = &polState{policy: compile(np), selected: map[types.UID]*pod{}}
		for _, p := range e.byNS[key.Namespace] {
			if p.local && p.policed && nw.selector.Matches(p.labels) {
				nw.selected[p.uid] = p
			}
		}
	}
	// The new version takes its groups before the old one lets go of them: peers that did
	// not change keep their set.
	if nw != nil && nw.active() {
		e.acquire(nw)
	}
	if old != nil && old.active() {
		e.release(old)
	}
	if nw == nil {
		delete(e.policies, key)
		delete(e.polByNS[key.Namespace], key)
	} else {
		e.policies[key] = nw
		if e.polByNS[key.Namespace] == nil {
			e.polByNS[key.Namespace] = map[types.NamespacedName]*polState{}
		}
		e.polByNS[key.Namespace][key] = nw
	}
	e.mark(ownPolicy, key.String())
	affected := map[types.UID]*pod{}
	if old != nil {
		for uid, p := range old.selected {
			affected[uid] = p
		}
	}
	if nw != nil {
		for uid, p := range nw.selected {
			affected[uid] = p
		}
	}
	if old != nil && nw != nil && nw.sameSelection(old.policy) {
		return // the same pods, in the same directions: their chains stay
	}
	for _, p := range affected {
		e.updateSigs(p)
	}
}

// Pods.

// record is a pod as its sources say now (nil: the pod is gone).
func (e *engine) record(uid types.UID) *pod {
	obj, st := e.informed[uid], e.started[uid]
	src := obj
	if src == nil {
		if st == nil {
			return nil
		}
		src = st.pod
	}
	r := &pod{
		uid: uid, ns: src.Namespace, name: src.Name, labels: labels.Set(src.Labels),
		local:    src.Spec.NodeName == e.cfg.node || st != nil,
		deleting: src.DeletionTimestamp != nil, created: src.CreationTimestamp.Time,
		ports: namedPorts(src),
	}
	finished := obj != nil && (obj.Status.Phase == corev1.PodSucceeded || obj.Status.Phase == corev1.PodFailed)
	r.policed = !src.Spec.HostNetwork && !finished
	if r.policed {
		if st != nil {
			r.claimSeq, r.claimed = st.seq, st.ips
		} else {
			r.claimed = statusIPs(obj)
		}
	}
	return r
}

// statusIPs is a pod's IPv4 addresses, as its status says.
func statusIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			for _, x := range out {
				if x == a {
					return
				}
			}
			out = append(out, a)
		}
	}
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	if len(p.Status.PodIPs) == 0 {
		add(p.Status.PodIP)
	}
	return out
}

// namedPorts is a pod's container ports by name and protocol (its containers', then its
// sidecars'; the first of a name and protocol counts).
func namedPorts(p *corev1.Pod) map[namedPort]uint16 {
	var out map[namedPort]uint16
	add := func(c *corev1.Container) {
		for _, cp := range c.Ports {
			if cp.Name == "" || cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
				continue
			}
			proto, ok := protoOf(&cp.Protocol)
			if !ok {
				continue
			}
			k := namedPort{cp.Name, proto}
			if _, dup := out[k]; dup {
				continue
			}
			if out == nil {
				out = map[namedPort]uint16{}
			}
			out[k] = uint16(cp.ContainerPort)
		}
	}
	for i := range p.Spec.Containers {
		add(&p.Spec.Containers[i])
	}
	for i := range p.Spec.InitContainers {
		if c := &p.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	return out
}

// refreshPod brings the engine's pod in line with its sources.
func (e *engine) refreshPod(uid types.UID) {
	want := e.record(uid)
	p := e.pods[uid]
	if want == nil {
		if p != nil {
			e.dropPod(p)
		}
		return
	}
	fresh := p == nil
	if fresh {
		p = &pod{uid: uid, ns: want.ns, name: want.name, groups: map[*group]bool{}}
		e.pods[uid] = p
		if e.byNS[p.ns] == nil {
			e.byNS[p.ns] = map[types.UID]*pod{}
		}
		e.byNS[p.ns][uid] = p
	}
	labelsChanged := fresh || !labels.Equals(p.labels, want.labels)
	stateChanged := fresh || p.local != want.local || p.policed != want.policed
	portsChanged := fresh || !samePorts(p.ports, want.ports)
	oldPorts := p.ports
	p.labels, p.local, p.policed, p.deleting, p.created = want.labels, want.local, want.policed, want.deleting, want.created
	if portsChanged {
		e.indexPorts(p, oldPorts, want.ports)
		p.ports = want.ports
	}
	e.setClaims(p, want.claimed, want.claimSeq)
	if labelsChanged || stateChanged {
		e.evalGroups(p, false)
		e.evalSelection(p)
	}
	if stateChanged {
		e.mark(ownPod, string(uid))
	}
	if portsChanged {
		e.namedPortsChanged(p, oldPorts)
	}
}

func samePorts(a, b map[namedPort]uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (e *engine) indexPorts(p *pod, old, nw map[namedPort]uint16) {
	for k := range old {
		if m := e.byPortName[k.name]; m != nil {
			delete(m, p.uid)
			if len(m) == 0 {
				delete(e.byPortName, k.name)
			}
		}
	}
	for k := range nw {
		if e.byPortName[k.name] == nil {
			e.byPortName[k.name] = map[types.UID]*pod{}
		}
		e.byPortName[k.name][p.uid] = p
	}
}

// dropPod forgets a pod that is gone.
func (e *engine) dropPod(p *pod) {
	e.mark(ownPod, string(p.uid))
	p.policed, p.local = false, false
	e.setClaims(p, nil, 0)
	e.evalGroups(p, false)
	e.evalSelection(p)
	old := p.ports
	e.indexPorts(p, old, nil)
	p.ports = nil
	e.namedPortsChanged(p, old)
	delete(e.pods, p.uid)
	delete(e.byNS[p.ns], p.uid)
	if len(e.byNS[p.ns]) == 0 {
		delete(e.byNS, p.ns)
	}
}

// Addresses.

// setClaims makes the pod claim exactly these addresses, and gives each address it touches
// to the pod that should have it: the one the agent told of last (PodStarting), else one
// not being deleted, else the newest, else the lowest UID.
func (e *engine) setClaims(p *pod, addrs []netip.Addr, seq uint64) {
	touched := map[netip.Addr]bool{}
	for _, a := range p.claimed {
		touched[a] = true
	}
	for _, a := range addrs {
		touched[a] = true
	}
	for _, a := range p.claimed {
		delete(e.claims[a], p.uid)
		if len(e.claims[a]) == 0 {
			delete(e.claims, a)
		}
	}
	p.claimed, p.claimSeq = addrs, seq
	for _, a := range addrs {
		if e.claims[a] == nil {
			e.claims[a] = map[types.UID]*pod{}
		}
		e.claims[a][p.uid] = p
	}
	changed := map[*pod]bool{}
	for a := range touched {
		var best *pod
		for _, c := range e.claims[a] {
			if best == nil || better(c, best) {
				best = c
			}
		}
		if cur := e.owner[a]; cur != best {
			if cur != nil {
				changed[cur] = true
			}
			if best != nil {
				changed[best] = true
				e.owner[a] = best
			} else {
				delete(e.owner, a)
			}
		}
	}
	changed[p] = true
	for q := range changed {
		e.updateIPs(q)
	}
}

func better(a, b *pod) bool {
	if a.claimSeq != b.claimSeq {
		return a.claimSeq > b.claimSeq
	}
	if a.deleting != b.deleting {
		return !a.deleting
	}
	if !a.created.Equal(b.created) {
		return a.created.After(b.created)
	}
	return a.uid < b.uid
}

// updateIPs recomputes the addresses a pod owns and marks what holds them.
func (e *engine) updateIPs(p *pod) {
	var ips []netip.Addr
	for _, a := range p.claimed {
		if e.owner[a] == p {
			ips = append(ips, a)
		}
	}
	if equalAddrs(ips, p.ips) {
		return
	}
	p.ips = ips
	for g := range p.groups {
		e.groupChanged(g)
	}
	e.mark(ownPod, string(p.uid)) // a pod not of this node has no dispatch: nothing to send
	e.namedPortsChanged(p, nil)
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Peer groups.

// groupChanged marks a group's set, and the named-port sets that depend on its members.
func (e *engine) groupChanged(g *group) {
	e.mark(ownGroup, g.key)
	for k, u := range g.users {
		if u.hasNamed(egress) {
			e.mark(ownPolicy, k.String())
		}
	}
}

// evalGroups re-evaluates the pod's membership of every group (only those selecting
// namespaces by label, when nsOnly: a namespace's labels changed).
func (e *engine) evalGroups(p *pod, nsOnly bool) {
	nsl := e.nsLabels[p.ns]
	for _, g := range e.groups {
		if nsOnly && !g.nsSel {
			continue
		}
		e.setMember(g, p, p.policed && g.matches(p, nsl))
	}
}

func (g *group) matches(p *pod, nsl labels.Set) bool {
	for _, t := range g.terms {
		if t.matches(p, nsl) {
			return true
		}
	}
	return false
}

func (e *engine) setMember(g *group, p *pod, in bool) {
	if in == (g.members[p.uid] != nil) {
		return
	}
	if in {
		g.members[p.uid] = p
		p.groups[g] = true
	} else {
		delete(g.members, p.uid)
		delete(p.groups, g)
	}
	if len(p.ips) > 0 {
		e.groupChanged(g) // and the egress named-port sets that resolve on its members
	}
}

// acquire makes an active policy hold its rules' groups (creating them).
func (e *engine) acquire(ps *polState) {
	for _, r := range ps.rules[egress] {
		for _, n := range r.named {
			if e.egressNamed[n.name] == nil {
				e.egressNamed[n.name] = map[types.NamespacedName]*polState{}
			}
			e.egressNamed[n.name][ps.key] = ps
		}
	}
	seen := map[string]bool{}
	for _, rules := range ps.rules {
		for _, r := range rules {
			if r.group == "" || seen[r.group] {
				continue
			}
			seen[r.group] = true
			g := e.groups[r.group]
			if g == nil {
				g = &group{key: r.group, terms: r.terms, users: map[types.NamespacedName]*polState{}, members: map[types.UID]*pod{}}
				for _, t := range r.terms {
					g.nsSel = g.nsSel || t.nsSel != nil
				}
				e.groups[r.group] = g
				e.mark(ownGroup, g.key)
				e.scan(g)
			}
			g.refs++
			g.users[ps.key] = ps
			ps.groups = append(ps.groups, g)
		}
	}
}

// scan computes a new group's members.
func (e *engine) scan(g *group) {
	namespaces := map[string]bool{}
	for _, t := range g.terms {
		if t.nsSel != nil {
			namespaces = nil // any namespace
			break
		}
		namespaces[t.ns] = true
	}
	visit := func(p *pod) {
		if p.policed && g.matches(p, e.nsLabels[p.ns]) {
			g.members[p.uid] = p
			p.groups[g] = true
		}
	}
	if namespaces == nil {
		for _, p := range e.pods {
			visit(p)
		}
		return
	}
	for ns := range namespaces {
		for _, p := range e.byNS[ns] {
			visit(p)
		}
	}
}

// release lets go of the groups an inactive (or replaced) policy held.
func (e *engine) release(ps *polState) {
	for _, r := range ps.rules[egress] {
		for _, n := range r.named {
			if m := e.egressNamed[n.name]; m != nil && m[ps.key] == ps {
				delete(m, ps.key)
				if len(m) == 0 {
					delete(e.egressNamed, n.name)
				}
			}
		}
	}
	for _, g := range ps.groups {
		g.refs--
		if g.users[ps.key] == ps {
			delete(g.users, ps.key)
		}
		if g.refs > 0 {
			continue
		}
		for _, p := range g.members {
			delete(p.groups, g)
		}
		delete(e.groups, g.key)
		e.mark(ownGroup, g.key)
	}
	ps.groups = nil
}

// Selection of this node's pods.

// evalSelection re-evaluates which policies select the pod (this node's pods only).
func (e *engine) evalSelection(p *pod) {
	sel := p.local && p.policed
	for _, ps := range e.polByNS[p.ns] {
		in := sel && ps.selector.Matches(p.labels)
		if in == (ps.selected[p.uid] != nil) {
			continue
		}
		wasActive := ps.active()
		if in {
			ps.selected[p.uid] = p
		} else {
			delete(ps.selected, p.uid)
		}
		switch {
		case !wasActive && ps.active():
			e.acquire(ps)
			e.mark(ownPolicy, ps.key.String())
		case wasActive && !ps.active():
			e.release(ps)
			e.mark(ownPolicy, ps.key.String())
		}
		if ps.hasNamed(ingress) {
			e.mark(ownPolicy, ps.key.String())
		}
	}
	e.updateSigs(p)
}

// updateSigs recomputes the chains a local pod's dispatch goes to.
func (e *engine) updateSigs(p *pod) {
	for _, d := range []direction{ingress, egress} {
		var keys []types.NamespacedName
		if p.local && p.policed {
			for k, ps := range e.polByNS[p.ns] {
				if ps.isolates[d] && ps.selected[p.uid] != nil {
					keys = append(keys, k)
				}
			}
		}
		var s *sigChain
		if len(keys) > 0 {
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			name := sigName(d, keys)
			s = e.sigs[name]
			if s == nil {
				s = &sigChain{name: name, dir: d, policies: keys}
				e.sigs[name] = s
				e.mark(ownSig, name)
			}
		}
		old := p.sig[d]
		if old == s {
			continue
		}
		if s != nil {
			s.refs++
		}
		if old != nil {
			old.refs--
			if old.refs == 0 {
				delete(e.sigs, old.name)
				e.mark(ownSig, old.name)
			}
		}
		p.sig[d] = s
		if len(p.ips) > 0 {
			e.mark(ownPod, string(p.uid))
		}
	}
}

// Named ports.

// namedPortsChanged marks the named-port sets that may hold the pod: those of the ingress
// rules of policies selecting it, and those of egress rules naming one of its ports (now or
// before: old).
func (e *engine) namedPortsChanged(p *pod, old map[namedPort]uint16) {
	if p.local {
		for _, ps := range e.polByNS[p.ns] {
			if ps.selected[p.uid] != nil && ps.hasNamed(ingress) {
				e.mark(ownPolicy, ps.key.String())
			}
		}
	}
	if len(p.ports) == 0 && len(old) == 0 {
		return
	}
	for _, ports := range []map[namedPort]uint16{p.ports, old} {
		for k := range ports {
			for key := range e.egressNamed[k.name] {
				e.mark(ownPolicy, key.String())
			}
		}
	}
}
