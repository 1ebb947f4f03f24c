// Package disruption is the disruption controller: it keeps the status of
// every PodDisruptionBudget (expectedPods, currentHealthy, desiredHealthy,
// disruptionsAllowed, observedGeneration, the DisruptionAllowed condition
// and the disruptedPods the eviction API recorded) current with the pods it
// selects, as kube-controller-manager's disruption controller does. The
// eviction subresource of the API server reads that status to allow or
// refuse evictions.
//
// It also resets, after a while, the DisruptionTarget condition of pods
// the eviction API marked but that were never deleted.
//
// It is a client of the API only.
package disruption

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// Upstream's timings.
const (
	// DefaultDeletionTimeout is how long a pod the eviction API recorded
	// in disruptedPods may take to be marked for deletion before the
	// controller assumes it will not be, and counts it again.
	DefaultDeletionTimeout = 2 * time.Minute
	// DefaultStalePodDisruptionTimeout is how long a pod may keep a
	// DisruptionTarget condition without being deleted before the
	// condition is set back to False.
	DefaultStalePodDisruptionTimeout = 2 * time.Minute
)

// Config is what the controller is built from.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Mapper maps pods' controller kinds to resources, for controllers
	// other than the built-in workloads, read through Scales.
	Mapper meta.RESTMapper
	Scales scale.ScalesGetter
	// Discovery tells whether a resource has a scale subresource.
	Discovery discovery.ServerResourcesInterface
	// DeletionTimeout and StalePodDisruptionTimeout default to upstream's
	// two minutes.
	DeletionTimeout, StalePodDisruptionTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Served lists the resources the API server serves; the workloads it
	// does not serve (ReplicationControllers, say) are not watched. Nil
	// means all of them.
	Served []schema.GroupVersionResource
}

// Controller computes PodDisruptionBudget status.
type Controller struct {
	client    kubernetes.Interface
	mapper    meta.RESTMapper
	scales    scale.ScalesGetter
	discovery discovery.ServerResourcesInterface

	pdbLister policylisters.PodDisruptionBudgetLister
	podLister corelisters.PodLister
	// The workload listers are nil for resources the server does not serve.
	rcLister corelisters.ReplicationControllerLister
	rsLister appslisters.ReplicaSetLister
	dLister  appslisters.DeploymentLister
	ssLister appslisters.StatefulSetLister
	synced   []cache.InformerSynced

	// queue holds PodDisruptionBudget keys; recheck the ones to look at
	// again when a disruptedPods entry expires; stale the keys of pods
	// whose DisruptionTarget condition may be stale.
	queue   workqueue.TypedRateLimitingInterface[string]
	recheck workqueue.TypedDelayingInterface[string]
	stale   workqueue.TypedRateLimitingInterface[string]

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder

	deletionTimeout, staleTimeout time.Duration
	now                           func() time.Time
}

// New returns a controller on the informers of cfg.Informers.
func New(cfg Config) (*Controller, error) {
	f := cfg.Informers
	c := &Controller{
		client: cfg.Client, mapper: cfg.Mapper, scales: cfg.Scales, discovery: cfg.Discovery,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption"}),
		recheck: workqueue.NewTypedDelayingQueueWithConfig(
			workqueue.TypedDelayingQueueConfig[string]{Name: "disruption_recheck"}),
		stale: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "stale_pod_disruption"}),
		broadcaster:     record.NewBroadcaster(),
		deletionTimeout: cfg.DeletionTimeout,
		staleTimeout:    cfg.StalePodDisruptionTimeout,
		now:             cfg.Now,
	}
	if c.deletionTimeout <= 0 {
		c.deletionTimeout = DefaultDeletionTimeout
	}
	if c.staleTimeout <= 0 {
		c.staleTimeout = DefaultStalePodDisruptionTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "controllermanager"})

	pdbInf := f.Policy().V1().PodDisruptionBudgets().Informer()
	if _, err := pdbInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePDB,
		UpdateFunc: func(_, obj any) { c.enqueuePDB(obj) },
		DeleteFunc: c.enqueuePDB,
	}); err != nil {
		return nil, err
	}
	podInf := f.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.podChanged(obj, true) },
		UpdateFunc: func(_, obj any) { c.podChanged(obj, true) },
		DeleteFunc: func(obj any) { c.podChanged(obj, false) },
	}); err != nil {
		return nil, err
	}
	c.pdbLister = f.Policy().V1().PodDisruptionBudgets().Lister()
	c.podLister = f.Core().V1().Pods().Lister()
	c.synced = []cache.InformerSynced{pdbInf.HasSynced, podInf.HasSynced}
	served := func(gvr schema.GroupVersionResource) bool {
		return cfg.Served == nil || slices.Contains(cfg.Served, gvr)
	}
	if served(corev1.SchemeGroupVersion.WithResource("replicationcontrollers")) {
		inf := f.Core().V1().ReplicationControllers()
		c.rcLister, c.synced = inf.Lister(), append(c.synced, inf.Informer().HasSynced)
	}
	if served(appsv1.SchemeGroupVersion.WithResource("replicasets")) {
		inf := f.Apps().V1().ReplicaSets()
		c.rsLister, c.synced = inf.Lister(), append(c.synced, inf.Informer().HasSynced)
	}
	if served(appsv1.SchemeGroupVersion.WithResource("deployments")) {
		inf := f.Apps().V1().Deployments()
		c.dLister, c.synced = inf.Lister(), append(c.synced, inf.Informer().HasSynced)
	}
	if served(appsv1.SchemeGroupVersion.WithResource("statefulsets")) {
		inf := f.Apps().V1().StatefulSets()
		c.ssLister, c.synced = inf.Lister(), append(c.synced, inf.Informer().HasSynced)
	}
	return c, nil
}

func (c *Controller) enqueuePDB(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pdb, ok := obj.(*policyv1.PodDisruptionBudget); ok {
		c.queue.Add(pdb.Namespace + "/" + pdb.Name)
	}
}

// podChanged queues the budgets covering the pod and, for pods still
// there, checks their DisruptionTarget condition.
func (c *Controller) podChanged(obj any, live bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, pdb := range c.pdbsForPod(pod) {
		c.enqueuePDB(pdb)
	}
	if live {
		if stale, after := c.staleDisruptionCondition(pod); stale {
			c.stale.AddAfter(pod.Namespace+"/"+pod.Name, after)
		}
	}
}

// pdbsForPod returns the budgets covering pod. Several budgets over one
// pod are not supported (the eviction API refuses to evict it): that gets
// upstream's Warning event on the pod. Unlike upstream, which then only
// resyncs the first budget, every one is kept current.
func (c *Controller) pdbsForPod(pod *corev1.Pod) []*policyv1.PodDisruptionBudget {
	pdbs, err := c.pdbLister.GetPodPodDisruptionBudgets(pod)
	if err != nil {
		return nil
	}
	if len(pdbs) > 1 {
		c.recorder.Event(pod, corev1.EventTypeWarning, "MultiplePodDisruptionBudgets",
			fmt.Sprintf("Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, pdbs[0].Name))
	}
	return pdbs
}

// Run syncs budgets until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.recheck.ShutDown()
	defer c.stale.ShutDown()
	if c.client != nil {
		c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	}
	defer c.broadcaster.Shutdown()
	staleWorker := controller.Worker(c.stale, c.syncStalePod,
		"clearing a pod's DisruptionTarget condition failed; retrying", "pod")
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing a PodDisruptionBudget failed; retrying", "pdb",
		controller.AfterSync(func(ctx context.Context) {
			go wait.UntilWithContext(ctx, c.recheckWorker, time.Second)
			go wait.UntilWithContext(ctx, staleWorker, time.Second)
		}))
}

func (c *Controller) recheckWorker(context.Context) {
	for {
		key, quit := c.recheck.Get()
		if quit {
			return
		}
		c.queue.AddRateLimited(key)
		c.recheck.Done(key)
	}
}
