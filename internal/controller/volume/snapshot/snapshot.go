// Package snapshot is Havre's snapshot-controller: the common controller of
// upstream's external-snapshotter (pkg/common-controller) for the
// snapshot.storage.k8s.io/v1 API. It binds VolumeSnapshots to
// VolumeSnapshotContents: for a snapshot of a claim it creates the content
// `snapcontent-<snapshot uid>` (driver and deletion policy from the
// snapshot's class, or the driver's default class), checks the binding of
// pre-provisioned contents, copies the contents' status to the snapshots,
// keeps the protection finalizers (snapshot, content, source claim) and
// deletes contents of policy Delete with their snapshots.
//
// It never takes or deletes a snapshot's data: the snapshotter of the
// node holding the volume (internal/volume/snapshotter) does, from the
// content. Havre's local volumes are not CSI volumes: a content's
// source.volumeHandle is the PersistentVolume's name and its driver
// volume.Provisioner.
package snapshot

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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/snapshotapi"
)

// Name is the controller's name, as upstream's deployment calls it.
const Name = "snapshot-controller"

// Scheme knows the built-in kinds and the snapshot kinds, for events about
// snapshots and contents.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := snapshotscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Controller is the snapshot-controller.
type Controller struct {
	client    kubernetes.Interface
	snapshots snapshotclient.Interface

	snapshotLister snapshotlisters.VolumeSnapshotLister
	contentLister  snapshotlisters.VolumeSnapshotContentLister
	classLister    snapshotlisters.VolumeSnapshotClassLister
	claimLister    corelisters.PersistentVolumeClaimLister
	synced         []cache.InformerSynced

	snapshotQueue workqueue.TypedRateLimitingInterface[string]
	contentQueue  workqueue.TypedRateLimitingInterface[string]

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	clock       clock.Clock
}

// New builds the controller on the shared informers (claims) and the
// snapshot informers; it registers its informers, and the caller starts
// both factories. recorder nil records to the API server.
func New(client kubernetes.Interface, snapshots snapshotclient.Interface, f informers.SharedInformerFactory,
	sf snapshotinformers.SharedInformerFactory, recorder record.EventRecorder, clk clock.Clock) (*Controller, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	c := &Controller{
		client:    client,
		snapshots: snapshots,
		snapshotQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshot"}),
		contentQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshotcontent"}),
		recorder: recorder,
		clock:    clk,
	}
	if recorder == nil {
		c.broadcaster = record.NewBroadcaster()
		c.recorder = c.broadcaster.NewRecorder(Scheme, corev1.EventSource{Component: Name})
	}
	snapInf := sf.Snapshot().V1().VolumeSnapshots()
	contentInf := sf.Snapshot().V1().VolumeSnapshotContents()
	classInf := sf.Snapshot().V1().VolumeSnapshotClasses()
	claimInf := f.Core().V1().PersistentVolumeClaims()
	c.snapshotLister, c.contentLister = snapInf.Lister(), contentInf.Lister()
	c.classLister, c.claimLister = classInf.Lister(), claimInf.Lister()
	c.synced = []cache.InformerSynced{snapInf.Informer().HasSynced, contentInf.Informer().HasSynced,
		classInf.Informer().HasSynced, claimInf.Informer().HasSynced}

	if _, err := snapInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueSnapshot,
		UpdateFunc: func(_, obj any) { c.enqueueSnapshot(obj) },
		DeleteFunc: c.snapshotDeleted,
	}); err != nil {
		return nil, err
	}
	if _, err := contentInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueContent,
		UpdateFunc: func(_, obj any) { c.enqueueContent(obj) },
		DeleteFunc: c.contentDeleted,
	}); err != nil {
		return nil, err
	}
	// A claim that becomes bound, or a restore from a snapshot that is
	// no longer pending, lets snapshots of its namespace proceed.
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimChanged,
		UpdateFunc: func(_, obj any) { c.claimChanged(obj) },
		DeleteFunc: c.claimChanged,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs snapshots and contents until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	if c.broadcaster != nil {
		c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcaster.Shutdown()
	}
	contentWorker := controller.Worker(c.contentQueue, c.SyncContent,
		"syncing a VolumeSnapshotContent failed; retrying", "content")
	defer c.contentQueue.ShutDown()
	controller.RunWorkers(ctx, c.snapshotQueue, c.synced, workers, c.SyncSnapshot,
		"syncing a VolumeSnapshot failed; retrying", "snapshot",
		controller.AfterSync(func(ctx context.Context) {
			for range workers {
				go wait.UntilWithContext(ctx, contentWorker, time.Second)
			}
			go func() {
				<-ctx.Done()
				c.contentQueue.ShutDown()
			}()
		}))
}

func (c *Controller) enqueueSnapshot(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.snapshotQueue.Add(key)
	}
}

func (c *Controller) enqueueContent(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.contentQueue.Add(key)
	}
}

// snapshotDeleted syncs the content of a snapshot that is gone.
func (c *Controller) snapshotDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*snapshotv1.VolumeSnapshot)
	if !ok {
		return
	}
	if s.Status != nil && s.Status.BoundVolumeSnapshotContentName != nil && *s.Status.BoundVolumeSnapshotContentName != "" {
		c.contentQueue.Add(*s.Status.BoundVolumeSnapshotContentName)
	}
}

// contentDeleted syncs the snapshot a deleted content was bound to (its
// bound finalizer may now go).
func (c *Controller) contentDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	content, ok := obj.(*snapshotv1.VolumeSnapshotContent)
	if !ok {
		return
	}
	ref := content.Spec.VolumeSnapshotRef
	if ref.Name != "" {
		c.snapshotQueue.Add(ref.Namespace + "/" + ref.Name)
	}
}

// claimChanged syncs the snapshots of a claim's namespace that name it as
// their source or (restores) that it names as its data source.
func (c *Controller) claimChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	snaps, err := c.snapshotLister.VolumeSnapshots(claim.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range snaps {
		src := s.Spec.Source.PersistentVolumeClaimName
		if (src != nil && *src == claim.Name) || isRestoreSource(claim, s) {
			c.snapshotQueue.Add(s.Namespace + "/" + s.Name)
		}
	}
}

func isRestoreSource(claim *corev1.PersistentVolumeClaim, s *snapshotv1.VolumeSnapshot) bool {
	for _, ds := range []*corev1.TypedLocalObjectReference{claim.Spec.DataSource, typedRef(claim.Spec.DataSourceRef)} {
		if ds != nil && ds.Kind == "VolumeSnapshot" && ds.APIGroup != nil && *ds.APIGroup == snapshotv1.GroupName && ds.Name == s.Name {
			return true
		}
	}
	return false
}

func typedRef(r *corev1.TypedObjectReference) *corev1.TypedLocalObjectReference {
	if r == nil || (r.Namespace != nil && *r.Namespace != "") {
		return nil
	}
	return &corev1.TypedLocalObjectReference{APIGroup: r.APIGroup, Kind: r.Kind, Name: r.Name}
}

// ContentName is the name of the content of a dynamic snapshot.
func ContentName(s *snapshotv1.VolumeSnapshot) string { return "snapcontent-" + string(s.UID) }

func snapshotKey(s *snapshotv1.VolumeSnapshot) string { return s.Namespace + "/" + s.Name }

// SyncSnapshot brings one VolumeSnapshot (namespace/name) closer to bound
// and ready, or through its deletion.
func (c *Controller) SyncSnapshot(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	s, err := c.snapshotLister.VolumeSnapshots(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	s = s.DeepCopy()
	s, err = c.checkClass(ctx, s)
	if err != nil && (s.DeletionTimestamp == nil || !apierrors.IsNotFound(err)) {
		return err
	}
	return c.syncSnapshot(ctx, s)
}

// checkClass checks the snapshot's class exists, or gives a dynamic
// snapshot without one the default class of its volume's driver.
func (c *Controller) checkClass(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*snapshotv1.VolumeSnapshot, error) {
	if s.Spec.VolumeSnapshotClassName != nil {
		if _, err := c.classLister.Get(*s.Spec.VolumeSnapshotClassName); err != nil {
			c.errorStatus(ctx, s, false, corev1.EventTypeWarning, "GetSnapshotClassFailed",
				fmt.Sprintf("Failed to get snapshot class with error %v", err))
			return s, err
		}
		return s, nil
	}
	if s.Spec.Source.VolumeSnapshotContentName != nil || s.DeletionTimestamp != nil {
		return s, nil
	}
	updated, err := c.setDefaultClass(ctx, s)
	if err != nil {
		c.errorStatus(ctx, s, false, corev1.EventTypeWarning, "SetDefaultSnapshotClassFailed",
			fmt.Sprintf("Failed to set default snapshot class with error %v", err))
		return s, err
	}
	return updated, nil
}

func (c *Controller) setDefaultClass(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*snapshotv1.VolumeSnapshot, error) {
	pv, err := c.sourceVolume(ctx, s)
	if err != nil {
		return nil, err
	}
	driver, err := volumeDriver(pv)
	if err != nil {
		return nil, err
	}
	classes, err := c.classLister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var defaults []*snapshotv1.VolumeSnapshotClass
	for _, class := range classes {
		if class.Annotations[snapshotapi.AnnIsDefaultClass] == "true" && class.Driver == driver {
			defaults = append(defaults, class)
		}
	}
	switch len(defaults) {
	case 0:
		return nil, fmt.Errorf("cannot find default snapshot class")
	case 1:
	default:
		return nil, fmt.Errorf("%d default snapshot classes were found", len(defaults))
	}
	s.Spec.VolumeSnapshotClassName = &defaults[0].Name
	return c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
}

// volumeDriver is the snapshot driver of a volume: a CSI volume's driver,
// or Provisioner for Havre's local volumes.
func volumeDriver(pv *corev1.PersistentVolume) (string, error) {
	switch {
	case pv.Spec.CSI != nil:
		return pv.Spec.CSI.Driver, nil
	case pv.Annotations[volume.AnnProvisionedBy] == volume.Provisioner, pv.Spec.Local != nil:
		return volume.Provisioner, nil
	}
	return "", fmt.Errorf("snapshotting volume %s is not supported: it is neither a CSI volume nor a %s local volume", pv.Name, volume.Provisioner)
}

func (c *Controller) syncSnapshot(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	if err := c.checkAndRemoveClaimFinalizer(ctx, s, false); err != nil {
		slog.Warn("snapshot-controller: removing the source claim's finalizer failed", "snapshot", snapshotKey(s), "err", err)
		c.recorder.Event(s, corev1.EventTypeWarning, "ErrorPVCFinalizer", "Error check and remove PVC Finalizer for VolumeSnapshot")
	}
	if s.DeletionTimestamp != nil {
		return c.processDeletion(ctx, s)
	}
	src := s.Spec.Source
	if (src.PersistentVolumeClaimName == nil) == (src.VolumeSnapshotContentName == nil) {
		//lint:ignore ST1005 upstream's message
		err := errors.New("Exactly one of PersistentVolumeClaimName and VolumeSnapshotContentName should be specified")
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotValidationError", err.Error())
		return err
	}
	if err := c.addSnapshotFinalizers(ctx, s); err != nil {
		c.recorder.Event(s, corev1.EventTypeWarning, "SnapshotFinalizerError", fmt.Sprintf("Failed to check and update snapshot: %s", err))
		return err
	}
	if !isReady(s) || !isBound(s) {
		return c.syncUnready(ctx, s)
	}
	return c.syncReady(ctx, s)
}

func isReady(s *snapshotv1.VolumeSnapshot) bool {
	return s.Status != nil && s.Status.ReadyToUse != nil && *s.Status.ReadyToUse
}

func isBound(s *snapshotv1.VolumeSnapshot) bool {
	return s.Status != nil && s.Status.BoundVolumeSnapshotContentName != nil && *s.Status.BoundVolumeSnapshotContentName != ""
}

func refersTo(content *snapshotv1.VolumeSnapshotContent, s *snapshotv1.VolumeSnapshot) bool {
	ref := content.Spec.VolumeSnapshotRef
	return ref.Name == s.Name && ref.Namespace == s.Namespace && ref.UID == s.UID
}

func (c *Controller) content(name string) (*snapshotv1.VolumeSnapshotContent, error) {
	content, err := c.contentLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return content, err
}

// syncReady checks a bound, ready snapshot's binding still holds.
func (c *Controller) syncReady(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	content, err := c.content(*s.Status.BoundVolumeSnapshotContentName)
	if err != nil {
		return err
	}
	if content == nil {
		return c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMissing", "VolumeSnapshotContent is missing")
	}
	if !refersTo(content, s) {
		return c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotMisbound", "VolumeSnapshotContent is not bound to the VolumeSnapshot correctly")
	}
	_, err = c.updateStatus(ctx, s, content)
	return err
}

// syncUnready binds a snapshot to its content (creating it for a dynamic
// snapshot) and copies the content's status.
func (c *Controller) syncUnready(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	key := snapshotKey(s)
	if s.Spec.Source.VolumeSnapshotContentName != nil {
		content, err := c.preProvisionedContent(ctx, s)
		if err != nil {
			return err
		}
		if content == nil {
			c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMissing", "VolumeSnapshotContent is missing")
			return fmt.Errorf("snapshot %s requests an non-existing content %s", key, *s.Spec.Source.VolumeSnapshotContentName)
		}
		content, err = c.bindContent(ctx, s, content)
		if err != nil {
			c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotBindFailed", fmt.Sprintf("Snapshot failed to bind VolumeSnapshotContent, %v", err))
			return fmt.Errorf("snapshot %s is bound, but VolumeSnapshotContent %s is not bound to the VolumeSnapshot correctly, %v", key, *s.Spec.Source.VolumeSnapshotContentName, err)
		}
		if _, err := c.updateStatus(ctx, s, content); err != nil {
			c.errorStatus(ctx, s, false, corev1.EventTypeWarning, "SnapshotStatusUpdateFailed", fmt.Sprintf("Snapshot status update failed, %v", err))
			return err
		}
		return nil
	}
	content, err := c.dynamicContent(ctx, s)
	if err != nil {
		return err
	}
	if content != nil {
		if content.Spec.Source.SnapshotHandle != nil {
			c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotHandleSet", fmt.Sprintf("Snapshot handle should not be set in content %s for dynamic provisioning", key))
			return fmt.Errorf("snapshotHandle should not be set in the content for dynamic provisioning for snapshot %s", key)
		}
		if _, err := c.updateStatus(ctx, s, content); err != nil {
			c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotStatusUpdateFailed", fmt.Sprintf("Snapshot status update failed, %v", err))
			return err
		}
		return nil
	}
	content, err = c.createContent(ctx, s)
	if err != nil {
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentCreationFailed", fmt.Sprintf("Failed to create snapshot content with error %v", err))
		return err
	}
	if _, err := c.updateStatus(ctx, s, content); err != nil {
		c.errorStatus(ctx, s, false, corev1.EventTypeWarning, "SnapshotStatusUpdateFailed", fmt.Sprintf("Snapshot status update failed, %v", err))
		return err
	}
	return nil
}

// preProvisionedContent is the content a pre-provisioned snapshot names,
// nil if it does not exist; an error if it is a dynamic one or refers to
// another snapshot.
func (c *Controller) preProvisionedContent(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*snapshotv1.VolumeSnapshotContent, error) {
	name := *s.Spec.Source.VolumeSnapshotContentName
	if name == "" {
		return nil, fmt.Errorf("empty VolumeSnapshotContentName for snapshot %s", snapshotKey(s))
	}
	content, err := c.content(name)
	if err != nil || content == nil {
		return nil, err
	}
	if content.Spec.Source.SnapshotHandle == nil {
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMismatch", "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one")
		return nil, fmt.Errorf("snapshot %s expects a pre-provisioned VolumeSnapshotContent %s but gets a dynamically provisioned one", snapshotKey(s), name)
	}
	ref := content.Spec.VolumeSnapshotRef
	if ref.Name != s.Name || ref.Namespace != s.Namespace || (ref.UID != "" && ref.UID != s.UID) {
		msg := fmt.Sprintf("VolumeSnapshotContent [%s] is bound to a different snapshot", name)
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMisbound", msg)
		return nil, errors.New(msg)
	}
	return content, nil
}

// dynamicContent is the content of a dynamic snapshot, nil if not created
// yet.
func (c *Controller) dynamicContent(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*snapshotv1.VolumeSnapshotContent, error) {
	name := ContentName(s)
	content, err := c.content(name)
	if err != nil || content == nil {
		return nil, err
	}
	if content.Spec.Source.VolumeHandle == nil {
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMismatch", "VolumeSnapshotContent "+name+" is pre-provisioned while expecting a dynamically provisioned one")
		return nil, fmt.Errorf("snapshot %s expects a dynamically provisioned VolumeSnapshotContent %s but gets a pre-provisioned one", snapshotKey(s), name)
	}
	if !refersTo(content, s) {
		msg := fmt.Sprintf("VolumeSnapshotContent [%s] is bound to a different snapshot", name)
		c.errorStatus(ctx, s, true, corev1.EventTypeWarning, "SnapshotContentMisbound", msg)
		return nil, errors.New(msg)
	}
	return content, nil
}

// bindContent sets the snapshot's UID (and class) in a pre-provisioned
// content's volumeSnapshotRef.
func (c *Controller) bindContent(ctx context.Context, s *snapshotv1.VolumeSnapshot, content *snapshotv1.VolumeSnapshotContent) (*snapshotv1.VolumeSnapshotContent, error) {
	ref := content.Spec.VolumeSnapshotRef
	if ref.Name != s.Name || (ref.UID != "" && ref.UID != s.UID) {
		//lint:ignore ST1005 upstream's message
		return nil, fmt.Errorf("Could not bind snapshot %s and content %s, the VolumeSnapshotRef does not match", s.Name, content.Name)
	}
	if ref.UID != "" && content.Spec.VolumeSnapshotClassName != nil {
		return content, nil
	}
	updated := content.DeepCopy()
	updated.Spec.VolumeSnapshotRef.UID = s.UID
	if s.Spec.VolumeSnapshotClassName != nil {
		updated.Spec.VolumeSnapshotClassName = s.Spec.VolumeSnapshotClassName
	}
	return c.snapshots.SnapshotV1().VolumeSnapshotContents().Update(ctx, updated, metav1.UpdateOptions{})
}

// createContent creates the content of a dynamic snapshot, after
// protecting its source claim.
func (c *Controller) createContent(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*snapshotv1.VolumeSnapshotContent, error) {
	if err := c.ensureClaimFinalizer(ctx, s); err != nil {
		return nil, err
	}
	if s.Spec.VolumeSnapshotClassName == nil {
		return nil, fmt.Errorf("failed to get input parameters to create snapshot %s: %q", s.Name,
			fmt.Sprintf("failed to take snapshot %s without a snapshot class", s.Name))
	}
	class, err := c.classLister.Get(*s.Spec.VolumeSnapshotClassName)
	if err != nil {
		return nil, fmt.Errorf("failed to get input parameters to create snapshot %s: %q", s.Name, err)
	}
	pv, err := c.sourceVolume(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("failed to get input parameters to create snapshot %s: %q", s.Name, err)
	}
	handle := pv.Name
	if pv.Spec.CSI != nil {
		handle = pv.Spec.CSI.VolumeHandle
	} else if _, err := volumeDriver(pv); err != nil {
		return nil, err
	}
	className := class.Name
	content := &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: ContentName(s)},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: corev1.ObjectReference{
				Kind: "VolumeSnapshot", APIVersion: snapshotv1.SchemeGroupVersion.String(),
				Namespace: s.Namespace, Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion,
			},
			Source:                  snapshotv1.VolumeSnapshotContentSource{VolumeHandle: &handle},
			VolumeSnapshotClassName: &className,
			DeletionPolicy:          class.DeletionPolicy,
			Driver:                  class.Driver,
			SourceVolumeMode:        pv.Spec.VolumeMode,
		},
	}
	created, err := c.snapshots.SnapshotV1().VolumeSnapshotContents().Create(ctx, content, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = content, nil
	}
	if err != nil {
		msg := fmt.Sprintf("Error creating volume snapshot content object for snapshot %s: %v.", snapshotKey(s), err)
		c.recorder.Event(s, corev1.EventTypeWarning, "CreateSnapshotContentFailed", msg)
		return nil, updateError(snapshotKey(s), err.Error())
	}
	c.recorder.Event(s, corev1.EventTypeNormal, "CreatingSnapshot",
		fmt.Sprintf("Waiting for a snapshot %s to be created by the CSI driver.", snapshotKey(s)))
	return created, nil
}

// sourceVolume is the volume bound to a dynamic snapshot's claim.
func (c *Controller) sourceVolume(ctx context.Context, s *snapshotv1.VolumeSnapshot) (*corev1.PersistentVolume, error) {
	claim, err := c.sourceClaim(s)
	if err != nil {
		return nil, err
	}
	if claim.Status.Phase != corev1.ClaimBound {
		return nil, fmt.Errorf("the PVC %s is not yet bound to a PV, will not attempt to take a snapshot", claim.Name)
	}
	pv, err := c.client.CoreV1().PersistentVolumes().Get(ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to retrieve PV %s from the API server: %q", claim.Spec.VolumeName, err)
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Name != claim.Name || ref.Namespace != claim.Namespace || (ref.UID != "" && ref.UID != claim.UID) {
		return nil, fmt.Errorf("claim in dataSource not bound or invalid")
	}
	return pv, nil
}

func (c *Controller) sourceClaim(s *snapshotv1.VolumeSnapshot) (*corev1.PersistentVolumeClaim, error) {
	if s.Spec.Source.PersistentVolumeClaimName == nil {
		return nil, fmt.Errorf("the snapshot source PVC name is not specified")
	}
	name := *s.Spec.Source.PersistentVolumeClaimName
	if name == "" {
		return nil, fmt.Errorf("the PVC name is not specified in snapshot %s", snapshotKey(s))
	}
	claim, err := c.claimLister.PersistentVolumeClaims(s.Namespace).Get(name)
	if err != nil {
		return nil, fmt.Errorf("failed to retrieve PVC %s from the lister: %q", name, err)
	}
	return claim, nil
}

// updateError is upstream's controllerUpdateError.
func updateError(name, message string) error {
	return fmt.Errorf("snapshot controller failed to update %s on API server: %s", name, message)
}

// ensureClaimFinalizer protects a dynamic snapshot's claim while the
// snapshot is taken.
func (c *Controller) ensureClaimFinalizer(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	claim, err := c.sourceClaim(s)
	if err != nil {
		return updateError(s.Name, "cannot get claim from snapshot")
	}
	if slices.Contains(claim.Finalizers, snapshotapi.PVCFinalizer) {
		return nil
	}
	if claim.DeletionTimestamp != nil {
		return updateError(claim.Name, "cannot add finalizer on claim because it is being deleted")
	}
	claim = claim.DeepCopy()
	claim.Finalizers = append(claim.Finalizers, snapshotapi.PVCFinalizer)
	if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return updateError(claim.Name, err.Error())
	}
	slog.Info("snapshot-controller: protecting a claim while it is snapshotted", "claim", claim.Namespace+"/"+claim.Name, "snapshot", snapshotKey(s))
	return nil
}

// checkAndRemoveClaimFinalizer lets a snapshot's source claim go once no
// snapshot of it (other than s, when skipSelf) is still being taken.
func (c *Controller) checkAndRemoveClaimFinalizer(ctx context.Context, s *snapshotv1.VolumeSnapshot, skipSelf bool) error {
	if s.Spec.Source.PersistentVolumeClaimName == nil {
		return nil
	}
	claim, err := c.sourceClaim(s)
	if err != nil || !slices.Contains(claim.Finalizers, snapshotapi.PVCFinalizer) {
		return nil
	}
	snaps, err := c.snapshotLister.VolumeSnapshots(s.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	for _, other := range snaps {
		if skipSelf && other.Name == s.Name {
			continue
		}
		src := other.Spec.Source.PersistentVolumeClaimName
		if src != nil && *src == claim.Name && !isReady(other) {
			return nil // still in use
		}
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fresh.Finalizers = slices.DeleteFunc(fresh.Finalizers, func(f string) bool { return f == snapshotapi.PVCFinalizer })
		_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, fresh, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return updateError(claim.Name, err.Error())
	}
	return nil
}

// addSnapshotFinalizers adds the as-source finalizer to every live
// snapshot, and the bound finalizer to one bound to a content of policy
// Delete.
func (c *Controller) addSnapshotFinalizers(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	var content *snapshotv1.VolumeSnapshotContent
	var err error
	if s.Spec.Source.VolumeSnapshotContentName != nil {
		content, err = c.preProvisionedContent(ctx, s)
	} else {
		content, err = c.dynamicContent(ctx, s)
	}
	if err != nil {
		return err
	}
	addSource := s.DeletionTimestamp == nil && !slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer)
	addBound := content != nil && s.DeletionTimestamp == nil && !slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer) &&
		isBound(s) && content.Spec.DeletionPolicy == snapshotv1.VolumeSnapshotContentDelete
	if !addSource && !addBound {
		return nil
	}
	if addSource {
		s.Finalizers = append(s.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer)
	}
	if addBound {
		s.Finalizers = append(s.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer)
	}
	updated, err := c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		return updateError(snapshotKey(s), err.Error())
	}
	*s = *updated
	return nil
}

// processDeletion deletes a deleted snapshot's content when its policy is
// Delete, and removes the snapshot's finalizers once nothing needs them.
func (c *Controller) processDeletion(ctx context.Context, s *snapshotv1.VolumeSnapshot) error {
	var contentName string
	if isBound(s) {
		contentName = *s.Status.BoundVolumeSnapshotContentName
	}
	if contentName == "" && s.Spec.Source.PersistentVolumeClaimName != nil {
		contentName = ContentName(s)
	}
	var content *snapshotv1.VolumeSnapshotContent
	if contentName != "" {
		var err error
		if content, err = c.content(contentName); err != nil {
			return err
		}
	}
	deleteContent := false
	if content != nil && refersTo(content, s) {
		deleteContent = content.Spec.DeletionPolicy == snapshotv1.VolumeSnapshotContentDelete
	} else {
		content = nil
	}
	if !slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer) &&
		!slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer) {
		return nil
	}
	if content != nil && c.restoring(s) {
		c.recorder.Event(s, corev1.EventTypeWarning, "SnapshotDeletePending", "Snapshot is being used to restore a PVC")
		return fmt.Errorf("snapshot %s is in use (being used to restore a PVC), will retry deletion", snapshotKey(s))
	}
	if content != nil && !metav1.HasAnnotation(content.ObjectMeta, snapshotapi.AnnBeingDeleted) {
		updated := content.DeepCopy()
		metav1.SetMetaDataAnnotation(&updated.ObjectMeta, snapshotapi.AnnBeingDeleted, "yes")
		var err error
		if content, err = c.snapshots.SnapshotV1().VolumeSnapshotContents().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return updateError(contentName, err.Error())
		}
	}
	if content != nil && deleteContent {
		err := c.snapshots.SnapshotV1().VolumeSnapshotContents().Delete(ctx, content.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.recorder.Event(s, corev1.EventTypeWarning, "SnapshotContentObjectDeleteError", "Failed to delete snapshot content API object")
			return fmt.Errorf("failed to delete VolumeSnapshotContent %s from API server: %q", content.Name, err)
		}
	}
	// The bound finalizer stays until the content is gone.
	removeBound := content == nil || !deleteContent
	if err := c.checkAndRemoveClaimFinalizer(ctx, s, true); err != nil {
		c.recorder.Event(s, corev1.EventTypeWarning, "ErrorPVCFinalizer", "Error check and remove PVC Finalizer for VolumeSnapshot")
		return updateError(s.Name, err.Error())
	}
	before := len(s.Finalizers)
	s.Finalizers = slices.DeleteFunc(s.Finalizers, func(f string) bool {
		return f == snapshotapi.VolumeSnapshotAsSourceFinalizer || (removeBound && f == snapshotapi.VolumeSnapshotBoundFinalizer)
	})
	if len(s.Finalizers) == before {
		return nil
	}
	if _, err := c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return updateError(s.Name, err.Error())
	}
	return nil
}

// restoring reports whether a pending claim of the snapshot's namespace
// is being restored from it.
func (c *Controller) restoring(s *snapshotv1.VolumeSnapshot) bool {
	claims, err := c.claimLister.PersistentVolumeClaims(s.Namespace).List(labels.Everything())
	if err != nil {
		return false
	}
	for _, claim := range claims {
		if claim.Status.Phase == corev1.ClaimPending && isRestoreSource(claim, s) {
			return true
		}
	}
	return false
}

// updateStatus copies a content's status to its snapshot's.
func (c *Controller) updateStatus(ctx context.Context, s *snapshotv1.VolumeSnapshot, content *snapshotv1.VolumeSnapshotContent) (*snapshotv1.VolumeSnapshot, error) {
	name := content.Name
	var createdAt *metav1.Time
	var size *int64
	ready := false
	var snapErr *snapshotv1.VolumeSnapshotError
	if st := content.Status; st != nil {
		if st.CreationTime != nil {
			createdAt = &metav1.Time{Time: metav1.Unix(0, *st.CreationTime).Time}
		}
		size = st.RestoreSize
		if st.ReadyToUse != nil {
			ready = *st.ReadyToUse
		}
		if st.Error != nil {
			snapErr = st.Error.DeepCopy()
		}
	}
	cur, err := c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("error get snapshot %s from api server: %v", snapshotKey(s), err)
	}
	status := &snapshotv1.VolumeSnapshotStatus{}
	if cur.Status != nil {
		status = cur.Status.DeepCopy()
	}
	changed := cur.Status == nil
	if status.BoundVolumeSnapshotContentName == nil {
		status.BoundVolumeSnapshotContentName, changed = &name, true
	}
	if status.CreationTime == nil && createdAt != nil {
		status.CreationTime, changed = createdAt, true
	}
	if status.ReadyToUse == nil || *status.ReadyToUse != ready {
		status.ReadyToUse, changed = &ready, true
		if ready {
			status.Error = nil
		}
	}
	if size != nil && (status.RestoreSize == nil || (status.RestoreSize.IsZero() && *size > 0)) {
		status.RestoreSize, changed = resource.NewQuantity(*size, resource.BinarySI), true
	}
	if (status.Error == nil) != (snapErr == nil) || (snapErr != nil && !errorEqual(status.Error, snapErr)) {
		status.Error, changed = snapErr, true
	}
	if !changed {
		return cur, nil
	}
	next := cur.DeepCopy()
	next.Status = status
	updated, err := c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, updateError(snapshotKey(s), err.Error())
	}
	if (cur.Status == nil || cur.Status.CreationTime == nil) && status.CreationTime != nil {
		c.recorder.Event(updated, corev1.EventTypeNormal, "SnapshotCreated",
			fmt.Sprintf("Snapshot %s was successfully created by the CSI driver.", snapshotKey(s)))
	}
	if !isReady(cur) && ready {
		c.recorder.Event(updated, corev1.EventTypeNormal, "SnapshotReady",
			fmt.Sprintf("Snapshot %s is ready to use.", snapshotKey(s)))
	}
	return updated, nil
}

func errorEqual(a, b *snapshotv1.VolumeSnapshotError) bool {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return str(a.Message) == str(b.Message) && a.Time.Equal(b.Time)
}

// errorStatus records an error in a snapshot's status (readyToUse false
// when setNotReady) and as an event; an error already recorded with the
// same message is left as it is.
func (c *Controller) errorStatus(ctx context.Context, s *snapshotv1.VolumeSnapshot, setNotReady bool, eventType, reason, message string) error {
	if s.Status != nil && s.Status.Error != nil && s.Status.Error.Message != nil && *s.Status.Error.Message == message {
		return nil
	}
	next := s.DeepCopy()
	if next.Status == nil {
		next.Status = &snapshotv1.VolumeSnapshotStatus{}
	}
	now := metav1.NewTime(c.clock.Now())
	next.Status.Error = &snapshotv1.VolumeSnapshotError{Time: &now, Message: &message}
	if setNotReady {
		f := false
		next.Status.ReadyToUse = &f
	}
	updated, err := c.snapshots.SnapshotV1().VolumeSnapshots(s.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	c.recorder.Event(s, eventType, reason, message)
	if err != nil {
		return err
	}
	*s = *updated
	return nil
}

// SyncContent keeps a bound content's finalizer, wakes its snapshot when
// the content's status moved, and marks it when its snapshot is being
// deleted.
func (c *Controller) SyncContent(ctx context.Context, name string) error {
	content, err := c.content(name)
	if err != nil || content == nil {
		return err
	}
	src := content.Spec.Source
	if (src.VolumeHandle == nil) == (src.SnapshotHandle == nil) {
		//lint:ignore ST1005 upstream's message
		err := errors.New("Exactly one of VolumeHandle and SnapshotHandle should be specified")
		c.recorder.Event(content, corev1.EventTypeWarning, "ContentValidationError", err.Error())
		return err
	}
	ref := content.Spec.VolumeSnapshotRef
	if ref.UID == "" {
		return nil // pre-bound: syncSnapshot binds it
	}
	if content.DeletionTimestamp == nil && !slices.Contains(content.Finalizers, snapshotapi.VolumeSnapshotContentFinalizer) {
		updated := content.DeepCopy()
		updated.Finalizers = append(updated.Finalizers, snapshotapi.VolumeSnapshotContentFinalizer)
		if _, err := c.snapshots.SnapshotV1().VolumeSnapshotContents().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return updateError(content.Name, err.Error())
		}
		return nil
	}
	s, err := c.snapshotLister.VolumeSnapshots(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		s, err = nil, nil
	}
	if err != nil {
		return err
	}
	if s != nil && s.UID != ref.UID {
		s = nil // the snapshot it was bound to is gone; another took its name
	}
	if s != nil && statusBehind(s, content) {
		c.snapshotQueue.Add(ref.Namespace + "/" + ref.Name)
	}
	// A content whose snapshot is gone is left alone (it may be a copy
	// from another cluster: deleting it would lose data).
	if s != nil && s.DeletionTimestamp != nil && (slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer) ||
		slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer)) &&
		!metav1.HasAnnotation(content.ObjectMeta, snapshotapi.AnnBeingDeleted) {
		updated := content.DeepCopy()
		metav1.SetMetaDataAnnotation(&updated.ObjectMeta, snapshotapi.AnnBeingDeleted, "yes")
		if _, err := c.snapshots.SnapshotV1().VolumeSnapshotContents().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return updateError(content.Name, err.Error())
		}
	}
	return nil
}

// statusBehind reports whether a snapshot's status lags its content's.
func statusBehind(s *snapshotv1.VolumeSnapshot, content *snapshotv1.VolumeSnapshotContent) bool {
	cs := content.Status
	if cs == nil {
		return false
	}
	ss := s.Status
	switch {
	case ss == nil, ss.BoundVolumeSnapshotContentName == nil:
		return true
	case ss.CreationTime == nil && cs.CreationTime != nil:
		return true
	case ss.ReadyToUse == nil && cs.ReadyToUse != nil:
		return true
	case ss.ReadyToUse != nil && cs.ReadyToUse != nil && *ss.ReadyToUse != *cs.ReadyToUse:
		return true
	case ss.RestoreSize == nil && cs.RestoreSize != nil:
		return true
	case ss.RestoreSize != nil && ss.RestoreSize.IsZero() && cs.RestoreSize != nil && *cs.RestoreSize > 0:
		return true
	case (ss.Error == nil) != (cs.Error == nil):
		return true
	}
	return false
}
