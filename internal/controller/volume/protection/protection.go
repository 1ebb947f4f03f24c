// Package protection holds kube-controller-manager's storage object in use
// protection controllers: pvc-protection keeps a claim that a pod still
// uses from going away (it removes the kubernetes.io/pvc-protection
// finalizer from a deleting claim only once no pod that is not shut down
// uses it, directly or as a generic ephemeral volume), pv-protection keeps
// a bound volume (it removes kubernetes.io/pv-protection from a deleting
// volume once it is not Bound). Both add their finalizer to objects that
// lack it, as upstream does for objects created before the admission
// plugin ran.
//
// They are clients of the API only and never delete anything themselves.
package protection

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-helpers/storage/ephemeral"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/volume"
)

// The controllers' names, as kube-controller-manager's.
const (
	PVCName = "persistentvolumeclaim-protection-controller"
	PVName  = "persistentvolume-protection-controller"
)

func newQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// PVCProtection is the pvc-protection controller.
type PVCProtection struct {
	client kubernetes.Interface
	claims corelisters.PersistentVolumeClaimLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// NewPVCProtection returns the controller on the factory's informers.
func NewPVCProtection(client kubernetes.Interface, factory informers.SharedInformerFactory) (*PVCProtection, error) {
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	podInf := factory.Core().V1().Pods()
	c := &PVCProtection{
		client: client,
		claims: pvcInf.Lister(),
		pods:   podInf.Lister(),
		synced: []cache.InformerSynced{pvcInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue:  newQueue("pvcprotection"),
	}
	claimChanged := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			c.queue.Add(pvc.Namespace + "/" + pvc.Name)
		}
	}
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    claimChanged,
		UpdateFunc: func(_, obj any) { claimChanged(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.podChanged(obj) },
		DeleteFunc: c.podChanged,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// podChanged queues the claims of a pod that was updated (it may have shut
// down) or deleted: they may be free now.
func (c *PVCProtection) podChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, name := range claimNames(pod) {
		c.queue.Add(pod.Namespace + "/" + name)
	}
}

// claimNames are the claims a pod's volumes name.
func claimNames(pod *corev1.Pod) []string {
	var names []string
	for i, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			names = append(names, ephemeral.VolumeClaimName(pod, &pod.Spec.Volumes[i]))
		}
	}
	return names
}

// Run syncs claims with workers goroutines until ctx is done.
func (c *PVCProtection) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "pvc protection failed; retrying", "claim")
}

func (c *PVCProtection) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := c.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	has := slices.Contains(pvc.Finalizers, volume.PVCProtectionFinalizer)
	if pvc.DeletionTimestamp == nil {
		if has {
			return nil
		}
		next := pvc.DeepCopy()
		next.Finalizers = append(next.Finalizers, volume.PVCProtectionFinalizer)
		_, err := c.client.CoreV1().PersistentVolumeClaims(namespace).Update(ctx, next, metav1.UpdateOptions{})
		return ignoreGone(err)
	}
	if !has {
		return nil
	}
	used, err := c.inUse(ctx, pvc)
	if err != nil || used {
		return err
	}
	next := pvc.DeepCopy()
	next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == volume.PVCProtectionFinalizer })
	_, err = c.client.CoreV1().PersistentVolumeClaims(namespace).Update(ctx, next, metav1.UpdateOptions{})
	return ignoreGone(err)
}

// inUse asks the cache, then, when the cache sees no user, the API (the
// cache may not have a pod just created yet), as upstream.
func (c *PVCProtection) inUse(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(pvc.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	for _, pod := range pods {
		if PodUsesClaim(pod, pvc) {
			return true, nil
		}
	}
	list, err := c.client.CoreV1().Pods(pvc.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("listing the pods of namespace %s: %w", pvc.Namespace, err)
	}
	for i := range list.Items {
		if PodUsesClaim(&list.Items[i], pvc) {
			return true, nil
		}
	}
	return false, nil
}

// PodUsesClaim reports whether a scheduled pod that is not shut down uses
// the claim, directly or as its generic ephemeral volume. Pods not
// scheduled do not count: a node does not start a pod whose claim is
// being deleted.
func PodUsesClaim(pod *corev1.Pod, pvc *corev1.PersistentVolumeClaim) bool {
	if pod.Spec.NodeName == "" || podIsShutDown(pod) {
		return false
	}
	for i, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name:
			return true
		case v.Ephemeral != nil && ephemeral.VolumeClaimName(pod, &pod.Spec.Volumes[i]) == pvc.Name && ephemeral.VolumeIsForPod(pod, pvc) == nil:
			return true
		}
	}
	return false
}

// podIsShutDown: the pod has terminated (Succeeded or Failed), or it is
// being deleted with no grace left (the node is done with it, or it was
// force-deleted).
func podIsShutDown(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	g := pod.DeletionGracePeriodSeconds
	return pod.DeletionTimestamp != nil && g != nil && *g == 0
}

// PVProtection is the pv-protection controller.
type PVProtection struct {
	client  kubernetes.Interface
	volumes corelisters.PersistentVolumeLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// NewPVProtection returns the controller on the factory's informers.
func NewPVProtection(client kubernetes.Interface, factory informers.SharedInformerFactory) (*PVProtection, error) {
	pvInf := factory.Core().V1().PersistentVolumes()
	c := &PVProtection{
		client:  client,
		volumes: pvInf.Lister(),
		synced:  []cache.InformerSynced{pvInf.Informer().HasSynced},
		queue:   newQueue("pvprotection"),
	}
	changed := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok {
			c.queue.Add(pv.Name)
		}
	}
	if _, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs volumes with workers goroutines until ctx is done.
func (c *PVProtection) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "pv protection failed; retrying", "volume")
}

func (c *PVProtection) sync(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	has := slices.Contains(pv.Finalizers, volume.PVProtectionFinalizer)
	var next *corev1.PersistentVolume
	switch {
	case pv.DeletionTimestamp == nil && !has:
		next = pv.DeepCopy()
		next.Finalizers = append(next.Finalizers, volume.PVProtectionFinalizer)
	case pv.DeletionTimestamp != nil && has && pv.Status.Phase != corev1.VolumeBound:
		next = pv.DeepCopy()
		next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == volume.PVProtectionFinalizer })
	default:
		return nil
	}
	_, err = c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	return ignoreGone(err)
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
