package snapshot

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	snapshotinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/snapshotapi"
)

var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// env is one sync of the controller over fake clients seeded with objects.
type env struct {
	kube   *kubefake.Clientset
	snaps  *snapshotfake.Clientset
	c      *Controller
	events *record.FakeRecorder
}

func newEnv(t *testing.T, kubeObjs, snapObjs []runtime.Object) *env {
	t.Helper()
	e := &env{
		kube: kubefake.NewClientset(kubeObjs...),
		//lint:ignore SA1019 the module generates no apply configurations: it has no NewClientset
		snaps:  snapshotfake.NewSimpleClientset(snapObjs...),
		events: record.NewFakeRecorder(100),
	}
	f := informers.NewSharedInformerFactory(e.kube, 0)
	sf := snapshotinformers.NewSharedInformerFactory(e.snaps, 0)
	c, err := New(e.kube, e.snaps, f, sf, e.events, clocktesting.NewFakeClock(now))
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		f.Shutdown()
		sf.Shutdown()
	})
	f.Start(ctx.Done())
	sf.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		t.Fatal("informers did not sync")
	}
	return e
}

func (e *env) snapshot(t *testing.T, name string) *snapshotv1.VolumeSnapshot {
	t.Helper()
	s, err := e.snaps.SnapshotV1().VolumeSnapshots("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) content(t *testing.T, name string) *snapshotv1.VolumeSnapshotContent {
	t.Helper()
	c, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) claim(t *testing.T, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c, err := e.kube.CoreV1().PersistentVolumeClaims("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// drained returns the recorded events.
func (e *env) drained() []string {
	var out []string
	for {
		select {
		case ev := <-e.events.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	return slices.ContainsFunc(events, func(ev string) bool { return strings.HasPrefix(ev, prefix) })
}

func boundClaim() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns", UID: "claim-uid", Finalizers: []string{volume.PVCProtectionFinalizer}},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
}

func localPV() *corev1.PersistentVolume {
	fs := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1", Annotations: map[string]string{volume.AnnProvisionedBy: volume.Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/havre/volumes/pvc-1"}},
			ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "data", UID: "claim-uid"},
			VolumeMode:             &fs,
		},
	}
}

func dynamicSnapshot(class *string) *snapshotv1.VolumeSnapshot {
	return &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: "ns", UID: "snap-uid", ResourceVersion: "1"},
		Spec: snapshotv1.VolumeSnapshotSpec{
			Source:                  snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")},
			VolumeSnapshotClassName: class,
		},
	}
}

func class(name string, isDefault bool, policy snapshotv1.DeletionPolicy) *snapshotv1.VolumeSnapshotClass {
	c := &snapshotv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Driver: volume.Provisioner, DeletionPolicy: policy}
	if isDefault {
		c.Annotations = map[string]string{snapshotapi.AnnIsDefaultClass: "true"}
	}
	return c
}

// dynamicContent is the content the controller creates for
// dynamicSnapshot, with the snapshotter's status when ready.
func dynamicContent(policy snapshotv1.DeletionPolicy, ready bool) *snapshotv1.VolumeSnapshotContent {
	c := &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-snap-uid", Finalizers: []string{snapshotapi.VolumeSnapshotContentFinalizer}},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       corev1.ObjectReference{Kind: "VolumeSnapshot", Namespace: "ns", Name: "snap", UID: "snap-uid"},
			Source:                  snapshotv1.VolumeSnapshotContentSource{VolumeHandle: ptr.To("pvc-1")},
			VolumeSnapshotClassName: ptr.To("local"),
			DeletionPolicy:          policy,
			Driver:                  volume.Provisioner,
		},
	}
	if ready {
		c.Status = &snapshotv1.VolumeSnapshotContentStatus{
			SnapshotHandle: ptr.To("snapcontent-snap-uid"), ReadyToUse: ptr.To(true),
			RestoreSize: ptr.To(int64(1 << 30)), CreationTime: ptr.To(now.Add(-time.Minute).UnixNano()),
		}
	}
	return c
}

func TestDynamicSnapshot(t *testing.T) {
	ctx := context.Background()
	// 1. A snapshot without a class of a bound claim: the default class
	// is set, the content created, the claim protected.
	e := newEnv(t, []runtime.Object{boundClaim(), localPV()},
		[]runtime.Object{dynamicSnapshot(nil), class("local", true, snapshotv1.VolumeSnapshotContentDelete), class("other", false, snapshotv1.VolumeSnapshotContentRetain)})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err != nil {
		t.Fatal(err)
	}
	s := e.snapshot(t, "snap")
	if s.Spec.VolumeSnapshotClassName == nil || *s.Spec.VolumeSnapshotClassName != "local" {
		t.Errorf("class %v, want the default local", s.Spec.VolumeSnapshotClassName)
	}
	if !slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer) {
		t.Errorf("finalizers %v, want the as-source one", s.Finalizers)
	}
	if s.Status == nil || s.Status.BoundVolumeSnapshotContentName == nil || *s.Status.BoundVolumeSnapshotContentName != "snapcontent-snap-uid" ||
		s.Status.ReadyToUse == nil || *s.Status.ReadyToUse {
		t.Errorf("status %+v, want bound to snapcontent-snap-uid, not ready", s.Status)
	}
	c := e.content(t, "snapcontent-snap-uid")
	if c == nil {
		t.Fatal("no content created")
	}
	if c.Spec.Driver != volume.Provisioner || c.Spec.DeletionPolicy != snapshotv1.VolumeSnapshotContentDelete ||
		c.Spec.Source.VolumeHandle == nil || *c.Spec.Source.VolumeHandle != "pvc-1" || c.Spec.Source.SnapshotHandle != nil ||
		c.Spec.VolumeSnapshotRef.UID != "snap-uid" || c.Spec.VolumeSnapshotRef.Name != "snap" || c.Spec.VolumeSnapshotRef.Namespace != "ns" ||
		c.Spec.VolumeSnapshotRef.Kind != "VolumeSnapshot" || c.Spec.VolumeSnapshotRef.APIVersion != "snapshot.storage.k8s.io/v1" ||
		ptr.Deref(c.Spec.VolumeSnapshotClassName, "") != "local" || c.Spec.SourceVolumeMode == nil || *c.Spec.SourceVolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("content spec %+v", c.Spec)
	}
	if !slices.Contains(e.claim(t, "data").Finalizers, snapshotapi.PVCFinalizer) {
		t.Errorf("claim finalizers %v, want %s", e.claim(t, "data").Finalizers, snapshotapi.PVCFinalizer)
	}
	if ev := e.drained(); !hasEvent(ev, "Normal CreatingSnapshot Waiting for a snapshot ns/snap to be created") {
		t.Errorf("events %v", ev)
	}

	// 2. The content gets the finalizer.
	c.Finalizers = nil
	e = newEnv(t, []runtime.Object{e.claim(t, "data"), localPV()}, []runtime.Object{s, c, class("local", true, snapshotv1.VolumeSnapshotContentDelete)})
	if err := e.c.SyncContent(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if got := e.content(t, c.Name); !slices.Contains(got.Finalizers, snapshotapi.VolumeSnapshotContentFinalizer) {
		t.Errorf("content finalizers %v", got.Finalizers)
	}

	// 3. The snapshotter made it ready: the status is copied, the bound
	// finalizer added (policy Delete).
	claim := boundClaim()
	claim.Finalizers = append(claim.Finalizers, snapshotapi.PVCFinalizer)
	e = newEnv(t, []runtime.Object{claim, localPV()},
		[]runtime.Object{s, dynamicContent(snapshotv1.VolumeSnapshotContentDelete, true), class("local", true, snapshotv1.VolumeSnapshotContentDelete)})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err != nil {
		t.Fatal(err)
	}
	s = e.snapshot(t, "snap")
	if !isReady(s) || s.Status.RestoreSize == nil || s.Status.RestoreSize.Value() != 1<<30 ||
		s.Status.CreationTime == nil || !s.Status.CreationTime.Time.Equal(now.Add(-time.Minute)) {
		t.Errorf("status %+v, want ready, 1Gi, created a minute ago", s.Status)
	}
	if !slices.Contains(s.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer) {
		t.Errorf("finalizers %v, want the bound one", s.Finalizers)
	}
	ev := e.drained()
	if !hasEvent(ev, "Normal SnapshotCreated Snapshot ns/snap was successfully created") || !hasEvent(ev, "Normal SnapshotReady Snapshot ns/snap is ready to use.") {
		t.Errorf("events %v", ev)
	}

	// 4. Ready: the claim is no longer protected by the snapshot.
	e = newEnv(t, []runtime.Object{claim, localPV()},
		[]runtime.Object{s, dynamicContent(snapshotv1.VolumeSnapshotContentDelete, true), class("local", true, snapshotv1.VolumeSnapshotContentDelete)})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err != nil {
		t.Fatal(err)
	}
	if got := e.claim(t, "data").Finalizers; !slices.Equal(got, []string{volume.PVCProtectionFinalizer}) {
		t.Errorf("claim finalizers %v, want only pvc-protection", got)
	}
}

func TestBadReferences(t *testing.T) {
	unbound := boundClaim()
	unbound.Spec.VolumeName = ""
	unbound.Status.Phase = corev1.ClaimPending
	local := class("local", true, snapshotv1.VolumeSnapshotContentDelete)
	tests := []struct {
		name      string
		kube      []runtime.Object
		snaps     []runtime.Object
		wantEvent string
		wantError string
	}{
		{"missing claim", []runtime.Object{localPV()}, []runtime.Object{dynamicSnapshot(ptr.To("local")), local},
			"Warning SnapshotContentCreationFailed", "cannot get claim from snapshot"},
		{"missing claim, no class", []runtime.Object{localPV()}, []runtime.Object{dynamicSnapshot(nil), local},
			"Warning SetDefaultSnapshotClassFailed", `failed to retrieve PVC data from the lister`},
		{"unbound claim", []runtime.Object{unbound}, []runtime.Object{dynamicSnapshot(ptr.To("local")), local},
			"Warning SnapshotContentCreationFailed", "the PVC data is not yet bound to a PV, will not attempt to take a snapshot"},
		{"unbound claim, no class", []runtime.Object{unbound}, []runtime.Object{dynamicSnapshot(nil), local},
			"Warning SetDefaultSnapshotClassFailed", "not yet bound"},
		{"missing class", []runtime.Object{boundClaim(), localPV()}, []runtime.Object{dynamicSnapshot(ptr.To("gold"))},
			"Warning GetSnapshotClassFailed", `"gold" not found`},
		{"no default class", []runtime.Object{boundClaim(), localPV()}, []runtime.Object{dynamicSnapshot(nil), class("x", false, snapshotv1.VolumeSnapshotContentDelete)},
			"Warning SetDefaultSnapshotClassFailed", "cannot find default snapshot class"},
		{"two default classes", []runtime.Object{boundClaim(), localPV()}, []runtime.Object{dynamicSnapshot(nil), local, class("y", true, snapshotv1.VolumeSnapshotContentDelete)},
			"Warning SetDefaultSnapshotClassFailed", "2 default snapshot classes were found"},
		{"both sources", []runtime.Object{boundClaim(), localPV()}, []runtime.Object{func() runtime.Object {
			s := dynamicSnapshot(ptr.To("local"))
			s.Spec.Source.VolumeSnapshotContentName = ptr.To("c")
			return s
		}(), local}, "Warning SnapshotValidationError", "Exactly one of PersistentVolumeClaimName and VolumeSnapshotContentName should be specified"},
		{"missing pre-provisioned content", nil, []runtime.Object{func() runtime.Object {
			s := dynamicSnapshot(nil)
			s.Spec.Source = snapshotv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To("pre")}
			return s
		}()}, "Warning SnapshotContentMissing", "VolumeSnapshotContent is missing"},
		{"pre-provisioned content bound elsewhere", nil, []runtime.Object{func() runtime.Object {
			s := dynamicSnapshot(nil)
			s.Spec.Source = snapshotv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To("pre")}
			return s
		}(), preContent("other", "")}, "Warning SnapshotContentMisbound", "VolumeSnapshotContent [pre] is bound to a different snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.kube, tt.snaps)
			if err := e.c.SyncSnapshot(context.Background(), "ns/snap"); err == nil {
				t.Error("sync succeeded, want an error (to retry)")
			}
			s := e.snapshot(t, "snap")
			if s.Status == nil || s.Status.Error == nil || !strings.Contains(ptr.Deref(s.Status.Error.Message, ""), tt.wantError) {
				t.Errorf("status %+v, want an error with %q", s.Status, tt.wantError)
			} else if !s.Status.Error.Time.Time.Equal(now) {
				t.Errorf("error time %v, want the clock's %v", s.Status.Error.Time, now)
			}
			if ev := e.drained(); !hasEvent(ev, tt.wantEvent) {
				t.Errorf("events %v, want %q", ev, tt.wantEvent)
			}
			if list, _ := e.snaps.SnapshotV1().VolumeSnapshotContents().List(context.Background(), metav1.ListOptions{}); len(list.Items) > 0 && tt.name != "pre-provisioned content bound elsewhere" {
				t.Errorf("contents created: %v", list.Items)
			}
		})
	}
}

func preContent(snapshotName string, uid types.UID) *snapshotv1.VolumeSnapshotContent {
	return &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "pre", Annotations: map[string]string{volume.AnnSnapshotNode: "n1"}},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: corev1.ObjectReference{Namespace: "ns", Name: snapshotName, UID: uid},
			Source:            snapshotv1.VolumeSnapshotContentSource{SnapshotHandle: ptr.To("pre")},
			DeletionPolicy:    snapshotv1.VolumeSnapshotContentRetain,
			Driver:            volume.Provisioner,
		},
		Status: &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr.To("pre"), ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(4096))},
	}
}

func TestPreProvisioned(t *testing.T) {
	ctx := context.Background()
	s := dynamicSnapshot(nil)
	s.Spec.Source = snapshotv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To("pre")}
	e := newEnv(t, nil, []runtime.Object{s, preContent("snap", "")})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err != nil {
		t.Fatal(err)
	}
	if c := e.content(t, "pre"); c.Spec.VolumeSnapshotRef.UID != "snap-uid" {
		t.Errorf("content ref %+v, want the snapshot's uid", c.Spec.VolumeSnapshotRef)
	}
	got := e.snapshot(t, "snap")
	if !isReady(got) || ptr.Deref(got.Status.BoundVolumeSnapshotContentName, "") != "pre" || got.Status.RestoreSize.Value() != 4096 {
		t.Errorf("status %+v", got.Status)
	}
	if !slices.Contains(got.Finalizers, snapshotapi.VolumeSnapshotAsSourceFinalizer) || slices.Contains(got.Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer) {
		t.Errorf("finalizers %v: as-source only (policy Retain)", got.Finalizers)
	}
	// A dynamic content named by a pre-provisioned snapshot is refused.
	dyn := dynamicContent(snapshotv1.VolumeSnapshotContentDelete, true)
	dyn.Name = "pre"
	e = newEnv(t, nil, []runtime.Object{s, dyn})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err == nil {
		t.Error("sync succeeded")
	}
	if ev := e.drained(); !hasEvent(ev, "Warning SnapshotContentMismatch VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one") {
		t.Errorf("events %v", ev)
	}
}

func TestDeletion(t *testing.T) {
	ctx := context.Background()
	deleted := func() *snapshotv1.VolumeSnapshot {
		s := dynamicSnapshot(ptr.To("local"))
		s.DeletionTimestamp = &metav1.Time{Time: now}
		s.Finalizers = []string{snapshotapi.VolumeSnapshotAsSourceFinalizer, snapshotapi.VolumeSnapshotBoundFinalizer}
		s.Status = &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: ptr.To("snapcontent-snap-uid"), ReadyToUse: ptr.To(true)}
		return s
	}
	tests := []struct {
		name           string
		policy         snapshotv1.DeletionPolicy
		restoring      bool
		wantDeleted    bool
		wantFinalizers []string
	}{
		{"Delete", snapshotv1.VolumeSnapshotContentDelete, false, true, []string{snapshotapi.VolumeSnapshotBoundFinalizer}},
		{"Retain", snapshotv1.VolumeSnapshotContentRetain, false, false, nil},
		{"restore pending", snapshotv1.VolumeSnapshotContentDelete, true, false, []string{snapshotapi.VolumeSnapshotAsSourceFinalizer, snapshotapi.VolumeSnapshotBoundFinalizer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube := []runtime.Object{boundClaim(), localPV()}
			if tt.restoring {
				kube = append(kube, &corev1.PersistentVolumeClaim{
					ObjectMeta: metav1.ObjectMeta{Name: "restore", Namespace: "ns"},
					Spec: corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{
						APIGroup: ptr.To(snapshotv1.GroupName), Kind: "VolumeSnapshot", Name: "snap"}},
					Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
				})
			}
			e := newEnv(t, kube, []runtime.Object{deleted(), dynamicContent(tt.policy, true)})
			err := e.c.SyncSnapshot(ctx, "ns/snap")
			if tt.restoring != (err != nil) {
				t.Errorf("sync: %v", err)
			}
			c := e.content(t, "snapcontent-snap-uid")
			if tt.wantDeleted != (c == nil) {
				t.Errorf("content deleted: %v, want %v", c == nil, tt.wantDeleted)
			}
			if c != nil && !tt.restoring && c.Annotations[snapshotapi.AnnBeingDeleted] != "yes" {
				t.Errorf("content annotations %v, want being-deleted", c.Annotations)
			}
			if got := e.snapshot(t, "snap").Finalizers; !slices.Equal(got, tt.wantFinalizers) {
				t.Errorf("finalizers %v, want %v", got, tt.wantFinalizers)
			}
			if tt.restoring && !hasEvent(e.drained(), "Warning SnapshotDeletePending Snapshot is being used to restore a PVC") {
				t.Error("no SnapshotDeletePending event")
			}
		})
	}
	// Once the content is gone, the bound finalizer goes too.
	s := deleted()
	s.Finalizers = []string{snapshotapi.VolumeSnapshotBoundFinalizer}
	e := newEnv(t, nil, []runtime.Object{s})
	if err := e.c.SyncSnapshot(ctx, "ns/snap"); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot(t, "snap").Finalizers; len(got) != 0 {
		t.Errorf("finalizers %v, want none", got)
	}
}

func TestSyncContent(t *testing.T) {
	ctx := context.Background()
	// A content being deleted with its snapshot is marked for the
	// snapshotter.
	s := dynamicSnapshot(ptr.To("local"))
	s.DeletionTimestamp = &metav1.Time{Time: now}
	s.Finalizers = []string{snapshotapi.VolumeSnapshotBoundFinalizer}
	e := newEnv(t, nil, []runtime.Object{s, dynamicContent(snapshotv1.VolumeSnapshotContentDelete, true)})
	if err := e.c.SyncContent(ctx, "snapcontent-snap-uid"); err != nil {
		t.Fatal(err)
	}
	if c := e.content(t, "snapcontent-snap-uid"); c.Annotations[snapshotapi.AnnBeingDeleted] != "yes" {
		t.Errorf("annotations %v", c.Annotations)
	}
	// A content whose snapshot is gone is left alone.
	e = newEnv(t, nil, []runtime.Object{dynamicContent(snapshotv1.VolumeSnapshotContentDelete, true)})
	if err := e.c.SyncContent(ctx, "snapcontent-snap-uid"); err != nil {
		t.Fatal(err)
	}
	if c := e.content(t, "snapcontent-snap-uid"); c == nil || c.DeletionTimestamp != nil || len(c.Annotations) != 0 {
		t.Errorf("content %+v changed", c)
	}
	// Both handles: a validation error.
	bad := dynamicContent(snapshotv1.VolumeSnapshotContentDelete, false)
	bad.Spec.Source.SnapshotHandle = ptr.To("x")
	e = newEnv(t, nil, []runtime.Object{bad})
	if err := e.c.SyncContent(ctx, bad.Name); err == nil {
		t.Error("sync succeeded")
	}
	if ev := e.drained(); !hasEvent(ev, "Warning ContentValidationError Exactly one of VolumeHandle and SnapshotHandle should be specified") {
		t.Errorf("events %v", ev)
	}
}

// TestBoundFinalizer: a bound snapshot gets the bound finalizer only when
// its content's policy is Delete.
func TestBoundFinalizer(t *testing.T) {
	for _, policy := range []snapshotv1.DeletionPolicy{snapshotv1.VolumeSnapshotContentDelete, snapshotv1.VolumeSnapshotContentRetain} {
		t.Run(string(policy), func(t *testing.T) {
			s := dynamicSnapshot(ptr.To("local"))
			s.Finalizers = []string{snapshotapi.VolumeSnapshotAsSourceFinalizer}
			s.Status = &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: ptr.To("snapcontent-snap-uid"), ReadyToUse: ptr.To(true)}
			e := newEnv(t, []runtime.Object{boundClaim(), localPV()},
				[]runtime.Object{s, dynamicContent(policy, true), class("local", true, policy)})
			if err := e.c.SyncSnapshot(context.Background(), "ns/snap"); err != nil {
				t.Fatal(err)
			}
			got := slices.Contains(e.snapshot(t, "snap").Finalizers, snapshotapi.VolumeSnapshotBoundFinalizer)
			if want := policy == snapshotv1.VolumeSnapshotContentDelete; got != want {
				t.Errorf("bound finalizer %v, want %v", got, want)
			}
		})
	}
}
