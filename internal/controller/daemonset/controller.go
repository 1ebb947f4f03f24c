// Package daemonset is the DaemonSet controller, as
// kube-controller-manager's: one pod per node that fits the template
// (nodeName, nodeSelector, required node affinity, and taints the pod
// tolerates with the daemon tolerations upstream adds), placed by a
// required node affinity on metadata.name that the scheduler honours;
// failed pods replaced with backoff; rolling updates bounded by
// maxUnavailable or maxSurge, or OnDelete; the template history in
// ControllerRevisions; and the status `kubectl rollout status` reads.
package daemonset

import (
	"context"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/refmanager"
)

// controllerKind is the kind of the daemon pods' controller references.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// burstReplicas bounds the pods one sync creates or deletes.
const burstReplicas = 250

// Controller reconciles DaemonSets.
type Controller struct {
	client       kubernetes.Interface
	sets         appslisters.DaemonSetLister
	pods         corelisters.PodLister
	nodes        corelisters.NodeLister
	revisions    appslisters.ControllerRevisionLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]
	expectations *expectations
	// failedBackoff spaces out the replacement of failed pods per node.
	failedBackoff *flowcontrol.Backoff
	recorder      record.EventRecorder
	events        record.EventBroadcaster
	// now is the clock of availability (minReadySeconds).
	now func() time.Time
}

// New returns a controller on the factory's informers; Run starts it.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) (*Controller, error) {
	dsInf := factory.Apps().V1().DaemonSets()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	revInf := factory.Apps().V1().ControllerRevisions()
	events := record.NewBroadcaster()
	c := &Controller{
		client:    client,
		sets:      dsInf.Lister(),
		pods:      podInf.Lister(),
		nodes:     nodeInf.Lister(),
		revisions: revInf.Lister(),
		synced: []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced, revInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"}),
		expectations:  newExpectations(),
		failedBackoff: flowcontrol.NewBackOff(time.Second, 15*time.Minute),
		events:        events,
		recorder:      events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "daemonset-controller"}),
		now:           time.Now,
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{dsInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
			DeleteFunc: c.deleteDaemonSet,
		}},
		{revInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.revisionChanged,
			UpdateFunc: func(_, obj any) { c.revisionChanged(obj) },
			DeleteFunc: c.revisionChanged,
		}},
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addNode,
			UpdateFunc: c.updateNode,
			DeleteFunc: func(any) { c.enqueueAll() },
		}},
	}
	for _, x := range handlers {
		if _, err := x.inf.AddEventHandler(x.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run reconciles with workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing a daemonset failed; retrying", "daemonset",
		controller.AfterSync(func(ctx context.Context) {
			// Forget the backoff of nodes whose failed pods are long gone.
			go wait.UntilWithContext(ctx, func(context.Context) { c.failedBackoff.GC() }, time.Minute)
		}))
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueAfter(ds *appsv1.DaemonSet, d time.Duration) {
	c.queue.AddAfter(ds.Namespace+"/"+ds.Name, d)
}

func (c *Controller) enqueueAll() {
	all, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		c.enqueue(ds)
	}
}

func (c *Controller) deleteDaemonSet(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.expectations.forget(key)
		c.queue.Add(key)
	}
}

// revisionChanged enqueues the set of a revision (or, for an orphan, the
// sets that would adopt it).
func (c *Controller) revisionChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	rev, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rev); ref != nil {
		if ds := c.resolve(rev.Namespace, ref); ds != nil {
			c.enqueue(ds)
		}
		return
	}
	for _, ds := range c.setsSelecting(rev.Namespace, rev.Labels) {
		c.enqueue(ds)
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen first while terminating (a restart of the informer).
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if ds := c.resolve(pod.Namespace, ref); ds != nil {
			c.expectations.creationObserved(keyOf(ds))
			c.enqueue(ds)
		}
		return
	}
	for _, ds := range c.setsSelecting(pod.Namespace, pod.Labels) {
		c.enqueue(ds)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	if oldRef != nil && (curRef == nil || curRef.UID != oldRef.UID) {
		if ds := c.resolve(old.Namespace, oldRef); ds != nil {
			c.enqueue(ds)
		}
	}
	if curRef != nil {
		ds := c.resolve(cur.Namespace, curRef)
		if ds == nil {
			return
		}
		c.enqueue(ds)
		// A pod that just became ready is available minReadySeconds later.
		if !podReady(old) && podReady(cur) && ds.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(ds, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if !equality.Semantic.DeepEqual(old.Labels, cur.Labels) || oldRef != nil {
		for _, ds := range c.setsSelecting(cur.Namespace, cur.Labels) {
			c.enqueue(ds)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if ds := c.resolve(pod.Namespace, ref); ds != nil {
			c.expectations.deletionObserved(keyOf(ds))
			c.enqueue(ds)
		}
	}
}

// addNode enqueues the sets that should run on a new node.
func (c *Controller) addNode(obj any) {
	node := obj.(*corev1.Node)
	all, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		if run, _ := shouldRun(node, ds); run {
			c.enqueue(ds)
		}
	}
}

// updateNode enqueues the sets whose placement on the node changes.
func (c *Controller) updateNode(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Node), newObj.(*corev1.Node)
	if equality.Semantic.DeepEqual(old.Labels, cur.Labels) && equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		return // heartbeats and status: nothing daemons are placed by
	}
	all, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		oldRun, oldKeep := shouldRun(old, ds)
		curRun, curKeep := shouldRun(cur, ds)
		if oldRun != curRun || oldKeep != curKeep {
			c.enqueue(ds)
		}
	}
}

// resolve returns the set a controller reference names, if it still is
// that set.
func (c *Controller) resolve(ns string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return nil
	}
	return ds
}

// setsSelecting returns the sets of ns whose selector matches lbls.
func (c *Controller) setsSelecting(ns string, lbls map[string]string) []*appsv1.DaemonSet {
	if len(lbls) == 0 {
		return nil
	}
	all, err := c.sets.DaemonSets(ns).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.DaemonSet
	for _, ds := range all {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(lbls)) {
			out = append(out, ds)
		}
	}
	return out
}

func keyOf(ds *appsv1.DaemonSet) string { return ds.Namespace + "/" + ds.Name }

// sync reconciles the set named key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err != nil || sel.Empty() {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	if ds.DeletionTimestamp != nil {
		return nil
	}
	cur, old, err := c.constructHistory(ctx, ds)
	if err != nil {
		return err
	}
	hash := cur.Labels[hashLabel]
	if !c.expectations.satisfied(key) {
		// Our cache is behind our own writes: only report.
		return c.updateStatus(ctx, ds, nodes, hash, false)
	}
	err = c.manage(ctx, ds, nodes, hash)
	if err == nil && c.expectations.satisfied(key) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		err = c.rollingUpdate(ctx, ds, nodes, hash)
	}
	if err == nil {
		err = c.cleanupHistory(ctx, ds, old)
	}
	if statusErr := c.updateStatus(ctx, ds, nodes, hash, true); err == nil {
		err = statusErr
	}
	return err
}

// podsOf returns the pods ds owns, adopting matching orphans and releasing
// owned pods that no longer match.
func (c *Controller) podsOf(ctx context.Context, ds *appsv1.DaemonSet) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	all, err := c.pods.Pods(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	m := c.refManager(ds, selector, func(ctx context.Context, name string, patch []byte) error {
		_, err := c.client.CoreV1().Pods(ds.Namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	return refmanager.Claim(ctx, m, all)
}

func (c *Controller) refManager(ds *appsv1.DaemonSet, selector labels.Selector, patch refmanager.PatchFunc) *refmanager.Manager {
	return &refmanager.Manager{
		Controller: ds,
		Kind:       controllerKind,
		Selector:   selector,
		CanAdopt: refmanager.RecheckDeletion(ds.UID, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		}),
		Patch: patch,
	}
}

// nodesToDaemonPods maps node names to the set's pods there (bound, or
// aimed at by their node affinity). Pods that ended and are being deleted
// are left out unless includeDeletedTerminal.
func (c *Controller) nodesToDaemonPods(ctx context.Context, ds *appsv1.DaemonSet, includeDeletedTerminal bool) (map[string][]*corev1.Pod, error) {
	pods, err := c.podsOf(ctx, ds)
	if err != nil {
		return nil, err
	}
	out := map[string][]*corev1.Pod{}
	for _, pod := range pods {
		if !includeDeletedTerminal && podTerminal(pod) && pod.DeletionTimestamp != nil {
			continue
		}
		node, err := targetNode(pod)
		if err != nil {
			slog.Warn("daemon pod has no target node", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			continue
		}
		out[node] = append(out[node], pod)
	}
	return out, nil
}
