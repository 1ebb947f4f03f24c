package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Overlay is one node's part of the pod network across nodes.
type Overlay struct {
	cfg       Config
	log       *slog.Logger
	podMTU    int
	uplinkMTU int // the uplink's MTU PodMTU was computed from

	informer cache.SharedIndexInformer
	lister   corelisters.NodeLister
	reg      cache.ResourceEventHandlerRegistration
	changed  chan struct{}
	ready    chan struct{}
	once     sync.Once
	running  atomic.Bool
	metrics  *metrics

	// Run's own.
	peers       map[string]peer
	problems    string
	mtuReported int
}

// minRetry is the first wait after a failed pass; it doubles up to the
// resync period.
const minRetry = time.Second

// New finds the uplink (the interface holding cfg.NodeIP), sets up the
// VXLAN device (unless cfg.Mode is ModeDirect) and registers with nodes,
// which the caller starts. It writes nothing that is already right, and
// no route: Run does, once the informer has synced, so that a restarted
// agent never routes with an incomplete view of the cluster.
func New(cfg Config, nodes coreinformers.NodeInformer) (*Overlay, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	if nodes == nil {
		return nil, errors.New("overlay: no Node informer given")
	}
	up, err := findUplink(cfg.Handle, cfg.NodeIP)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	o := &Overlay{
		cfg:       cfg,
		log:       cfg.Logger,
		podMTU:    up.mtu,
		uplinkMTU: up.mtu,
		informer:  nodes.Informer(),
		lister:    nodes.Lister(),
		changed:   make(chan struct{}, 1),
		ready:     make(chan struct{}),
		metrics:   newMetrics(),
	}
	if cfg.Mode != ModeDirect {
		o.podMTU = up.mtu - Overhead
		if o.podMTU < 576 {
			return nil, fmt.Errorf("overlay: the uplink %s has MTU %d, too small to carry VXLAN (%d bytes of headers): use mode direct or a larger MTU", up.name, up.mtu, Overhead)
		}
		_, changes, err := ensureDevice(&o.cfg, up)
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		if len(changes) > 0 {
			o.log.Info("overlay: set up the VXLAN device", "device", cfg.Device, "uplink", up.name, "mtu", up.mtu-Overhead, "changes", strings.Join(changes, ", "))
		}
	}
	o.reg, err = o.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if routable(obj) {
				o.signal()
			}
		},
		UpdateFunc: func(old, cur any) {
			if routeChanged(old, cur) {
				o.signal()
			}
		},
		DeleteFunc: func(obj any) {
			if routable(obj) {
				o.signal()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("overlay: watching Nodes: %w", err)
	}
	return o, nil
}

// PodMTU is the MTU the node's pods must have (the bridge, the CNI
// configuration): the uplink's less the VXLAN headers, or the uplink's in
// ModeDirect.
func (o *Overlay) PodMTU() int { return o.podMTU }

// Ready is closed once the first pass has programmed every peer known
// when the informer synced.
func (o *Overlay) Ready() <-chan struct{} { return o.ready }

func (o *Overlay) signal() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// routable tells whether a Node added or deleted can be a peer (has a pod
// CIDR and an InternalIP): others change nothing. A deletion whose last
// state is unknown can.
func routable(obj any) bool {
	n, ok := obj.(*v1.Node)
	if !ok {
		return true
	}
	cidrs, ip := nodeRoute(n)
	return len(cidrs) > 0 && ip.IsValid()
}

// routeChanged tells whether a Node update changed what the overlay reads.
func routeChanged(old, cur any) bool {
	a, ok1 := old.(*v1.Node)
	b, ok2 := cur.(*v1.Node)
	if !ok1 || !ok2 {
		return true
	}
	ca, ia := nodeRoute(a)
	cb, ib := nodeRoute(b)
	return ia != ib || !slices.Equal(ca, cb)
}

// Run waits for the Node informer to sync, then reconciles the kernel at
// every change of a Node's pod CIDRs or InternalIP and every resync
// period (sooner after a failure), until ctx is done. Everything stays in
// place when it returns. It may be called once.
func (o *Overlay) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("overlay: Run was called twice")
	}
	defer func() { _ = o.informer.RemoveEventHandler(o.reg) }()
	if !cache.WaitForCacheSync(ctx.Done(), o.reg.HasSynced) {
		return nil
	}
	retry := minRetry
	for {
		// A pass reads every Node as it is now: a change signalled
		// before it starts is in it.
		select {
		case <-o.changed:
		default:
		}
		next := o.cfg.ResyncPeriod
		if err := o.reconcile(); err != nil {
			o.metrics.reconciles.WithLabelValues("error").Inc()
			o.log.Error("overlay: reconciling the kernel failed", "err", err, "retryIn", retry)
			next = min(retry, next)
			retry = min(2*retry, o.cfg.ResyncPeriod)
		} else {
			o.metrics.reconciles.WithLabelValues("ok").Inc()
			retry = minRetry
			o.once.Do(func() { close(o.ready) })
		}
		t := o.cfg.Clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.changed:
			t.Stop()
		case <-t.C():
		}
	}
}

// maxRounds bounds the read-diff-write rounds of one pass.
const maxRounds = 4

// reconcile is one pass: device, then peers' entries, read back until the
// kernel has nothing left to change.
func (o *Overlay) reconcile() error {
	h := o.cfg.Handle
	up, err := findUplink(h, o.cfg.NodeIP)
	if err != nil {
		return err
	}
	if up.mtu != o.uplinkMTU && o.mtuReported != up.mtu {
		o.mtuReported = up.mtu
		o.log.Warn("overlay: the uplink's MTU changed since the agent started; pods keep the MTU they were given: restart the agent", "uplink", up.name, "was", o.uplinkMTU, "now", up.mtu)
	}
	l := links{uplink: up.index}
	writes := 0
	if o.cfg.Mode != ModeDirect {
		idx, changes, err := ensureDevice(&o.cfg, up)
		if err != nil {
			return err
		}
		l.vxlan = idx
		if len(changes) > 0 {
			writes += len(changes)
			o.log.Info("overlay: repaired the VXLAN device", "device", o.cfg.Device, "changes", strings.Join(changes, ", "))
		}
	}
	nodes, err := o.lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Nodes: %w", err)
	}
	peers, problems := peersFrom(nodes, self{name: o.cfg.NodeName, nodeIP: o.cfg.NodeIP, podCIDR: o.cfg.PodCIDR, mode: o.cfg.Mode, segment: up.segment})
	if p := strings.Join(problems, "\n"); p != o.problems {
		o.problems = p
		for _, problem := range problems {
			o.log.Error("overlay: a node is not routed to", "problem", problem)
		}
	}
	w := want(peers, l)
	for round := 0; ; round++ {
		have, err := read(h, l)
		if err != nil {
			return err
		}
		p := diff(w, have)
		if p.size() == 0 {
			break
		}
		if round == maxRounds {
			return fmt.Errorf("the kernel still differs after %d rounds of writes (%d entries): is another program changing the overlay's routes or the device %s?", maxRounds, p.size(), o.cfg.Device)
		}
		n, err := apply(h, l.vxlan, p, o.log)
		writes += n
		o.metrics.writes.Add(float64(n))
		if err != nil {
			return err
		}
	}
	if o.cfg.Mode == ModeDirect {
		// A device left from mode vxlan or auto: removed only now that
		// the direct routes replaced its routes.
		if link, err := h.LinkByName(o.cfg.Device); err == nil && link.Type() == "vxlan" {
			if err := h.LinkDel(link); err != nil {
				return fmt.Errorf("removing the VXLAN device %s (mode direct): %w", o.cfg.Device, err)
			}
			writes++
			o.log.Info("overlay: removed the VXLAN device (mode direct)", "device", o.cfg.Device)
		}
	}
	o.logPeers(peers, writes)
	o.metrics.peers.Set(float64(len(peers)))
	return nil
}

// logPeers reports how the peers changed since the last pass.
func (o *Overlay) logPeers(peers []peer, writes int) {
	cur := make(map[string]peer, len(peers))
	for _, p := range peers {
		cur[p.name] = p
	}
	first := o.peers == nil
	if first {
		o.log.Info("overlay: routing to the other nodes", "device", o.cfg.Device, "mode", string(o.cfg.Mode), "peers", len(peers), "writes", writes, "podMTU", o.podMTU)
	}
	changed := false
	for _, p := range peers {
		old, ok := o.peers[p.name]
		switch {
		case first:
			o.log.Debug("overlay: peer", "peer", p.String())
		case !ok:
			changed = true
			o.log.Info("overlay: peer added", "peer", p.String())
		case !old.equal(p):
			changed = true
			o.log.Info("overlay: peer changed", "peer", p.String(), "was", old.String())
		}
	}
	for name, p := range o.peers {
		if _, ok := cur[name]; !ok {
			changed = true
			o.log.Info("overlay: peer removed", "peer", p.String())
		}
	}
	if !first && !changed && writes > 0 {
		o.log.Warn("overlay: repaired kernel state someone else changed", "device", o.cfg.Device, "writes", writes)
	}
	o.peers = cur
}
