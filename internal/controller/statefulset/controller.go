// Package statefulset is the StatefulSet controller, as
// kube-controller-manager's: pods with stable names <set>-<ordinal> and
// their claims from volumeClaimTemplates (<template>-<set>-<ordinal>),
// created in ordinal order once their predecessors are Running and Ready
// (OrderedReady) or all at once (Parallel) and removed from the highest
// ordinal; rolling updates from the highest ordinal down to the partition
// with at most maxUnavailable pods down, or OnDelete; the template history
// in ControllerRevisions (status.currentRevision and updateRevision, which
// `kubectl rollout` reads); and the claim retention policy through owner
// references.
package statefulset

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/history"
	"github.com/havre/havre/internal/controller/refmanager"
)

// controllerKind is the kind of the sets' controller references.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Controller reconciles StatefulSets.
type Controller struct {
	client   kubernetes.Interface
	history  *history.History
	sets     appslisters.StatefulSetLister
	pods     corelisters.PodLister
	claims   corelisters.PersistentVolumeClaimLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster
	// now is the clock of availability (minReadySeconds).
	now func() time.Time
}

// New returns a controller on the factory's informers; Run starts it.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) (*Controller, error) {
	setInf := factory.Apps().V1().StatefulSets()
	podInf := factory.Core().V1().Pods()
	revInf := factory.Apps().V1().ControllerRevisions()
	claimInf := factory.Core().V1().PersistentVolumeClaims()
	events := record.NewBroadcaster()
	c := &Controller{
		client:  client,
		history: history.New(client, revInf.Lister()),
		sets:    setInf.Lister(),
		pods:    podInf.Lister(),
		claims:  claimInf.Lister(),
		synced: []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced,
			revInf.Informer().HasSynced, claimInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"}),
		events:   events,
		recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "statefulset-controller"}),
		now:      time.Now,
	}
	if _, err := setInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePodEvent,
		DeleteFunc: c.deletePodEvent,
	}); err != nil {
		return nil, err
	}
	// Claims: a claim released by the garbage collector may unblock a pod.
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deleteClaim,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reconciles with workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.events.Shutdown()
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing a statefulset failed; retrying", "statefulset")
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueAfter(set *appsv1.StatefulSet, d time.Duration) {
	c.queue.AddAfter(set.Namespace+"/"+set.Name, d)
}

// sync reconciles the set named key.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		// A set the API server accepted always has a valid selector.
		slog.Warn("statefulset has an invalid selector", "statefulset", key, "err", err)
		return nil
	}
	if err := c.adoptOrphanRevisions(ctx, set, selector); err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return err
	}
	status, err := c.update(ctx, set, pods)
	if err != nil {
		return err
	}
	if set.Spec.MinReadySeconds > 0 && status != nil && status.AvailableReplicas != replicasOf(set) {
		c.enqueueAfter(set, time.Duration(set.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

// adoptOrphanRevisions gives the set the matching revisions nobody
// controls.
func (c *Controller) adoptOrphanRevisions(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) error {
	revs, err := c.history.List(set, selector)
	if err != nil {
		return err
	}
	var orphans []*appsv1.ControllerRevision
	for _, r := range revs {
		if metav1.GetControllerOfNoCopy(r) == nil {
			orphans = append(orphans, r)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	_, err = refmanager.Claim(ctx, c.refManager(set, selector, c.history.Patch(set.Namespace)), orphans)
	return err
}

// claimPods returns the set's pods, adopting matching orphans named as its
// members and releasing owned pods that no longer match.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	patch := func(ctx context.Context, name string, patch []byte) error {
		_, err := c.client.CoreV1().Pods(set.Namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	var members []*corev1.Pod
	var errs []error
	for _, p := range all {
		if isMemberOf(set, p) {
			members = append(members, p)
			continue
		}
		// Named for another set: ours only by mistake; let it go.
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == set.UID && set.DeletionTimestamp == nil {
			release, err := refmanager.ReleasePatch(set.UID, p.UID)
			if err == nil {
				err = patch(ctx, p.Name, release)
			}
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				errs = append(errs, err)
			}
		}
	}
	claimed, err := refmanager.Claim(ctx, c.refManager(set, selector, patch), members)
	return claimed, utilerrors.NewAggregate(append(errs, err))
}

func (c *Controller) refManager(set *appsv1.StatefulSet, selector labels.Selector, patch refmanager.PatchFunc) *refmanager.Manager {
	return &refmanager.Manager{
		Controller: set,
		Kind:       controllerKind,
		Selector:   selector,
		CanAdopt: refmanager.RecheckDeletion(set.UID, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		}),
		Patch: patch,
	}
}

// Pod events enqueue the pod's set: its controller, or for an orphan every
// set that would adopt it.

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePodEvent(pod)
		return
	}
	if set := c.controllerOf(pod); set != nil {
		c.enqueue(set)
		return
	}
	for _, set := range c.setsForOrphan(pod) {
		c.enqueue(set)
	}
}

func (c *Controller) updatePodEvent(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur); oldRef != nil &&
		(curRef == nil || oldRef.UID != curRef.UID) {
		if set := c.resolve(old.Namespace, oldRef); set != nil {
			c.enqueue(set)
		}
	}
	if set := c.controllerOf(cur); set != nil {
		c.enqueue(set)
		// A pod that just became ready is available minReadySeconds later.
		if !podReady(old) && podReady(cur) && set.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(set, time.Duration(set.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	for _, set := range c.setsForOrphan(cur) {
		c.enqueue(set)
	}
}

func (c *Controller) deletePodEvent(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if set := c.controllerOf(pod); set != nil {
		c.enqueue(set)
	}
}

// deleteClaim enqueues the sets whose member's claim went away.
func (c *Controller) deleteClaim(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	sets, err := c.sets.StatefulSets(claim.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		if len(set.Spec.VolumeClaimTemplates) > 0 {
			c.enqueue(set)
		}
	}
}

func (c *Controller) controllerOf(pod *corev1.Pod) *appsv1.StatefulSet {
	return c.resolve(pod.Namespace, metav1.GetControllerOfNoCopy(pod))
}

// resolve returns the set a controller reference names, if it still is
// that set.
func (c *Controller) resolve(ns string, ref *metav1.OwnerReference) *appsv1.StatefulSet {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	set, err := c.sets.StatefulSets(ns).Get(ref.Name)
	if err != nil || set.UID != ref.UID {
		return nil
	}
	return set
}

// setsForOrphan returns the sets whose selector matches an orphan pod.
func (c *Controller) setsForOrphan(pod *corev1.Pod) []*appsv1.StatefulSet {
	if len(pod.Labels) == 0 {
		return nil
	}
	sets, err := c.sets.StatefulSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.StatefulSet
	for _, set := range sets {
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, set)
	}
	if len(out) > 1 {
		slog.Warn("pod matches more than one statefulset", "pod", fmt.Sprintf("%s/%s", pod.Namespace, pod.Name), "statefulsets", len(out))
	}
	return out
}
