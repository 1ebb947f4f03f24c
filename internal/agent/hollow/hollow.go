// Package hollow runs hollow nodes: simulated Nodes that behave, seen from
// the API, like nodes with a kubelet (registration, Lease heartbeats, node
// status conditions, pods reported Running and Ready, graceful deletion),
// without a container runtime. It is Havre's kubemark: one process can
// stand in for thousands of nodes, for scale tests and for tests of
// controllers that need nodes (scheduling, node lifecycle, workloads).
//
// Every hollow node of one Agent shares one node informer, one pod
// informer (all bound pods, filtered by the agent's own node names) and
// one pool of pod status workers.
package hollow

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/version"
)

// LabelHollow marks the Nodes of hollow agents.
const LabelHollow = "node.havre.dev/hollow"

// AnnotationExitCode on a pod makes its containers exit with that code as
// soon as they run: with restartPolicy Never the pod ends Succeeded (0) or
// Failed; with OnFailure it ends Succeeded on 0 and crash-loops otherwise;
// with Always it crash-loops. Without it, containers run until the pod is
// deleted.
const AnnotationExitCode = "hollow.havre.dev/exit-code"

// RuntimeName is the container runtime hollow nodes report.
const RuntimeName = "hollow"

// Defaults of Options.
const (
	DefaultCPU                  = "4"
	DefaultMemory               = "16Gi"
	DefaultMaxPods              = 110
	DefaultLeaseRenewInterval   = 10 * time.Second
	DefaultStatusUpdateInterval = 10 * time.Second
	DefaultStatusReportInterval = 5 * time.Minute
	DefaultWorkers              = 32
	DefaultQPS                  = 5000
	DefaultBurst                = 10000
	leaseDurationSeconds        = 40
	// renewJitter is the kubelet's lease controller jitter factor.
	renewJitter = 0.04
)

// Options configure a hollow agent.
type Options struct {
	// RESTConfig reaches the API server. QPS and Burst default to
	// DefaultQPS and DefaultBurst.
	RESTConfig *rest.Config
	// Count is the number of nodes, named <Prefix>-<i> for i in [0, Count).
	Count int
	// Prefix names the nodes (default hollow-<hostname>).
	Prefix string
	// CPU, Memory and MaxPods are each node's capacity (defaults 4, 16Gi,
	// 110).
	CPU, Memory string
	MaxPods     int
	// Labels are added to every node's labels.
	Labels map[string]string
	// Workers is the number of pod status workers (default 32).
	Workers int
	// LeaseRenewInterval, StatusUpdateInterval and StatusReportInterval
	// are the kubelet's timings: leases are renewed every 10s, the status
	// is checked every 10s and written when it changed or every 5 minutes.
	LeaseRenewInterval, StatusUpdateInterval, StatusReportInterval time.Duration
	// Ready, when set, is closed once every node is registered.
	Ready chan<- struct{}
}

func (o *Options) defaults() error {
	if o.Count <= 0 {
		return fmt.Errorf("hollow: the number of nodes must be positive (got %d)", o.Count)
	}
	if o.Prefix == "" {
		return errors.New("hollow: empty node name prefix")
	}
	if o.CPU == "" {
		o.CPU = DefaultCPU
	}
	if o.Memory == "" {
		o.Memory = DefaultMemory
	}
	if o.MaxPods <= 0 {
		o.MaxPods = DefaultMaxPods
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.LeaseRenewInterval <= 0 {
		o.LeaseRenewInterval = DefaultLeaseRenewInterval
	}
	if o.StatusUpdateInterval <= 0 {
		o.StatusUpdateInterval = DefaultStatusUpdateInterval
	}
	if o.StatusReportInterval <= 0 {
		o.StatusReportInterval = DefaultStatusReportInterval
	}
	return nil
}

// Agent runs hollow nodes.
type Agent struct {
	opts     Options
	client   kubernetes.Interface
	capacity corev1.ResourceList
	now      func() time.Time

	// nodes are this agent's nodes by name; the map is not changed after
	// New.
	nodes map[string]*node

	nodeLister cache.Indexer
	nodeSynced cache.InformerSynced
	podLister  cache.Indexer
	podSynced  cache.InformerSynced

	heartbeats workqueue.TypedDelayingInterface[string]
	pods       workqueue.TypedRateLimitingInterface[string]

	// written remembers, per pod key, the resourceVersion a status was
	// written over, so that a sync seeing that version again (the informer
	// has not caught up) does not write twice.
	writtenMu sync.Mutex
	written   map[string]string
	// ips are the pod IPs handed out, per pod key.
	ipsMu sync.Mutex
	ips   map[string]podIP

	registered atomic.Int64
	readyOnce  sync.Once
}

// New builds an agent; Run runs it.
func New(o Options) (*Agent, error) {
	if o.RESTConfig == nil {
		return nil, errors.New("hollow: no API server configuration")
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(o.RESTConfig)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	}
	cfg.UserAgent = fmt.Sprintf("havre-agent/%s (hollow %s)", version.Havre, o.Prefix)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return newAgent(o, client)
}

func newAgent(o Options, client kubernetes.Interface) (*Agent, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cpu, err := resource.ParseQuantity(o.CPU)
	if err != nil {
		return nil, fmt.Errorf("hollow: cpu %q: %w", o.CPU, err)
	}
	mem, err := resource.ParseQuantity(o.Memory)
	if err != nil {
		return nil, fmt.Errorf("hollow: memory %q: %w", o.Memory, err)
	}
	a := &Agent{
		opts:   o,
		client: client,
		capacity: corev1.ResourceList{
			corev1.ResourceCPU:    cpu,
			corev1.ResourceMemory: mem,
			corev1.ResourcePods:   *resource.NewQuantity(int64(o.MaxPods), resource.DecimalSI),
		},
		now:     time.Now,
		nodes:   make(map[string]*node, o.Count),
		written: map[string]string{},
		ips:     map[string]podIP{},
	}
	base := prefixSlot(o.Prefix)
	for i := 0; i < o.Count; i++ {
		n := newNode(fmt.Sprintf("%s-%d", o.Prefix, i), i, base+uint32(i))
		a.nodes[n.name] = n
	}
	return a, nil
}

// prefixSlot spreads the fake addresses of agents with different prefixes.
func prefixSlot(prefix string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(prefix))
	return h.Sum32()
}

// Run runs the nodes until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	if err := a.setupNodes(factory); err != nil {
		return err
	}
	podFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }))
	if err := a.setupPods(podFactory); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer factory.Shutdown()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.heartbeats.ShutDown()
	defer a.pods.ShutDown()

	if !cache.WaitForCacheSync(ctx.Done(), a.nodeSynced, a.podSynced) {
		return ctx.Err()
	}
	slog.Info("hollow agent starting", "nodes", a.opts.Count, "prefix", a.opts.Prefix, "arch", goruntime.GOARCH)
	nodeWorkers := min(a.opts.Count, 64)
	for i := 0; i < nodeWorkers; i++ {
		wg.Go(func() { a.heartbeatWorker(ctx) })
	}
	for i := 0; i < a.opts.Workers; i++ {
		wg.Go(func() { a.podWorker(ctx) })
	}
	for name := range a.nodes {
		a.heartbeats.Add(statusKey + name)
	}
	<-ctx.Done()
	return nil
}

// markRegistered counts a node's first registration and closes Ready when
// every node is registered.
func (a *Agent) markRegistered(n *node) {
	if !n.registeredOnce.CompareAndSwap(false, true) {
		return
	}
	if a.registered.Add(1) == int64(len(a.nodes)) {
		slog.Info("hollow nodes registered", "nodes", len(a.nodes), "prefix", a.opts.Prefix)
		a.readyOnce.Do(func() {
			if a.opts.Ready != nil {
				close(a.opts.Ready)
			}
		})
	}
}
