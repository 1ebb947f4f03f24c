// Package snapshotter is the node agent's part of volume snapshots, as
// upstream's csi-snapshotter sidecar is a CSI driver's: it takes the
// snapshots of the VolumeSnapshotContents of driver havre.io/local whose
// source volume lives on this node (local.Backing.Snapshot), reports them
// in the contents' status (snapshotHandle = the content's name,
// readyToUse, restoreSize, creationTime in nanoseconds) with the node in
// the annotation havre.io/node, and deletes them (DeleteSnapshot) when a
// content of policy Delete is deleted with its snapshot, then releases the
// content's finalizer.
//
// It never binds snapshots to contents or creates contents: the
// snapshot-controller (internal/controller/volume/snapshot) does. It never
// acts on another node's snapshots or on other drivers' contents.
package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapshotscheme "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/scheme"
	snapshotinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	snapshotlisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/local"
	"github.com/havre/havre/internal/volume/snapshotapi"
)

// Config is what a Snapshotter is built from.
type Config struct {
	// Client and Snapshots reach the API server as the node.
	Client    kubernetes.Interface
	Snapshots snapshotclient.Interface
	// NodeName is this agent's node.
	NodeName string
	// Backing holds this node's volumes and snapshots.
	Backing local.Backing
	// Workers take snapshots in parallel (0: 2).
	Workers int
	// Recorder, when set, records events instead of the API server's
	// sink (tests); Clock, when set, is the time of creationTime and
	// errors.
	Recorder record.EventRecorder
	Clock    clock.Clock
}

// Snapshotter takes and deletes this node's snapshots.
type Snapshotter struct {
	cfg           Config
	factory       informers.SharedInformerFactory
	nodeFactory   informers.SharedInformerFactory
	snapFactory   snapshotinformers.SharedInformerFactory
	contentLister snapshotlisters.VolumeSnapshotContentLister
	pvLister      corelisters.PersistentVolumeLister
	nodeLister    corelisters.NodeLister
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	broadcaster   record.EventBroadcaster
	recorder      record.EventRecorder
	clock         clock.Clock
}

// Component is the event source of the snapshotter, as upstream's sidecar
// names itself for a driver.
const Component = "csi-snapshotter " + volume.Provisioner

// New builds a Snapshotter on informers of its own; Run starts them.
func New(cfg Config) (*Snapshotter, error) {
	if cfg.Client == nil || cfg.Snapshots == nil || cfg.Backing == nil || cfg.NodeName == "" {
		return nil, errors.New("snapshotter: Client, Snapshots, Backing and NodeName are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	s := &Snapshotter{
		cfg:     cfg,
		factory: informers.NewSharedInformerFactory(cfg.Client, 0),
		nodeFactory: informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
		})),
		snapFactory: snapshotinformers.NewSharedInformerFactory(cfg.Snapshots, 0),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshotter"}),
		recorder: cfg.Recorder,
		clock:    cfg.Clock,
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.recorder == nil {
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			return nil, err
		}
		if err := snapshotscheme.AddToScheme(scheme); err != nil {
			return nil, err
		}
		s.broadcaster = record.NewBroadcaster()
		s.recorder = s.broadcaster.NewRecorder(scheme, corev1.EventSource{Component: Component, Host: cfg.NodeName})
	}
	contents := s.snapFactory.Snapshot().V1().VolumeSnapshotContents()
	pvs := s.factory.Core().V1().PersistentVolumes()
	nodes := s.nodeFactory.Core().V1().Nodes()
	s.contentLister, s.pvLister, s.nodeLister = contents.Lister(), pvs.Lister(), nodes.Lister()
	s.synced = []cache.InformerSynced{contents.Informer().HasSynced, pvs.Informer().HasSynced, nodes.Informer().HasSynced}
	enqueue := func(obj any) {
		if c, ok := obj.(*snapshotv1.VolumeSnapshotContent); ok && c.Spec.Driver == volume.Provisioner {
			s.queue.Add(c.Name)
		}
	}
	if _, err := contents.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// Run takes and deletes snapshots until ctx is done.
func (s *Snapshotter) Run(ctx context.Context) {
	if s.broadcaster != nil {
		s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Client.CoreV1().Events("")})
		defer s.broadcaster.Shutdown()
	}
	s.factory.Start(ctx.Done())
	s.nodeFactory.Start(ctx.Done())
	s.snapFactory.Start(ctx.Done())
	defer s.factory.Shutdown()
	defer s.nodeFactory.Shutdown()
	defer s.snapFactory.Shutdown()
	controller.RunWorkers(ctx, s.queue, s.synced, s.cfg.Workers, s.Sync,
		"syncing a VolumeSnapshotContent failed; retrying", "content")
}

// ours reports whether this node holds (or is to take) a content's
// snapshot: the node annotation names it, or, before the snapshot is
// taken, the source volume's node affinity matches this node.
func (s *Snapshotter) ours(c *snapshotv1.VolumeSnapshotContent) (bool, error) {
	if c.Spec.Driver != volume.Provisioner {
		return false, nil
	}
	if n, ok := c.Annotations[volume.AnnSnapshotNode]; ok {
		return n == s.cfg.NodeName, nil
	}
	if c.Spec.Source.VolumeHandle == nil {
		return false, nil // pre-provisioned without a node: not placeable
	}
	pv, err := s.pvLister.Get(*c.Spec.Source.VolumeHandle)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return false, nil
	}
	node, err := s.nodeLister.Get(s.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required).Match(node)
}

// Sync takes, reports or deletes one content's snapshot.
func (s *Snapshotter) Sync(ctx context.Context, name string) error {
	c, err := s.contentLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	mine, err := s.ours(c)
	if err != nil || !mine {
		return err
	}
	c = c.DeepCopy()
	if shouldDelete(c) {
		return s.delete(ctx, c)
	}
	if c.Spec.Source.VolumeHandle != nil && (c.Status == nil || c.Status.SnapshotHandle == nil) {
		return s.create(ctx, c)
	}
	if metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) && c.Status != nil && c.Status.ReadyToUse != nil && *c.Status.ReadyToUse {
		delete(c.Annotations, snapshotapi.AnnBeingCreated)
		_, err := s.cfg.Snapshots.SnapshotV1().VolumeSnapshotContents().Update(ctx, c, metav1.UpdateOptions{})
		return err
	}
	return nil
}

// shouldDelete is upstream's: a deleted content whose snapshot is not
// being taken, and either is an unbound pre-provisioned one or was marked
// by the snapshot-controller when its snapshot was deleted.
func shouldDelete(c *snapshotv1.VolumeSnapshotContent) bool {
	if c.DeletionTimestamp == nil {
		return false
	}
	if c.Spec.Source.SnapshotHandle != nil && c.Spec.VolumeSnapshotRef.UID == "" {
		return true
	}
	if metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) {
		return false
	}
	return metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingDeleted)
}

// delete removes the snapshot of a content of policy Delete, then the
// content's finalizer.
func (s *Snapshotter) delete(ctx context.Context, c *snapshotv1.VolumeSnapshotContent) error {
	api := s.cfg.Snapshots.SnapshotV1().VolumeSnapshotContents()
	if c.Spec.DeletionPolicy == snapshotv1.VolumeSnapshotContentDelete && c.Status != nil && c.Status.SnapshotHandle != nil {
		handle := *c.Status.SnapshotHandle
		if err := s.cfg.Backing.DeleteSnapshot(ctx, handle); err != nil {
			s.recorder.Event(c, corev1.EventTypeWarning, "SnapshotDeleteError", "Failed to delete snapshot")
			return fmt.Errorf("deleting snapshot %s of VolumeSnapshotContent %s: %w (the backing refused it; see the node's log)", handle, c.Name, err)
		}
		slog.Info("snapshotter: deleted a snapshot", "content", c.Name, "snapshot", handle)
		c.Status.SnapshotHandle = nil
		updated, err := api.UpdateStatus(ctx, c, metav1.UpdateOptions{})
		if err != nil {
			s.recorder.Event(c, corev1.EventTypeWarning, "SnapshotDeleteError", "Failed to clear content status")
			return err
		}
		c = updated
	}
	if !slices.Contains(c.Finalizers, snapshotapi.VolumeSnapshotContentFinalizer) {
		return nil
	}
	c.Finalizers = slices.DeleteFunc(c.Finalizers, func(f string) bool { return f == snapshotapi.VolumeSnapshotContentFinalizer })
	_, err := api.Update(ctx, c, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// create takes a content's snapshot and reports it.
func (s *Snapshotter) create(ctx context.Context, c *snapshotv1.VolumeSnapshotContent) error {
	api := s.cfg.Snapshots.SnapshotV1().VolumeSnapshotContents()
	pvName := *c.Spec.Source.VolumeHandle
	if !metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) {
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, snapshotapi.AnnBeingCreated, "yes")
		updated, err := api.Update(ctx, c, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		c = updated
	}
	start := s.clock.Now()
	var last time.Time
	progress := func(done, total int64) {
		if now := s.clock.Now(); now.Sub(last) >= 10*time.Second {
			last = now
			slog.Info("snapshotter: copying", "content", c.Name, "volume", pvName, "done", done, "total", total)
		}
	}
	size, err := s.cfg.Backing.Snapshot(ctx, pvName, c.Name, progress)
	if err != nil {
		// Not being created any more: a deletion may proceed.
		s.clearBeingCreated(ctx, c.Name)
		s.errorStatus(ctx, c.Name, "SnapshotCreationFailed", fmt.Sprintf("Failed to create snapshot: %v", err))
		return fmt.Errorf("snapshotting volume %s for VolumeSnapshotContent %s: %w", pvName, c.Name, err)
	}
	// A restore needs a volume as large as the source.
	if pv, err := s.pvLister.Get(pvName); err == nil {
		if q, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok && q.Value() > size {
			size = q.Value()
		}
	}
	created := start.UnixNano()
	handle, ready := c.Name, true
	status := c.Status
	if status == nil {
		status = &snapshotv1.VolumeSnapshotContentStatus{}
	}
	status.SnapshotHandle, status.ReadyToUse, status.RestoreSize, status.CreationTime, status.Error = &handle, &ready, &size, &created, nil
	c.Status = status
	updated, err := api.UpdateStatus(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		// The snapshot exists; the next sync takes it again (Snapshot of
		// an existing ID is the backing's to make idempotent) and retries.
		return fmt.Errorf("reporting snapshot of VolumeSnapshotContent %s: %w", c.Name, err)
	}
	slog.Info("snapshotter: took a snapshot", "content", c.Name, "volume", pvName, "bytes", size)
	return wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 5}, func(ctx context.Context) (bool, error) {
		metav1.SetMetaDataAnnotation(&updated.ObjectMeta, volume.AnnSnapshotNode, s.cfg.NodeName)
		delete(updated.Annotations, snapshotapi.AnnBeingCreated)
		_, err := api.Update(ctx, updated, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := api.Get(ctx, c.Name, metav1.GetOptions{})
			if gerr != nil {
				return false, gerr
			}
			updated = fresh
			return false, nil
		}
		return err == nil, err
	})
}

// clearBeingCreated removes the being-created annotation of a content.
func (s *Snapshotter) clearBeingCreated(ctx context.Context, name string) {
	api := s.cfg.Snapshots.SnapshotV1().VolumeSnapshotContents()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil || !metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) {
			return err
		}
		delete(c.Annotations, snapshotapi.AnnBeingCreated)
		_, err = api.Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		slog.Warn("snapshotter: clearing a content's being-created annotation failed", "content", name, "err", err)
	}
}

// errorStatus records a failure in a content's status (readyToUse false)
// and as an event, unless the same message is there already.
func (s *Snapshotter) errorStatus(ctx context.Context, name, reason, message string) {
	api := s.cfg.Snapshots.SnapshotV1().VolumeSnapshotContents()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status != nil && c.Status.Error != nil && c.Status.Error.Message != nil && *c.Status.Error.Message == message {
			return nil
		}
		s.recorder.Event(c, corev1.EventTypeWarning, reason, message)
		if c.Status == nil {
			c.Status = &snapshotv1.VolumeSnapshotContentStatus{}
		}
		ready := false
		now := metav1.NewTime(s.clock.Now())
		c.Status.ReadyToUse = &ready
		c.Status.Error = &snapshotv1.VolumeSnapshotError{Time: &now, Message: &message}
		_, err = api.UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		slog.Warn("snapshotter: recording an error in a content's status failed", "content", name, "err", err)
	}
}
