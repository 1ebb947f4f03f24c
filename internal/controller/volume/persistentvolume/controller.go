// Package persistentvolume is the PersistentVolume controller, as
// kube-controller-manager's persistentvolume-binder-controller: it binds
// claims to matching volumes (or to the volumes pre-bound to them), keeps
// the phases of both (claims Pending, Bound or Lost; volumes Available,
// Bound, Released or Failed), hands claims of a class to its provisioner
// (every provisioner is external here: it annotates the claim and waits for
// a volume pre-bound to it), applies a released volume's reclaim policy,
// gives claims without a class the default class when one appears, and
// hands a bound claim that asks for more than its volume holds to the
// resizer (what upstream's expand controller does for external resizers).
//
// It is a client of the API only: it never creates, deletes, provisions
// nor resizes storage. Volumes of an external provisioner are deleted by
// that provisioner (internal/volume/provisioner for Havre's local ones).
package persistentvolume

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

// Name is the controller's name, as kube-controller-manager's.
const Name = "persistentvolume-binder-controller"

// SyncPeriod is how often every claim and volume is synced again
// (upstream's --pvclaimbinder-sync-period).
const SyncPeriod = 15 * time.Second

// Event reasons, as upstream's (pkg/controller/volume/events).
const (
	FailedBinding        = "FailedBinding"
	VolumeMismatch       = "VolumeMismatch"
	VolumeFailedRecycle  = "VolumeFailedRecycle"
	VolumeFailedDelete   = "VolumeFailedDelete"
	ExternalProvisioning = "ExternalProvisioning"
	ProvisioningFailed   = "ProvisioningFailed"
	WaitForFirstConsumer = "WaitForFirstConsumer"
	WaitForPodScheduled  = "WaitForPodScheduled"
	ExternalExpanding    = "ExternalExpanding"
	ClaimLost            = "ClaimLost"
	ClaimMisbound        = "ClaimMisbound"
)

// AnnStorageResizer on a claim names the resizer expected to expand its
// volume, as upstream's expand controller writes it.
const AnnStorageResizer = "volume.kubernetes.io/storage-resizer"

// Controller binds claims and volumes.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.PassiveClock

	volumes corelisters.PersistentVolumeLister
	claims  corelisters.PersistentVolumeClaimLister
	classes storagelisters.StorageClassLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced

	volumeQueue workqueue.TypedRateLimitingInterface[string]
	claimQueue  workqueue.TypedRateLimitingInterface[string]
}

// New returns a controller on the factory's informers; Run starts it.
// Events go to recorder; clk dates phase transitions (nil: the real clock).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, clk clock.PassiveClock) (*Controller, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	pvInf := factory.Core().V1().PersistentVolumes()
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	scInf := factory.Storage().V1().StorageClasses()
	podInf := factory.Core().V1().Pods()
	newQueue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
	}
	c := &Controller{
		client:   client,
		recorder: recorder,
		clock:    clk,
		volumes:  pvInf.Lister(),
		claims:   pvcInf.Lister(),
		classes:  scInf.Lister(),
		pods:     podInf.Lister(),
		synced: []cache.InformerSynced{pvInf.Informer().HasSynced, pvcInf.Informer().HasSynced,
			scInf.Informer().HasSynced, podInf.Informer().HasSynced},
		volumeQueue: newQueue("volumes"),
		claimQueue:  newQueue("claims"),
	}
	if _, err := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.volumeChanged,
		UpdateFunc: func(_, obj any) { c.volumeChanged(obj) },
		DeleteFunc: c.volumeChanged,
	}); err != nil {
		return nil, err
	}
	if _, err := pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimChanged,
		UpdateFunc: func(_, obj any) { c.claimChanged(obj) },
		DeleteFunc: c.claimDeleted,
	}); err != nil {
		return nil, err
	}
	// A new default class is given retroactively to claims without one.
	if _, err := scInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.classChanged() },
		UpdateFunc: func(any, any) { c.classChanged() },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func claimKey(namespace, name string) string { return namespace + "/" + name }

func (c *Controller) volumeChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	c.volumeQueue.Add(pv.Name)
	if ref := pv.Spec.ClaimRef; ref != nil {
		c.claimQueue.Add(claimKey(ref.Namespace, ref.Name))
		return
	}
	// An unbound volume may be what a pending claim waits for.
	c.enqueueClaims(func(pvc *corev1.PersistentVolumeClaim) bool { return pvc.Status.Phase == corev1.ClaimPending })
}

func (c *Controller) claimChanged(obj any) {
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		c.claimQueue.Add(claimKey(pvc.Namespace, pvc.Name))
	}
}

// claimDeleted has the claim's volume released.
func (c *Controller) claimDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && pvc.Spec.VolumeName != "" {
		c.volumeQueue.Add(pvc.Spec.VolumeName)
	}
}

// classChanged queues the claims without a class: the class may be a new
// default.
func (c *Controller) classChanged() {
	c.enqueueClaims(func(pvc *corev1.PersistentVolumeClaim) bool { return pvc.Spec.StorageClassName == nil })
}

func (c *Controller) enqueueClaims(match func(*corev1.PersistentVolumeClaim) bool) {
	claims, err := c.claims.List(labels.Everything())
	if err != nil {
		return
	}
	for _, pvc := range claims {
		if match(pvc) {
			c.claimQueue.Add(claimKey(pvc.Namespace, pvc.Name))
		}
	}
}

// resync enqueues every volume and claim.
func (c *Controller) resync() {
	if pvs, err := c.volumes.List(labels.Everything()); err == nil {
		for _, pv := range pvs {
			c.volumeQueue.Add(pv.Name)
		}
	}
	c.enqueueClaims(func(*corev1.PersistentVolumeClaim) bool { return true })
}

// Run syncs volumes and claims, one worker each as upstream, and every
// SyncPeriod all of them, until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	// A conflict is the cache lagging behind a write: retried quietly.
	quiet := controller.Quiet(apierrors.IsConflict)
	go controller.RunWorkers(ctx, c.volumeQueue, c.synced, 1, c.syncVolumeKey, "syncing PersistentVolume failed; retrying", "volume", quiet)
	controller.RunWorkers(ctx, c.claimQueue, c.synced, 1, c.syncClaimKey, "syncing PersistentVolumeClaim failed; retrying", "claim", quiet,
		controller.AfterSync(func(ctx context.Context) {
			go func() {
				t := time.NewTicker(SyncPeriod)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						c.resync()
					}
				}
			}()
		}))
}

func logClaim(pvc *corev1.PersistentVolumeClaim) slog.Attr {
	return slog.String("claim", fmt.Sprintf("%s/%s", pvc.Namespace, pvc.Name))
}
