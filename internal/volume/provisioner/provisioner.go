// Package provisioner is the node agent's side of Havre's local volumes
// (provisioner havre.io/local): it provisions the claims the scheduler
// placed on this node (a volume on the node's local.Backing and a `local`
// PersistentVolume pre-bound to the claim, as upstream's
// external-provisioner does), deletes the released volumes of this node
// whose reclaim policy is Delete, grows the volumes whose claims ask for
// more (as external-resizer and the kubelet's online expansion do), and
// publishes the node's free space as CSIStorageCapacity objects for the
// scheduler.
//
// It acts only on claims selected for this node and on volumes of this
// node; it never binds claims (the PersistentVolume controller does) and
// never touches another node's volumes.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/local"
)

// Finalizer is external-provisioner's finalizer on the volumes it
// provisioned: the volume's backing goes before the object.
const Finalizer = "external-provisioner.volume.kubernetes.io/finalizer"

// AnnStorageResizer on a claim names the resizer expected to grow it.
const AnnStorageResizer = "volume.kubernetes.io/storage-resizer"

// Options configure a Provisioner.
type Options struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// Dynamic reads VolumeSnapshots and VolumeSnapshotContents (restores
	// fail without it).
	Dynamic dynamic.Interface
	// NodeName is this node.
	NodeName string
	// Backing keeps this node's volumes.
	Backing local.Backing
	// Recorder writes the claims' and volumes' events (default: one
	// recording to the API as component havre.io/local_<node>).
	Recorder record.EventRecorder
	// Clock (default: the real one) paces the capacity refresh.
	Clock clock.WithTicker
	// CapacityPeriod is how often the capacity is published again even
	// without a change (default 30 s).
	CapacityPeriod time.Duration
	// MaxFailures is how many times provisioning a claim may fail before
	// the claim goes back to the scheduler (default 3).
	MaxFailures int
	// RetryDelay is the first delay before a failed claim or volume is
	// tried again (doubling up to 5 minutes; default 1 s).
	RetryDelay time.Duration
}

// Provisioner provisions, deletes and grows this node's local volumes and
// publishes its capacity.
type Provisioner struct {
	o        Options
	client   kubernetes.Interface
	recorder record.EventRecorder

	claims     corelisters.PersistentVolumeClaimLister
	volumes    corelisters.PersistentVolumeLister
	classes    storagelisters.StorageClassLister
	synced     []cache.InformerSynced
	claimQueue workqueue.TypedRateLimitingInterface[string]
	pvQueue    workqueue.TypedRateLimitingInterface[string]
	capKick    chan struct{}

	mu       sync.Mutex
	failures map[types.UID]int
}

// New makes a Provisioner whose informers come from factory (start it
// after New).
func New(o Options, factory informers.SharedInformerFactory) (*Provisioner, error) {
	if o.Client == nil || o.Backing == nil || o.NodeName == "" {
		return nil, errors.New("provisioner: Client, Backing and NodeName are required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.CapacityPeriod == 0 {
		o.CapacityPeriod = 30 * time.Second
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 3
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	p := &Provisioner{
		o:        o,
		client:   o.Client,
		recorder: o.Recorder,
		claimQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.RetryDelay, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-claims", Clock: o.Clock}),
		pvQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.RetryDelay, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-volumes", Clock: o.Clock}),
		capKick:  make(chan struct{}, 1),
		failures: map[types.UID]int{},
	}
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	p.claims, p.volumes, p.classes = claims.Lister(), volumes.Lister(), classes.Lister()
	p.synced = []cache.InformerSynced{claims.Informer().HasSynced, volumes.Informer().HasSynced, classes.Informer().HasSynced}

	enqueueClaim := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			p.claimQueue.Add(key)
		}
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueClaim,
		UpdateFunc: func(_, obj any) { enqueueClaim(obj) },
	}); err != nil {
		return nil, err
	}
	enqueueVolume := func(obj any) {
		pv, ok := obj.(*corev1.PersistentVolume)
		if !ok || !p.ours(pv) {
			return
		}
		p.pvQueue.Add(pv.Name)
		if ref := pv.Spec.ClaimRef; ref != nil {
			// A claim waiting for its volume to grow.
			p.claimQueue.Add(ref.Namespace + "/" + ref.Name)
		}
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueVolume,
		UpdateFunc: func(_, obj any) { enqueueVolume(obj) },
		DeleteFunc: func(any) { p.kickCapacity() },
	}); err != nil {
		return nil, err
	}
	if _, err := classes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.kickCapacity() },
		UpdateFunc: func(_, _ any) { p.kickCapacity() },
		DeleteFunc: func(any) { p.kickCapacity() },
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Run works until ctx is done.
func (p *Provisioner) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer p.claimQueue.ShutDown()
	defer p.pvQueue.ShutDown()
	if p.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.client.CoreV1().Events("")})
		defer b.Shutdown()
		p.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: volume.Provisioner + "_" + p.o.NodeName, Host: p.o.NodeName})
	}
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return
	}
	slog.Info("local volume provisioner running", "node", p.o.NodeName, "backing", p.o.Backing.Kind(), "enforcesSize", p.o.Backing.EnforcesSize())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, func(ctx context.Context) { p.work(ctx, p.claimQueue, p.syncClaim) }, time.Second)
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		wait.UntilWithContext(ctx, func(ctx context.Context) { p.work(ctx, p.pvQueue, p.syncVolume) }, time.Second)
	}()
	go func() {
		defer wg.Done()
		p.annotateNode(ctx)
	}()
	go func() {
		defer wg.Done()
		p.publishCapacityLoop(ctx)
	}()
	<-ctx.Done()
	p.claimQueue.ShutDown()
	p.pvQueue.ShutDown()
	wg.Wait()
}

func (p *Provisioner) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		err := sync(ctx, key)
		if err == nil {
			q.Forget(key)
		} else if ctx.Err() == nil {
			slog.Warn("local volumes: will retry", "key", key, "err", err)
			q.AddRateLimited(key)
		}
		q.Done(key)
	}
}

// ours reports whether a volume is a local volume of this node.
func (p *Provisioner) ours(pv *corev1.PersistentVolume) bool {
	if pv.Annotations[volume.AnnProvisionedBy] != volume.Provisioner {
		return false
	}
	return volumeNode(pv) == p.o.NodeName
}

// volumeNode is the node a volume's required node affinity names.
func volumeNode(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// annotateNode writes the backing's kind on the Node, retrying until the
// Node exists.
func (p *Provisioner) annotateNode(ctx context.Context) {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, volume.AnnBacking, p.o.Backing.Kind())
	_ = wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := p.client.CoreV1().Nodes().Patch(ctx, p.o.NodeName, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			slog.Warn("annotating the node with its volume backing", "err", err)
		}
		return err == nil, nil
	})
}

func (p *Provisioner) kickCapacity() {
	select {
	case p.capKick <- struct{}{}:
	default:
	}
}

// class is the StorageClass of a claim if it is one of havre.io/local.
func (p *Provisioner) class(claim *corev1.PersistentVolumeClaim) (*storagev1.StorageClass, bool) {
	name := claimClass(claim)
	if name == "" {
		return nil, false
	}
	sc, err := p.classes.Get(name)
	if err != nil || sc.Provisioner != volume.Provisioner {
		return nil, false
	}
	return sc, true
}

func claimClass(claim *corev1.PersistentVolumeClaim) string {
	if claim.Spec.StorageClassName != nil {
		return *claim.Spec.StorageClassName
	}
	return claim.Annotations[corev1.BetaStorageClassAnnotation]
}
