package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/network/nft"
)

const retryPeriod = time.Second

// Policer keeps the node's NetworkPolicy table in step with Pods, Namespaces and
// NetworkPolicies.
type Policer struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	metrics *metrics
	nsFD    int // network namespace to program (tests); -1: the process's own

	pods, namespaces, policies cache.Indexer
	synced                     []cache.InformerSynced

	trigger chan struct{}

	mu         sync.Mutex
	dirtyPods  map[string]bool // informer keys
	dirtyNS    map[string]bool
	dirtyPols  map[string]bool
	starts     map[types.UID]*startInfo // PodStarting's, not yet taken by a sync
	told       map[types.UID]*startInfo // the last PodStarting of each pod
	seq        uint64                   // counts events: informer changes and PodStartings
	applied    uint64                   // every event up to this one is committed
	committed  chan struct{}            // closed and replaced after every successful sync
	marked     chan struct{}            // closed and replaced after every event
	syncsDone  int
	lastResult error

	// The sync loop's own.
	e      *engine
	frags  map[owner]*nft.Fragment // as committed
	defs   map[string]nft.Set      // every set ever sent, by name
	full   bool                    // reconcile with what the kernel holds (start, after a failure)
	taken  uint64                  // the last event the engine has
	cached bool
}

// New builds a Policer and registers its Pod, Namespace and NetworkPolicy informers on
// factory (which must not filter pods to this node: peer sets hold every pod's address);
// the caller starts the factory, then calls Run.
func New(cfg Config, factory informers.SharedInformerFactory) (*Policer, error) {
	if cfg.Table == "" {
		return nil, errors.New("netpol: Config.Table is empty: pass the policer's table name (e.g. havre0-netpol)")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("netpol: Config.NodeName is empty: pass this node's name")
	}
	if !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4() {
		return nil, fmt.Errorf("netpol: Config.PodCIDR %v is not an IPv4 prefix: pass this node's pod CIDR (node.spec.podCIDR)", cfg.PodCIDR)
	}
	if cfg.Gateway.IsValid() && !cfg.PodCIDR.Contains(cfg.Gateway) {
		return nil, fmt.Errorf("netpol: Config.Gateway %s is not in the pod CIDR %s: pass the bridge's address", cfg.Gateway, cfg.PodCIDR)
	}
	if cfg.DNS.IsValid() && !cfg.DNS.Is4() {
		return nil, fmt.Errorf("netpol: Config.DNS %s is not IPv4: pass the node DNS server's IPv4 address or none", cfg.DNS)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	p := &Policer{
		cfg:       cfg,
		clock:     cfg.Clock,
		log:       slog.Default().With("component", "netpol", "table", cfg.Table),
		metrics:   newMetrics(),
		nsFD:      -1,
		trigger:   make(chan struct{}, 1),
		dirtyPods: map[string]bool{},
		dirtyNS:   map[string]bool{},
		dirtyPols: map[string]bool{},
		starts:    map[types.UID]*startInfo{},
		told:      map[types.UID]*startInfo{},
		committed: make(chan struct{}),
		marked:    make(chan struct{}),
		e: newEngine(engineConfig{table: cfg.Table, node: cfg.NodeName, podCIDR: cfg.PodCIDR.Masked(),
			gateway: cfg.Gateway, dns: cfg.DNS}),
		frags: map[owner]*nft.Fragment{},
		defs:  map[string]nft.Set{},
		full:  true,
	}
	podInf := factory.Core().V1().Pods().Informer()
	if err := podInf.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("netpol: the pod informer: %w", err)
	}
	nsInf := factory.Core().V1().Namespaces().Informer()
	polInf := factory.Networking().V1().NetworkPolicies().Informer()
	// The dirty sets are swapped by each sync: they are reached under the lock.
	mark := func(set func() map[string]bool, obj any) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			return
		}
		p.mu.Lock()
		set()[key] = true
		p.event()
		p.mu.Unlock()
		p.requestSync()
	}
	pods := func() map[string]bool { return p.dirtyPods }
	nss := func() map[string]bool { return p.dirtyNS }
	pols := func() map[string]bool { return p.dirtyPols }
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { mark(pods, obj) },
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*corev1.Pod); ok {
				if n, ok := obj.(*corev1.Pod); ok && !podMatters(o, n) {
					return
				}
			}
			mark(pods, obj)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				p.mu.Lock()
				delete(p.told, pod.UID)
				p.mu.Unlock()
			}
			mark(pods, obj)
		},
	}); err != nil {
		return nil, err
	}
	if _, err := nsInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { mark(nss, obj) },
		UpdateFunc: func(_, obj any) { mark(nss, obj) },
		DeleteFunc: func(obj any) { mark(nss, obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := polInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { mark(pols, obj) },
		UpdateFunc: func(_, obj any) { mark(pols, obj) },
		DeleteFunc: func(obj any) { mark(pols, obj) },
	}); err != nil {
		return nil, err
	}
	p.pods, p.namespaces, p.policies = podInf.GetIndexer(), nsInf.GetIndexer(), polInf.GetIndexer()
	p.synced = []cache.InformerSynced{podInf.HasSynced, nsInf.HasSynced, polInf.HasSynced}
	return p, nil
}

// slimPod keeps of a pod what the policer uses (its identity, labels, node, addresses,
// phase, deletion and container ports), so that a node's cache of every pod in the
// cluster stays small. It is the pod informer's transform: the factory's pod informer is
// the policer's alone.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown: its object was transformed when cached
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp, CreationTimestamp: p.CreationTimestamp},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	for _, c := range p.Spec.Containers {
		slim.Spec.Containers = append(slim.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil {
			slim.Spec.InitContainers = append(slim.Spec.InitContainers, corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy})
		}
	}
	return slim, nil
}

// podMatters reports whether a pod update changes anything the policer uses: the status
// updates that only move conditions do not.
func podMatters(old, nw *corev1.Pod) bool {
	return old.UID != nw.UID ||
		!equality.Semantic.DeepEqual(old.Labels, nw.Labels) ||
		old.Spec.NodeName != nw.Spec.NodeName ||
		old.Status.Phase != nw.Status.Phase ||
		old.Status.PodIP != nw.Status.PodIP ||
		!equality.Semantic.DeepEqual(old.Status.PodIPs, nw.Status.PodIPs) ||
		(old.DeletionTimestamp == nil) != (nw.DeletionTimestamp == nil)
	// Spec.Containers' ports and HostNetwork do not change in a pod's life.
}

// event counts an event (p.mu held).
func (p *Policer) event() uint64 {
	p.seq++
	close(p.marked)
	p.marked = make(chan struct{})
	return p.seq
}

func (p *Policer) requestSync() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// PodStarting tells the Policer a pod of this node has these addresses (its sandbox's) and
// returns once the pod's rules are committed: its dispatch (the policies selecting it, or
// nothing to check), its addresses in the peer sets that select it, its named ports. Until
// then traffic to and from the addresses is dropped. The agent calls it after the sandbox
// has its addresses and before it starts any container, each time it creates a sandbox (and
// may call it again: it returns at once when nothing changed). Host-network pods are not
// policed: it returns nil at once. It waits for Run's first sync; it fails only when ctx
// ends first.
func (p *Policer) PodStarting(ctx context.Context, pod *corev1.Pod, ips []netip.Addr) error {
	if pod.Spec.HostNetwork {
		return nil
	}
	var v4 []netip.Addr
	for _, a := range ips {
		a = a.Unmap()
		if a.Is4() && !containsAddr(v4, a) {
			v4 = append(v4, a)
		}
	}
	p.mu.Lock()
	if last := p.told[pod.UID]; last != nil && equalAddrs(last.ips, v4) && last.seq <= p.applied {
		p.mu.Unlock()
		return nil
	}
	s := &startInfo{pod: pod.DeepCopy(), ips: v4, seq: p.event()}
	p.starts[pod.UID] = s
	p.told[pod.UID] = s
	ch, applied := p.committed, p.applied
	p.mu.Unlock()
	p.requestSync()
	for applied < s.seq {
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			last := p.lastResult
			p.mu.Unlock()
			msg := fmt.Sprintf("netpol: the rules of pod %s/%s (%v) were not committed before the context ended (is the Policer running?)", pod.Namespace, pod.Name, v4)
			if last != nil {
				return fmt.Errorf("%s; its last sync failed: %v: %w", msg, last, ctx.Err())
			}
			return fmt.Errorf("%s: %w", msg, ctx.Err())
		}
		p.mu.Lock()
		ch, applied = p.committed, p.applied
		p.mu.Unlock()
	}
	return nil
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// NextSync returns a channel closed once the next sync has been committed. Asked before
// Run, it tells when the node's policies are first programmed.
func (p *Policer) NextSync() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.committed
}

// Run syncs until ctx is done. The table stays in place when it returns: policies stay
// enforced across an agent restart, and the next Run reconciles with what the kernel holds.
func (p *Policer) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("netpol: informers did not sync before the context ended: %w", ctx.Err())
	}
	conn, err := nft.Open(p.nsFD, "table ip "+p.cfg.Table)
	if err != nil {
		return fmt.Errorf("netpol: %w", err)
	}
	defer conn.Close()
	p.requestSync()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-retry:
		}
		retry = nil
		if err := p.sync(conn); err != nil {
			p.log.Error("sync failed; retrying with a full resync", "err", err, "retryIn", retryPeriod)
			retry = p.clock.After(retryPeriod)
		}
	}
}

// take hands the changes the informers and PodStarting recorded to the engine.
func (p *Policer) take() {
	p.mu.Lock()
	pods, nss, pols, starts := p.dirtyPods, p.dirtyNS, p.dirtyPols, p.starts
	p.dirtyPods, p.dirtyNS, p.dirtyPols, p.starts = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[types.UID]*startInfo{}
	p.taken = p.seq // every event so far is in what was just taken
	p.mu.Unlock()
	for key := range nss {
		obj, ok, _ := p.namespaces.GetByKey(key)
		var ns *corev1.Namespace
		if ok {
			ns = obj.(*corev1.Namespace)
		}
		p.e.setNamespace(key, ns)
	}
	for key := range pols {
		obj, ok, _ := p.policies.GetByKey(key)
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		var np *networkingv1.NetworkPolicy
		if ok {
			np = obj.(*networkingv1.NetworkPolicy)
		}
		p.e.setPolicy(types.NamespacedName{Namespace: ns, Name: name}, np)
	}
	for key := range pods {
		obj, ok, _ := p.pods.GetByKey(key)
		var pod *corev1.Pod
		if ok {
			pod = obj.(*corev1.Pod)
		}
		p.e.setInformerPod(key, pod)
	}
	list := make([]*startInfo, 0, len(starts))
	for _, s := range starts {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	for _, s := range list {
		p.e.startPod(s.pod, s.ips, s.seq)
	}
}

// sync sends what changed since the last sync (everything, reconciled with what the kernel
// holds, at start and after a failure).
func (p *Policer) sync(conn *nft.Conn) (err error) {
	start := time.Now()
	if !p.cached {
		// The first sync starts from the whole of the informers' caches.
		p.mu.Lock()
		for _, k := range p.namespaces.ListKeys() {
			p.dirtyNS[k] = true
		}
		for _, k := range p.policies.ListKeys() {
			p.dirtyPols[k] = true
		}
		for _, k := range p.pods.ListKeys() {
			p.dirtyPods[k] = true
		}
		p.mu.Unlock()
		p.cached = true
	}
	p.take()
	full := p.full
	kind := "partial"
	if full {
		kind = "full"
	}
	defer func() {
		result := "ok"
		if err != nil {
			result = "error"
			p.full = true
		}
		p.metrics.syncs.WithLabelValues(result, kind).Inc()
		p.mu.Lock()
		p.lastResult = err
		if err == nil {
			p.full = false
			p.applied = p.taken
			p.syncsDone++
			close(p.committed)
			p.committed = make(chan struct{})
		}
		p.mu.Unlock()
	}()
	var changed int
	if full {
		p.e.takeDirty()
		frags := map[owner]*nft.Fragment{}
		for _, o := range p.e.owners() {
			if f := p.e.build(o); f != nil {
				frags[o] = f
			}
		}
		changed = len(frags)
		if err := p.reconcile(conn, frags); err != nil {
			return err
		}
		p.frags = frags
	} else {
		dirty := p.e.takeDirty()
		plan := &nft.Plan{}
		built := make(map[owner]*nft.Fragment, len(dirty))
		for _, o := range sortedOwners(dirty) {
			f := p.e.build(o)
			built[o] = f
			p.addDefs(f)
			if err := plan.Diff(p.frags[o], f); err != nil {
				// Set names say what the set holds: a definition never changes under a name.
				return fmt.Errorf("%s %q: %w", ownerKinds[o.kind], o.key, err)
			}
		}
		changed = len(dirty)
		if !plan.Empty() {
			t := conn.Begin()
			if err := t.Queue(p.cfg.Table, plan, p.defs, false); err != nil {
				return err
			}
			if err := t.Commit(); err != nil {
				return err
			}
		}
		for o, f := range built {
			if f != nil {
				p.frags[o] = f
			} else {
				delete(p.frags, o)
			}
		}
	}
	elapsed := time.Since(start)
	st := conn.Stats
	p.metrics.duration.Observe(elapsed.Seconds())
	p.metrics.changes.WithLabelValues("chains").Add(float64(st.Chains))
	p.metrics.changes.WithLabelValues("rules").Add(float64(st.Rules))
	p.metrics.changes.WithLabelValues("elements").Add(float64(st.Elements))
	p.metrics.changes.WithLabelValues("sets").Add(float64(st.Sets))
	p.metrics.transactions.Add(float64(st.Transactions))
	level := slog.LevelDebug
	if full || st.Transactions > 1 {
		level = slog.LevelInfo
	}
	p.log.Log(context.Background(), level, "synced", "kind", kind, "policies", len(p.e.policies), "pods", len(p.e.pods),
		"changed", changed, "transactions", st.Transactions, "chains", st.Chains, "rules", st.Rules, "elements", st.Elements, "sets", st.Sets, "duration", elapsed)
	return nil
}

var ownerKinds = map[ownerKind]string{ownBase: "skeleton", ownPolicy: "policy", ownGroup: "peer set", ownSig: "pod chain", ownPod: "pod"}

func sortedOwners(m map[owner]bool) []owner {
	out := make([]owner, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].key < out[j].key
	})
	return out
}

func (p *Policer) addDefs(f *nft.Fragment) {
	if f == nil {
		return
	}
	for _, s := range f.Sets {
		p.defs[s.Name] = s
	}
}

// reconcile makes the kernel's table what the fragments say, whatever it holds: read once,
// then one sequence of transactions.
func (p *Policer) reconcile(conn *nft.Conn, frags map[owner]*nft.Fragment) error {
	list := make([]*nft.Fragment, 0, len(frags))
	for _, o := range sortedOwners(ownersOf(frags)) {
		list = append(list, frags[o])
		p.addDefs(frags[o])
	}
	table := p.cfg.Table
	st, err := conn.ReadTables(func(n string) bool { return n == table }, func(_, set string) (nft.KeyKind, bool) {
		s, ok := p.defs[set]
		return s.Key, ok
	})
	if err != nil {
		return err
	}
	plan, err := nft.Reconcile(st[table], list)
	if errors.Is(err, nft.ErrRecreate) {
		p.log.Warn("the table holds a set the policer would define differently; recreating the table", "err", err)
		t := conn.Begin()
		if err := t.DeleteTable(table); err != nil {
			return err
		}
		if err := t.Commit(); err != nil {
			return err
		}
		plan, err = nft.Reconcile(nil, list)
	}
	if err != nil {
		return err
	}
	t := conn.Begin()
	if err := t.Queue(table, plan, p.defs, true); err != nil {
		return err
	}
	return t.Commit()
}

func ownersOf(m map[owner]*nft.Fragment) map[owner]bool {
	out := make(map[owner]bool, len(m))
	for o := range m {
		out[o] = true
	}
	return out
}

// Cleanup removes the Policer's table, for `havre agent reset`. A table that is not there is
// not an error.
func Cleanup(table string) error { return cleanup(table, -1) }

func cleanup(table string, nsFD int) error {
	conn, err := nft.Open(nsFD, "table ip "+table)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.DeleteTables(func(n string) bool { return n == table })
}
