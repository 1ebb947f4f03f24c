package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/network/nft"
)

const (
	sliceByService = "havre-proxy-service"
	retryPeriod    = time.Second
)

// Proxier keeps the node's nftables table in step with Services and EndpointSlices.
type Proxier struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	metrics *metrics
	health  *healthServer
	nsFD    int // network namespace to program (tests); -1: the process's own

	services cache.Indexer
	slices   cache.Indexer
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced

	trigger chan struct{}

	mu      sync.Mutex
	dirty   map[types.NamespacedName]bool
	all     bool // rebuild every service (the node's zone changed)
	full    bool // reconcile with what the kernel holds (start, after a failure)
	zone    string
	frags   map[types.NamespacedName]*Fragment
	owners  map[nft.ElemID]types.NamespacedName
	checked map[types.NamespacedName]bool // the Services of frags with a health-check node port
	base    *nft.Fragment                 // the main table's skeleton, as last committed
	// shardBase is every shard table's skeleton, as last committed.
	shardBase *nft.Fragment
	synced1   chan struct{} // closed and replaced after every successful sync
	syncsRun  int
}

// New builds a proxier and registers its Service, EndpointSlice and Node informers on
// factory; the caller starts the factory, then calls Run.
func New(cfg Config, factory informers.SharedInformerFactory) (*Proxier, error) {
	if cfg.Table == "" {
		return nil, errors.New("proxy: Config.Table is empty: pass the node's bridge name (e.g. havre0)")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Shards < 0 || cfg.Shards > MaxShards {
		return nil, fmt.Errorf("proxy: Config.Shards is %d: pass 0 (the default, %d) or a count from 1 to %d", cfg.Shards, DefaultShards, MaxShards)
	}
	for _, ip := range cfg.NodeIPs {
		if !ip.Is4() {
			return nil, fmt.Errorf("proxy: node IP %s is not IPv4: the proxy programs family ip only; pass IPv4 node addresses", ip)
		}
	}
	p := &Proxier{
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     slog.Default().With("component", "proxy", "table", cfg.Table),
		metrics: newMetrics(),
		nsFD:    -1,
		trigger: make(chan struct{}, 1),
		dirty:   map[types.NamespacedName]bool{},
		full:    true,
		frags:   map[types.NamespacedName]*Fragment{},
		owners:  map[nft.ElemID]types.NamespacedName{},
		checked: map[types.NamespacedName]bool{},
		synced1: make(chan struct{}),
	}
	p.health = newHealthServer(cfg.NodeIPs, p.log)

	svcInf := factory.Core().V1().Services().Informer()
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	nodeInf := factory.Core().V1().Nodes()
	if err := sliceInf.AddIndexers(cache.Indexers{sliceByService: func(obj any) ([]string, error) {
		s, ok := obj.(*discovery.EndpointSlice)
		if !ok || s.Labels[discovery.LabelServiceName] == "" {
			return nil, nil
		}
		return []string{s.Namespace + "/" + s.Labels[discovery.LabelServiceName]}, nil
	}}); err != nil {
		return nil, fmt.Errorf("proxy: index EndpointSlices by service (was the informer factory started before New?): %w", err)
	}
	if _, err := svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.serviceChanged(obj) },
		UpdateFunc: func(_, obj any) { p.serviceChanged(obj) },
		DeleteFunc: func(obj any) { p.serviceChanged(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.sliceChanged(obj) },
		UpdateFunc: func(old, obj any) {
			p.sliceChanged(old)
			p.sliceChanged(obj)
		},
		DeleteFunc: func(obj any) { p.sliceChanged(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.nodeChanged(obj) },
		UpdateFunc: func(_, obj any) { p.nodeChanged(obj) },
	}); err != nil {
		return nil, err
	}
	p.services, p.slices, p.nodes = svcInf.GetIndexer(), sliceInf.GetIndexer(), nodeInf.Lister()
	p.synced = []cache.InformerSynced{svcInf.HasSynced, sliceInf.HasSynced, nodeInf.Informer().HasSynced}
	return p, nil
}

func unwrap(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

func (p *Proxier) markDirty(k types.NamespacedName) {
	p.mu.Lock()
	p.dirty[k] = true
	p.mu.Unlock()
	p.requestSync()
}

func (p *Proxier) requestSync() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

func (p *Proxier) serviceChanged(obj any) {
	if s, ok := unwrap(obj).(*v1.Service); ok {
		p.markDirty(types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
	}
}

func (p *Proxier) sliceChanged(obj any) {
	if s, ok := unwrap(obj).(*discovery.EndpointSlice); ok && s.Labels[discovery.LabelServiceName] != "" {
		p.markDirty(types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discovery.LabelServiceName]})
	}
}

func (p *Proxier) nodeChanged(obj any) {
	n, ok := unwrap(obj).(*v1.Node)
	if !ok || n.Name != p.cfg.NodeName {
		return
	}
	zone := n.Labels[v1.LabelTopologyZone]
	p.mu.Lock()
	changed := zone != p.zone
	if changed {
		p.zone, p.all = zone, true
	}
	p.mu.Unlock()
	if changed {
		p.requestSync()
	}
}

// Run syncs until ctx is done. The table stays in place when it returns: an agent restart
// keeps traffic flowing, and the next Run reconciles with what the kernel holds.
func (p *Proxier) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("proxy: informers did not sync before the context ended: %w", ctx.Err())
	}
	k, err := newKernel(p.cfg.Table, p.nsFD)
	if err != nil {
		return err
	}
	defer k.close()
	ct := netlink.Handle{}
	cth := &ct
	if p.nsFD >= 0 {
		if cth, err = netlink.NewHandleAt(netns.NsHandle(p.nsFD)); err != nil {
			return fmt.Errorf("proxy: netlink handle in the test namespace: %w", err)
		}
		defer cth.Close()
	}
	defer p.health.close()

	p.requestSync()
	var last time.Time
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-retry:
		}
		retry = nil
		if !last.IsZero() {
			if wait := p.cfg.MinSyncPeriod - p.clock.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-p.clock.After(wait):
				}
			}
		}
		last = p.clock.Now()
		if err := p.sync(k, cth); err != nil {
			p.log.Error("sync failed; retrying with a full resync", "err", err, "retryIn", retryPeriod)
			retry = p.clock.After(retryPeriod)
		}
	}
}

// waitSync returns a channel closed after the next successful sync (tests, benchmarks).
func (p *Proxier) waitSync() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.synced1
}

func (p *Proxier) buildConfig(zone string) *BuildConfig {
	return &BuildConfig{
		Table: p.cfg.Table, NodeName: p.cfg.NodeName, Zone: zone, NodeIPs: p.cfg.NodeIPs,
		ClusterCIDR: p.cfg.ClusterCIDR, ServiceCIDRs: p.cfg.ServiceCIDRs, LocalDNS: p.cfg.LocalDNS,
		Shards: p.cfg.Shards,
	}
}

func (p *Proxier) fragmentFor(bc *BuildConfig, k types.NamespacedName) *Fragment {
	obj, ok, _ := p.services.GetByKey(k.Namespace + "/" + k.Name)
	if !ok {
		return nil
	}
	objs, _ := p.slices.ByIndex(sliceByService, k.Namespace+"/"+k.Name)
	slices := make([]*discovery.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		slices = append(slices, o.(*discovery.EndpointSlice))
	}
	return buildService(bc, obj.(*v1.Service), slices)
}

// claim drops the elements of f that another service already owns (two services with the
// same external IP and port): the first keeps it, as the kernel can hold only one.
func (p *Proxier) claim(k types.NamespacedName, f *Fragment) *Fragment {
	if f == nil {
		return nil
	}
	conflict := false
	keep := func(elems []nft.Element) []nft.Element {
		var out []nft.Element
		for _, e := range elems {
			if o, ok := p.owners[e.ID()]; ok && o != k {
				conflict = true
				p.log.Warn("address and port already used by another service; ignored for this one", "service", k.String(), "owner", o.String(), "set", e.Set, "key", e.Key.Text(nft.KeyAddrProtoPort))
				continue
			}
			out = append(out, e)
		}
		return out
	}
	elems, main := keep(f.Elements), keep(f.Main)
	if !conflict {
		return f
	}
	g := *f
	g.Elements, g.Main = elems, main
	return &g
}

func (p *Proxier) setOwners(k types.NamespacedName, old, new *Fragment) {
	if old != nil {
		for _, l := range [][]nft.Element{old.Elements, old.Main} {
			for _, e := range l {
				if p.owners[e.ID()] == k {
					delete(p.owners, e.ID())
				}
			}
		}
	}
	if new != nil {
		for _, l := range [][]nft.Element{new.Elements, new.Main} {
			for _, e := range l {
				p.owners[e.ID()] = k
			}
		}
	}
}

// sync applies what changed since the last sync (or everything, reconciling with the
// kernel, at start and after a failure).
func (p *Proxier) sync(k *kernel, ct *netlink.Handle) (err error) {
	start := time.Now()
	p.mu.Lock()
	dirty, all, full, zone := p.dirty, p.all, p.full, p.zone
	p.dirty, p.all = map[types.NamespacedName]bool{}, false
	p.mu.Unlock()
	kind := "partial"
	if full {
		kind = "full"
	}
	defer func() {
		result := "ok"
		if err != nil {
			result = "error"
			p.mu.Lock()
			p.full = true
			for n := range dirty {
				p.dirty[n] = true
			}
			p.mu.Unlock()
		}
		p.metrics.syncs.WithLabelValues(result, kind).Inc()
		if err == nil {
			p.mu.Lock()
			p.full = false
			p.syncsRun++
			close(p.synced1) // after the metrics: waiters see them
			p.synced1 = make(chan struct{})
			p.mu.Unlock()
		}
	}()

	bc := p.buildConfig(zone)
	names := dirty
	if full || all {
		names = map[types.NamespacedName]bool{}
		for _, key := range p.services.ListKeys() {
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			names[types.NamespacedName{Namespace: ns, Name: name}] = true
		}
		for n := range p.frags {
			names[n] = true
		}
	}
	ordered := make([]types.NamespacedName, 0, len(names))
	for n := range names {
		ordered = append(ordered, n)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].String() < ordered[j].String() })

	built := make(map[types.NamespacedName]*Fragment, len(ordered))
	for _, n := range ordered {
		built[n] = p.fragmentFor(bc, n)
	}
	shards := bc.shards()
	base, shardBase := buildBase(bc), buildShardBase(bc)

	frags, owners := p.frags, p.owners
	if full {
		p.frags, p.owners = map[types.NamespacedName]*Fragment{}, map[nft.ElemID]types.NamespacedName{}
		for _, n := range ordered {
			if f := p.claim(n, built[n]); f != nil {
				p.frags[n] = f
				p.setOwners(n, nil, f)
			}
		}
		ks, rerr := k.read()
		if rerr == nil {
			rerr = k.syncModel(ks, &Model{Table: p.cfg.Table, Shards: shards, Base: base, ShardBase: shardBase, Services: p.frags})
		}
		if rerr != nil {
			p.frags, p.owners = frags, owners
			return rerr
		}
	} else if err := p.syncChanged(k, ordered, built, shards, all, base, shardBase); err != nil {
		return err
	}
	p.base, p.shardBase = base, shardBase

	// Conntrack: UDP flows to endpoints that went away.
	var filters []netlink.CustomConntrackFilter
	for _, n := range ordered {
		filters = append(filters, staleUDP(frags[n], p.frags[n])...)
	}
	if len(filters) > 0 {
		if n, cerr := ct.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filters...); cerr != nil {
			p.log.Warn("deleting stale UDP conntrack entries failed; clients may keep reaching removed endpoints until their flows expire", "err", cerr)
		} else if n > 0 {
			p.log.Debug("deleted stale UDP conntrack entries", "count", n)
		}
	}

	// Health-check node ports: the Services that have one, kept without a walk over all.
	if full {
		p.checked = map[types.NamespacedName]bool{}
		for n, f := range p.frags {
			if f.HealthCheckPort != 0 {
				p.checked[n] = true
			}
		}
	} else {
		for _, n := range ordered {
			if f := p.frags[n]; f != nil && f.HealthCheckPort != 0 {
				p.checked[n] = true
			} else {
				delete(p.checked, n)
			}
		}
	}
	want := make(map[uint16]hcWant, len(p.checked))
	for n := range p.checked {
		f := p.frags[n]
		want[f.HealthCheckPort] = hcWant{name: n, local: f.LocalEndpoints}
	}
	p.health.sync(want)

	elapsed := time.Since(start)
	st := k.conn.Stats
	p.metrics.duration.Observe(elapsed.Seconds())
	p.metrics.changes.WithLabelValues("chains").Add(float64(st.Chains))
	p.metrics.changes.WithLabelValues("rules").Add(float64(st.Rules))
	p.metrics.changes.WithLabelValues("elements").Add(float64(st.Elements))
	p.metrics.changes.WithLabelValues("sets").Add(float64(st.Sets))
	p.metrics.transactions.Add(float64(st.Transactions))
	p.metrics.lastSync.Set(float64(p.clock.Now().UnixNano()) / 1e9)
	level := slog.LevelDebug
	if full || st.Transactions > 1 {
		level = slog.LevelInfo
	}
	p.log.Log(context.Background(), level, "synced", "kind", kind, "services", len(p.frags), "changed", len(ordered),
		"transactions", st.Transactions, "chains", st.Chains, "rules", st.Rules, "elements", st.Elements, "sets", st.Sets, "duration", elapsed)
	return nil
}

// syncChanged sends what changed for the Services named in ordered (and for the skeletons
// when all is set) in one sequence of transactions (see changeSet.send). A Service touches
// its shard and the main table only, so the kernel validates that shard (a fraction of the
// ruleset) and, when one of the Service's main-table verdicts changed, the small main table.
func (p *Proxier) syncChanged(k *kernel, ordered []types.NamespacedName, built map[types.NamespacedName]*Fragment,
	shards int, all bool, base, shardBase *nft.Fragment) error {
	defs := skeletonDefs(base, shardBase)
	cs := newChangeSet(p.cfg.Table, shards)
	if all {
		if err := cs.skeletons(p.base, base, p.shardBase, shardBase); err != nil {
			return err
		}
	}
	var twoStep []types.NamespacedName
	newFrags := make(map[types.NamespacedName]*Fragment, len(ordered))
	for _, n := range ordered {
		old := p.frags[n]
		p.setOwners(n, old, nil)
		f := p.claim(n, built[n])
		p.setOwners(n, nil, f)
		newFrags[n] = f
		if err := cs.service(n, old, f); errors.Is(err, nft.ErrRecreate) {
			twoStep = append(twoStep, n)
		}
	}
	if len(twoStep) > 0 {
		// A set changed definition: remove those services' shard parts first, then add them.
		first := newChangeSet(p.cfg.Table, shards)
		for _, n := range twoStep {
			_ = first.shardPlan(shardOf(n, shards)).Diff(p.frags[n].frag(), nil)
		}
		t := k.begin()
		if err := first.send(t, defs); err != nil {
			return err
		}
		if err := t.Commit(); err != nil {
			return err
		}
		for _, n := range twoStep {
			delete(p.frags, n)
			_ = cs.shardPlan(shardOf(n, shards)).Diff(nil, newFrags[n].frag())
		}
	}
	t := k.begin()
	if err := cs.send(t, defs); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return err
	}
	for _, n := range ordered {
		if f := newFrags[n]; f != nil {
			p.frags[n] = f
		} else {
			delete(p.frags, n)
		}
	}
	return nil
}

// skeletonDefs are the fixed sets' definitions (the only sets Services add elements to).
func skeletonDefs(base, shardBase *nft.Fragment) map[string]nft.Set {
	defs := map[string]nft.Set{}
	for _, f := range []*nft.Fragment{base, shardBase} {
		for _, s := range f.Sets {
			defs[s.Name] = s
		}
	}
	return defs
}
