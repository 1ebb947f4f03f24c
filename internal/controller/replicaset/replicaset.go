// Package replicaset is the ReplicaSet controller, as kube-controller-
// manager's: it creates and deletes pods so that each ReplicaSet has
// spec.replicas active pods made from its template, adopts orphan pods its
// selector matches and releases owned pods it no longer matches, and reports
// status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
// terminatingReplicas, observedGeneration and the ReplicaFailure condition).
//
// Creations and deletions in flight are remembered as expectations: until
// the informer has seen them, a ReplicaSet is not managed again, so a burst
// of creates is never duplicated. Creates go out in slow-start batches (1,
// 2, 4, ...) that stop at the first error, at most BurstReplicas per sync;
// scale-down deletes pods in upstream's preference order (unscheduled,
// pending, not ready, cheaper, doubled up, recently ready, restarting,
// newest first).
package replicaset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// BurstReplicas bounds the pods created or deleted in one sync, as
// upstream's.
const BurstReplicas = 500

// controllerKind is what the pods' controller references name.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Controller keeps ReplicaSets' pods.
type Controller struct {
	client    kubernetes.Interface
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	exp       *expectations
	recorder  record.EventRecorder
	burst     int
	now       func() time.Time
}

// New returns a controller on the factory's ReplicaSet and Pod informers,
// recording Events with recorder.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	rsInf := factory.Apps().V1().ReplicaSets()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:    client,
		rsLister:  rsInf.Lister(),
		podLister: podInf.Lister(),
		synced:    []cache.InformerSynced{rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "replicaset"}),
		exp:      newExpectations(),
		recorder: recorder,
		burst:    BurstReplicas,
		now:      time.Now,
	}
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueRS,
		UpdateFunc: func(_, cur any) { c.enqueueRS(cur) },
		DeleteFunc: c.deleteRS,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs ReplicaSets with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing replicaset failed; retrying", "replicaset")
}

func keyOf(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

func (c *Controller) enqueueRS(obj any) {
	if rs, ok := obj.(*appsv1.ReplicaSet); ok {
		c.queue.Add(keyOf(rs))
	}
}

func (c *Controller) enqueueRSAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	c.queue.AddAfter(keyOf(rs), d)
}

func (c *Controller) deleteRS(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	key := keyOf(rs)
	c.exp.forget(key)
	c.queue.Add(key)
}

// resolveRef returns the ReplicaSet a controller reference names, or nil.
func (c *Controller) resolveRef(ns string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// replicaSetsSelecting returns the ReplicaSets whose selector matches the
// pod's labels.
func (c *Controller) replicaSetsSelecting(pod *corev1.Pod) []*appsv1.ReplicaSet {
	if len(pod.Labels) == 0 {
		return nil
	}
	list, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range list {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	return out
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Restarted with a pod already being deleted: a deletion.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		rs := c.resolveRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key := keyOf(rs)
		c.exp.creationObserved(key)
		c.queue.Add(key)
		return
	}
	// An orphan: whoever selects it may adopt it.
	for _, rs := range c.replicaSetsSelecting(pod) {
		c.enqueueRS(rs)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*corev1.Pod), cur.(*corev1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return
	}
	labelsChanged := !labels.Equals(oldPod.Labels, curPod.Labels)
	if curPod.DeletionTimestamp != nil {
		// Graceful deletion started: count it now, not when the pod is
		// finally gone, so a replacement is created at once.
		c.deletePod(curPod)
		if labelsChanged {
			c.deletePod(oldPod)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(curPod), metav1.GetControllerOfNoCopy(oldPod)
	refChanged := !refEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.resolveRef(oldPod.Namespace, oldRef); rs != nil {
			c.enqueueRS(rs)
		}
	}
	if curRef != nil {
		rs := c.resolveRef(curPod.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueueRS(rs)
		// A pod that just became ready becomes available minReadySeconds
		// later: check again then.
		if !isPodReady(oldPod) && isPodReady(curPod) && rs.Spec.MinReadySeconds > 0 {
			c.enqueueRSAfter(rs, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.replicaSetsSelecting(curPod) {
			c.enqueueRS(rs)
		}
	}
}

func refEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func (c *Controller) deletePod(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return
	}
	rs := c.resolveRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := keyOf(rs)
	c.exp.deletionObserved(key, keyOf(pod))
	c.queue.Add(key)
}
