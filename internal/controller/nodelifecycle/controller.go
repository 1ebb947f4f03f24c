// Package nodelifecycle is kube-controller-manager's node lifecycle
// controller with its taint-based eviction (the "taint manager"):
//
//   - a node whose kubelet stopped renewing its Lease and posting its
//     status for the node monitor grace period gets its Ready, MemoryPressure,
//     DiskPressure and PIDPressure conditions set to Unknown
//     (NodeStatusUnknown, "Kubelet stopped posting node status."), and its
//     pods are marked not Ready;
//   - nodes whose Ready condition is Unknown or False are tainted
//     node.kubernetes.io/unreachable or node.kubernetes.io/not-ready with
//     effect NoExecute, at a rate limited per zone (0.1 node/s, none while a
//     zone is partially disrupted in small clusters, none at all while
//     every zone is fully disrupted), and untainted when they recover;
//   - node conditions and spec.unschedulable are mirrored as NoSchedule
//     taints (not-ready, unreachable, memory-pressure, disk-pressure,
//     pid-pressure, network-unavailable, unschedulable);
//   - pods on nodes with NoExecute taints they do not tolerate are deleted
//     (with a DisruptionTarget condition, reason DeletionByTaintManager),
//     those tolerating them for tolerationSeconds once that time has passed.
package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

// Defaults, as kube-controller-manager's.
const (
	DefaultNodeMonitorGracePeriod      = 40 * time.Second
	DefaultNodeStartupGracePeriod      = 60 * time.Second
	DefaultNodeMonitorPeriod           = 5 * time.Second
	DefaultNodeEvictionRate            = 0.1
	DefaultSecondaryNodeEvictionRate   = 0.01
	DefaultLargeClusterSizeThreshold   = 50
	DefaultUnhealthyZoneThreshold      = 0.55
	nodeEvictionPeriod                 = 100 * time.Millisecond
	nodeUpdateRetries                  = 5
	podNodeNameIndex                   = "nodelifecycle.spec.nodeName"
	labelNodeDisruptionExclusion       = "node.kubernetes.io/exclude-disruption"
	controllerComponent                = "node-controller"
	taintEvictionComponent             = "taint-eviction-controller"
	apiBackoff, maxAPIBackoff          = 50 * time.Millisecond, 30 * time.Second
	defaultPodWorkers, defaultNodeWork = 4, 2
)

// Config configures the controller; zero values take the defaults.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// NodeMonitorGracePeriod is how long a node may go without a Lease
	// renewal or status heartbeat before it is marked Unknown (40s).
	NodeMonitorGracePeriod time.Duration
	// NodeStartupGracePeriod is that time for a node that never posted
	// its status (60s).
	NodeStartupGracePeriod time.Duration
	// NodeMonitorPeriod is how often node health is checked (5s).
	NodeMonitorPeriod time.Duration
	// NodeEvictionRate and SecondaryNodeEvictionRate are how many nodes
	// per second get NoExecute taints in a healthy zone and in a partially
	// disrupted zone of a large cluster (0.1 and 0.01).
	NodeEvictionRate, SecondaryNodeEvictionRate float32
	// LargeClusterSizeThreshold is the zone size above which the
	// secondary rate applies instead of stopping (50).
	LargeClusterSizeThreshold int
	// UnhealthyZoneThreshold is the fraction of not Ready nodes (at least
	// 3) making a zone partially disrupted (0.55).
	UnhealthyZoneThreshold float32
	// Clock is the controller's time (the real one by default).
	Clock clock.WithTicker
}

// Controller is the node lifecycle controller.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	clock  clock.WithTicker

	nodeLister  corelisters.NodeLister
	leaseLister coordlisters.LeaseLister
	podLister   corelisters.PodLister
	podIndexer  cache.Indexer
	synced      []cache.InformerSynced

	broadcaster   record.EventBroadcaster
	recorder      record.EventRecorder
	evictRecorder record.EventRecorder

	// nodeQueue holds nodes whose NoSchedule taints are to be reconciled;
	// podQueue pods to check for taint-based eviction and readiness.
	nodeQueue workqueue.TypedRateLimitingInterface[string]
	podQueue  workqueue.TypedRateLimitingInterface[string]

	mu         sync.Mutex
	health     map[string]*nodeHealth
	known      map[string]*corev1.Node
	zoneStates map[string]zoneState
	tainters   map[string]*tainter
	// evictions are the pods whose eviction is scheduled: when their
	// toleration time started.
	evictions map[string]scheduledEviction
}

// New returns a controller on the factory's node, lease and pod informers.
func New(cfg Config) (*Controller, error) {
	if cfg.NodeMonitorGracePeriod <= 0 {
		cfg.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if cfg.NodeStartupGracePeriod <= 0 {
		cfg.NodeStartupGracePeriod = DefaultNodeStartupGracePeriod
	}
	if cfg.NodeMonitorPeriod <= 0 {
		cfg.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if cfg.NodeEvictionRate <= 0 {
		cfg.NodeEvictionRate = DefaultNodeEvictionRate
	}
	if cfg.SecondaryNodeEvictionRate <= 0 {
		cfg.SecondaryNodeEvictionRate = DefaultSecondaryNodeEvictionRate
	}
	if cfg.LargeClusterSizeThreshold <= 0 {
		cfg.LargeClusterSizeThreshold = DefaultLargeClusterSizeThreshold
	}
	if cfg.UnhealthyZoneThreshold <= 0 {
		cfg.UnhealthyZoneThreshold = DefaultUnhealthyZoneThreshold
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	nodes := cfg.Informers.Core().V1().Nodes()
	leases := cfg.Informers.Coordination().V1().Leases()
	pods := cfg.Informers.Core().V1().Pods()
	if err := pods.Informer().AddIndexers(cache.Indexers{podNodeNameIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("adding the pod node name index: %w", err)
	}
	newQueue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](apiBackoff, maxAPIBackoff),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name, Clock: cfg.Clock})
	}
	broadcaster := record.NewBroadcaster()
	c := &Controller{
		cfg:           cfg,
		client:        cfg.Client,
		clock:         cfg.Clock,
		nodeLister:    nodes.Lister(),
		leaseLister:   leases.Lister(),
		podLister:     pods.Lister(),
		podIndexer:    pods.Informer().GetIndexer(),
		synced:        []cache.InformerSynced{nodes.Informer().HasSynced, leases.Informer().HasSynced, pods.Informer().HasSynced},
		broadcaster:   broadcaster,
		recorder:      broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: controllerComponent}),
		evictRecorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: taintEvictionComponent}),
		nodeQueue:     newQueue("node_lifecycle_controller"),
		podQueue:      newQueue("node_lifecycle_controller_pods"),
		health:        map[string]*nodeHealth{},
		known:         map[string]*corev1.Node{},
		zoneStates:    map[string]zoneState{},
		tainters:      map[string]*tainter{},
		evictions:     map[string]scheduledEviction{},
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				c.nodeQueue.Add(n.Name)
				c.enqueueNodePods(n.Name)
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			old, ok1 := oldObj.(*corev1.Node)
			n, ok2 := obj.(*corev1.Node)
			if !ok1 || !ok2 {
				return
			}
			c.nodeQueue.Add(n.Name)
			if !reflect.DeepEqual(noExecuteTaints(old.Spec.Taints), noExecuteTaints(n.Spec.Taints)) {
				c.enqueueNodePods(n.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				c.enqueueNodePods(n.Name)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("adding the Node event handler: %w", err)
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.podUpdated(nil, obj) },
		UpdateFunc: func(oldObj, obj any) {
			c.podUpdated(oldObj, obj)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				c.forgetEviction(podKey(p))
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("adding the Pod event handler: %w", err)
	}
	return c, nil
}

// podUpdated queues a pod newly bound to a node, or whose tolerations
// changed.
func (c *Controller) podUpdated(oldObj, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return
	}
	if old, ok := oldObj.(*corev1.Pod); ok && old.Spec.NodeName == p.Spec.NodeName &&
		reflect.DeepEqual(old.Spec.Tolerations, p.Spec.Tolerations) {
		return
	}
	c.podQueue.Add(podKey(p))
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// enqueueNodePods queues every pod bound to the node.
func (c *Controller) enqueueNodePods(name string) {
	objs, err := c.podIndexer.ByIndex(podNodeNameIndex, name)
	if err != nil {
		return
	}
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok {
			c.podQueue.Add(podKey(p))
		}
	}
}

// podsOnNode returns the pods bound to the node.
func (c *Controller) podsOnNode(name string) []*corev1.Pod {
	objs, err := c.podIndexer.ByIndex(podNodeNameIndex, name)
	if err != nil {
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	return pods
}

// Run runs the controller until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	defer c.nodeQueue.ShutDown()
	defer c.podQueue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	slog.Info("node lifecycle controller started", "nodeMonitorGracePeriod", c.cfg.NodeMonitorGracePeriod,
		"nodeMonitorPeriod", c.cfg.NodeMonitorPeriod)
	if workers <= 0 {
		workers = defaultPodWorkers
	}
	nodeWorker := controller.Worker(c.nodeQueue, c.doNoScheduleTaintingPass,
		"reconciling a node's NoSchedule taints failed; retrying", "node")
	podWorker := controller.Worker(c.podQueue, c.processPod,
		"processing a pod on a tainted or not ready node failed; retrying", "pod")
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < defaultNodeWork; i++ {
		wg.Go(func() { wait.UntilWithContext(ctx, nodeWorker, time.Second) })
	}
	for i := 0; i < workers; i++ {
		wg.Go(func() { wait.UntilWithContext(ctx, podWorker, time.Second) })
	}
	wg.Go(func() { c.every(ctx, nodeEvictionPeriod, c.doNoExecuteTaintingPass) })
	wg.Go(func() {
		c.every(ctx, c.cfg.NodeMonitorPeriod, func(ctx context.Context) {
			if err := c.monitorNodeHealth(ctx); err != nil {
				slog.Warn("monitoring node health", "err", err)
			}
		})
	})
	<-ctx.Done()
}

// every runs f every period (on the controller's clock) until ctx is done.
func (c *Controller) every(ctx context.Context, period time.Duration, f func(context.Context)) {
	t := c.clock.NewTicker(period)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}
