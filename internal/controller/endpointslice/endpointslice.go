// Package endpointslice is the EndpointSlice controller, as kube-controller-
// manager's: for every Service with a selector it keeps EndpointSlices
// (managed-by endpointslice-controller.k8s.io, owned by the Service) listing
// the pods the selector matches, with their ready/serving/terminating
// conditions, node, zone, hostname and per-pod resolved target ports.
//
// The slicing itself (at most MaxEndpointsPerSlice endpoints a slice,
// placeholder slices, labels, owner references, the last-change-trigger-time
// annotation, topology and trafficDistribution hints) is k8s.io/endpointslice's
// Reconciler; this package is the loop around it: informers on Services, Pods,
// Nodes and EndpointSlices, a rate-limited queue keyed by Service, and the
// tracker that detects an EndpointSlice cache older than the controller's own
// writes.
//
// It never touches Services without a selector, ExternalName Services, or
// EndpointSlices managed by anything else; it never deletes Services or pods.
package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	esreconciler "k8s.io/endpointslice"
	"k8s.io/endpointslice/topologycache"
	esutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"

	"github.com/havre/havre/internal/controller"
)

const (
	// ControllerName is the managed-by label value of the slices this
	// controller writes.
	ControllerName = "endpointslice-controller.k8s.io"
	// DefaultMaxEndpointsPerSlice is upstream's --max-endpoints-per-slice.
	DefaultMaxEndpointsPerSlice = 100

	// sliceChangeMinSyncDelay delays syncs triggered by EndpointSlice
	// changes this controller did not expect (someone else's edits), as
	// upstream does, so a fight over a slice does not spin.
	sliceChangeMinSyncDelay = time.Second
	// Upstream's backoff of a failing Service: 1s doubling to 1000s, and at
	// most 10 retries a second overall.
	syncBackOff    = time.Second
	maxSyncBackOff = 1000 * time.Second
	// A sync that finds the EndpointSlice cache older than its own writes
	// retries soon (the informer is usually a few milliseconds behind),
	// doubling up to a second while the cache stays stale.
	staleRetry    = 5 * time.Millisecond
	maxStaleRetry = time.Second

	topologyKey = "topology"
)

// Options tune the controller; the zero value is upstream's defaults.
type Options struct {
	// MaxEndpointsPerSlice bounds the endpoints of one slice (0: 100).
	MaxEndpointsPerSlice int32
	// BatchPeriod delays the sync a pod change triggers, so that changes to
	// one Service's pods within it are written together (upstream's
	// --endpointslice-updates-batch-period, default 0). Every millisecond
	// here is added to "pod ready → reachable through its Service".
	BatchPeriod time.Duration
}

// Controller keeps the EndpointSlices of Services with selectors.
type Controller struct {
	client        kubernetes.Interface
	serviceLister corelisters.ServiceLister
	podLister     corelisters.PodLister
	nodeLister    corelisters.NodeLister
	sliceLister   discoverylisters.EndpointSliceLister
	synced        []cache.InformerSynced

	queue         workqueue.TypedRateLimitingInterface[string]
	topologyQueue workqueue.TypedRateLimitingInterface[string]
	// staleBackoff paces the retries of Services whose slice cache is stale.
	staleBackoff workqueue.TypedRateLimiter[string]

	reconciler    *esreconciler.Reconciler
	tracker       *controller.SliceTracker
	triggerTimes  *esutil.TriggerTimeTracker
	topologyCache *topologycache.TopologyCache
	recorder      record.EventRecorder
	logger        klog.Logger
	batchPeriod   time.Duration
}

// New returns a controller on the factory's Service, Pod, Node and
// EndpointSlice informers, recording Events with recorder.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if opts.MaxEndpointsPerSlice <= 0 {
		opts.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
	}
	if opts.MaxEndpointsPerSlice > 1000 {
		return nil, fmt.Errorf("max endpoints per slice %d: an EndpointSlice holds at most 1000; choose 1 to 1000", opts.MaxEndpointsPerSlice)
	}
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:        client,
		serviceLister: svcInf.Lister(),
		podLister:     podInf.Lister(),
		nodeLister:    nodeInf.Lister(),
		sliceLister:   sliceInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](syncBackOff, maxSyncBackOff),
				&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)}),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice"}),
		topologyQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_topology"}),
		staleBackoff:  workqueue.NewTypedItemExponentialFailureRateLimiter[string](staleRetry, maxStaleRetry),
		tracker:       controller.NewSliceTracker(),
		triggerTimes:  esutil.NewTriggerTimeTracker(),
		topologyCache: topologycache.NewTopologyCache(),
		recorder:      recorder,
		logger:        logr.FromSlogHandler(slog.Default().Handler()).WithName("endpointslice"),
		batchPeriod:   opts.BatchPeriod,
	}
	c.reconciler = esreconciler.NewReconciler(client, c.nodeLister, opts.MaxEndpointsPerSlice, c.tracker.EndpointSliceTracker,
		c.topologyCache, recorder, ControllerName, esreconciler.WithPreferSameTrafficDistributionEnabled(true))

	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueService,
		UpdateFunc: func(_, cur any) { c.enqueueService(cur) },
		DeleteFunc: c.enqueueService,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(controller.PodServiceHandlers(c.serviceLister,
		func(key string) { c.queue.AddAfter(key, c.batchPeriod) })); err != nil {
		return nil, err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.topologyQueue.Add(topologyKey) },
		UpdateFunc: c.nodeUpdated,
		DeleteFunc: func(any) { c.topologyQueue.Add(topologyKey) },
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(controller.EndpointSliceHandlers(c.reconciler.ManagedByController, c.tracker, c.queueForSlice)); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs Services with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.topologyQueue.ShutDown()
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing endpointslices failed; retrying", "service",
		controller.AfterSync(func(ctx context.Context) {
			c.checkNodeTopology()
			go wait.UntilWithContext(ctx, controller.Worker(c.topologyQueue, func(context.Context, string) error {
				c.checkNodeTopology()
				return nil
			}, "checking node topology failed", "key"), time.Second)
		}))
}

// sync reconciles the EndpointSlices of the Service key names.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.serviceLister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The garbage collector deletes the slices the Service owned.
		c.triggerTimes.DeleteService(ns, name)
		c.reconciler.DeleteService(ns, name)
		c.tracker.DeleteService(ns, name)
		c.staleBackoff.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		// ExternalName Services have no endpoints; selector-less ones get
		// theirs from the API (and the mirroring controller).
		return nil
	}

	pods, err := c.podLister.Pods(ns).List(labels.Set(svc.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToListPods",
			"Error listing Pods for Service %s/%s: %v", ns, name, err)
		return err
	}
	slices, err := c.sliceLister.EndpointSlices(ns).List(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   ControllerName,
	}.AsSelectorPreValidated())
	if err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToListEndpointSlices",
			"Error listing Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return err
	}
	// Slices being deleted are left to the collector, not reused.
	live := slices[:0:0]
	for _, s := range slices {
		if s.DeletionTimestamp == nil {
			live = append(live, s)
		}
	}
	if c.tracker.StaleSlices(svc, live) {
		// The cache has not seen this controller's last writes yet:
		// reconciling now would undo or duplicate them.
		c.queue.AddAfter(key, c.staleBackoff.When(key))
		return nil
	}
	c.staleBackoff.Forget(key)

	// Computed on every sync so that the tracker sees each pod change even
	// when the sync writes nothing.
	trigger := c.triggerTimes.ComputeEndpointLastChangeTriggerTime(ns, svc, pods)
	if err := c.reconciler.Reconcile(c.logger, svc, pods, live, trigger); err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
			"Error updating Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return err
	}
	return nil
}

func (c *Controller) enqueueService(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) nodeUpdated(old, cur any) {
	o, n := old.(*corev1.Node), cur.(*corev1.Node)
	// The zone label may be added after the node registers.
	if nodeReady(o) != nodeReady(n) || o.Labels[corev1.LabelTopologyZone] != n.Labels[corev1.LabelTopologyZone] {
		c.topologyQueue.Add(topologyKey)
	}
}

// checkNodeTopology gives the topology cache the current nodes and queues
// the Services whose hints no longer fit them.
func (c *Controller) checkNodeTopology() {
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return
	}
	c.topologyCache.SetNodes(c.logger, nodes)
	for _, key := range c.topologyCache.GetOverloadedServices() {
		c.queue.Add(key)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Controller) queueForSlice(s *discoveryv1.EndpointSlice) {
	key, err := esreconciler.ServiceControllerKey(s)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, max(sliceChangeMinSyncDelay, c.batchPeriod))
}
