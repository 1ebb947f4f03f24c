// Package ephemeral is kube-controller-manager's ephemeral-volume
// controller: for every generic ephemeral volume of a pod
// (`ephemeral.volumeClaimTemplate`) it creates the claim `<pod>-<volume>`
// from the template, owned by the pod (a controller reference, so that the
// garbage collector deletes the claim with the pod). A claim of that name
// the pod does not own is not taken over: the pod gets a FailedBinding
// event and waits.
//
// It is a client of the API only; it never deletes claims.
package ephemeral

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-helpers/storage/ephemeral"

	"github.com/havre/havre/internal/controller"
)

// Name is the controller's name, as kube-controller-manager's.
const Name = "ephemeral-volume-controller"

// FailedBinding is the reason of the event a pod gets when its claim
// cannot be made, as upstream's.
const FailedBinding = "FailedBinding"

// Controller creates the claims of generic ephemeral volumes.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	pods     corelisters.PodLister
	claims   corelisters.PersistentVolumeClaimLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New returns the controller on the factory's informers; events go to
// recorder.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	podInf := factory.Core().V1().Pods()
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	c := &Controller{
		client:   client,
		recorder: recorder,
		pods:     podInf.Lister(),
		claims:   pvcInf.Lister(),
		synced:   []cache.InformerSynced{podInf.Informer().HasSynced, pvcInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ephemeral_volume"}),
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePod,
		UpdateFunc: func(_, obj any) { c.enqueuePod(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.claimDeleted,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// enqueuePod queues a pod that is not being deleted and has ephemeral
// volumes.
func (c *Controller) enqueuePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.DeletionTimestamp != nil {
		return
	}
	for _, v := range pod.Spec.Volumes {
		if v.Ephemeral != nil {
			c.queue.Add(pod.Namespace + "/" + pod.Name)
			return
		}
	}
}

// claimDeleted queues the pod owning a deleted claim: while the pod
// lives, its claim is made again.
func (c *Controller) claimDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(pvc); ref != nil && ref.Kind == "Pod" && ref.APIVersion == "v1" {
		c.queue.Add(pvc.Namespace + "/" + ref.Name)
	}
}

// Run syncs pods with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "creating ephemeral volume claims failed; retrying", "pod")
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if err := c.handleVolume(ctx, pod, v); err != nil {
			c.recorder.Event(pod, corev1.EventTypeWarning, FailedBinding, fmt.Sprintf("ephemeral volume %s: %v", v.Name, err))
			return fmt.Errorf("pod %s, ephemeral volume %s: %w", key, v.Name, err)
		}
	}
	return nil
}

// handleVolume makes the claim of one ephemeral volume, unless it exists.
func (c *Controller) handleVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) error {
	if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate == nil {
		return nil
	}
	name := ephemeral.VolumeClaimName(pod, v)
	pvc, err := c.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
	switch {
	case err == nil:
		return ephemeral.VolumeIsForPod(pod, pvc)
	case !apierrors.IsNotFound(err):
		return err
	}
	tmpl := v.Ephemeral.VolumeClaimTemplate
	pvc = &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: pod.Namespace,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
				Controller: new(true), BlockOwnerDeletion: new(true),
			}},
			Annotations: tmpl.Annotations,
			Labels:      tmpl.Labels,
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	_, err = c.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Made meanwhile, and not in the cache yet: whose is it?
		cur, gerr := c.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("create PVC %s: %w", name, err)
		}
		return ephemeral.VolumeIsForPod(pod, cur)
	}
	if err != nil {
		return fmt.Errorf("create PVC %s: %w", name, err)
	}
	return nil
}
