package snapshotter

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/local"
	"github.com/havre/havre/internal/volume/snapshotapi"
)

// dirBacking is a minimal local.Backing over a temporary directory:
// volumes are directories, snapshots copies of them.
type dirBacking struct {
	root string
	fail error // Snapshot fails with it when set

	mu      sync.Mutex
	deleted []string
}

func (b *dirBacking) Kind() string       { return "dir" }
func (b *dirBacking) EnforcesSize() bool { return false }
func (b *dirBacking) Path(id string) string {
	return filepath.Join(b.root, "volumes", id)
}
func (b *dirBacking) snapshotPath(id string) string { return filepath.Join(b.root, "snapshots", id) }
func (b *dirBacking) Create(_ context.Context, id string, _ int64) (string, error) {
	return b.Path(id), os.MkdirAll(b.Path(id), 0o755)
}
func (b *dirBacking) CreateFrom(context.Context, string, int64, local.Source, local.Progress) (string, error) {
	return "", errors.New("not in this test")
}
func (b *dirBacking) Expand(context.Context, string, int64) error { return nil }
func (b *dirBacking) Delete(_ context.Context, id string) error   { return os.RemoveAll(b.Path(id)) }
func (b *dirBacking) Usage(context.Context, string) (int64, int64, error) {
	return 0, 0, nil
}
func (b *dirBacking) Free(context.Context) (int64, error) { return 1 << 30, nil }

func (b *dirBacking) Snapshot(_ context.Context, volumeID, snapshotID string, progress local.Progress) (int64, error) {
	if b.fail != nil {
		return 0, b.fail
	}
	src, dst := b.Path(volumeID), b.snapshotPath(snapshotID)
	var size int64
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size += int64(len(data))
		progress(size, size)
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	return size, err
}

func (b *dirBacking) DeleteSnapshot(_ context.Context, id string) error {
	b.mu.Lock()
	b.deleted = append(b.deleted, id)
	b.mu.Unlock()
	return os.RemoveAll(b.snapshotPath(id))
}

var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
}

func pvOn(name, nodeName string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
			}}}},
		},
	}
}

func content(name, pv string, policy snapshotv1.DeletionPolicy) *snapshotv1.VolumeSnapshotContent {
	return &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{snapshotapi.VolumeSnapshotContentFinalizer}},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: corev1.ObjectReference{Namespace: "ns", Name: "snap", UID: "snap-uid"},
			Source:            snapshotv1.VolumeSnapshotContentSource{VolumeHandle: ptr.To(pv)},
			DeletionPolicy:    policy,
			Driver:            volume.Provisioner,
		},
	}
}

type env struct {
	s       *Snapshotter
	snaps   *snapshotfake.Clientset
	backing *dirBacking
	events  *record.FakeRecorder
}

func newEnv(t *testing.T, backing *dirBacking, kubeObjs, snapObjs []runtime.Object) *env {
	t.Helper()
	e := &env{
		//lint:ignore SA1019 the module generates no apply configurations: it has no NewClientset
		snaps:   snapshotfake.NewSimpleClientset(snapObjs...),
		backing: backing,
		events:  record.NewFakeRecorder(100),
	}
	s, err := New(Config{
		Client: kubefake.NewClientset(kubeObjs...), Snapshots: e.snaps, NodeName: "n1",
		Backing: backing, Recorder: e.events, Clock: clocktesting.NewFakeClock(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		s.factory.Shutdown()
		s.nodeFactory.Shutdown()
		s.snapFactory.Shutdown()
	})
	s.factory.Start(ctx.Done())
	s.nodeFactory.Start(ctx.Done())
	s.snapFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		t.Fatal("informers did not sync")
	}
	return e
}

func (e *env) content(t *testing.T, name string) *snapshotv1.VolumeSnapshotContent {
	t.Helper()
	c, err := e.snaps.SnapshotV1().VolumeSnapshotContents().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newBacking(t *testing.T) *dirBacking {
	b := &dirBacking{root: t.TempDir()}
	if _, err := b.Create(context.Background(), "pv-1", 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Path("pv-1"), "PG_VERSION"), []byte("17\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTakeSnapshot(t *testing.T) {
	b := newBacking(t)
	e := newEnv(t, b, []runtime.Object{node("n1"), node("n2"), pvOn("pv-1", "n1"), pvOn("pv-2", "n2")},
		[]runtime.Object{content("snapcontent-a", "pv-1", snapshotv1.VolumeSnapshotContentDelete), content("snapcontent-b", "pv-2", snapshotv1.VolumeSnapshotContentDelete)})
	ctx := context.Background()
	for _, name := range []string{"snapcontent-a", "snapcontent-b"} {
		if err := e.s.Sync(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// This node's volume: taken and reported.
	c := e.content(t, "snapcontent-a")
	st := c.Status
	if st == nil || ptr.Deref(st.SnapshotHandle, "") != "snapcontent-a" || !ptr.Deref(st.ReadyToUse, false) ||
		ptr.Deref(st.RestoreSize, 0) != 1<<20 || ptr.Deref(st.CreationTime, 0) != now.UnixNano() || st.Error != nil {
		t.Errorf("status %+v", st)
	}
	if c.Annotations[volume.AnnSnapshotNode] != "n1" || metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) {
		t.Errorf("annotations %v, want %s=n1 and not being created", c.Annotations, volume.AnnSnapshotNode)
	}
	if data, err := os.ReadFile(filepath.Join(b.snapshotPath("snapcontent-a"), "PG_VERSION")); err != nil || string(data) != "17\n" {
		t.Errorf("snapshot data %q, %v", data, err)
	}
	// Another node's volume: untouched.
	if c := e.content(t, "snapcontent-b"); c.Status != nil || len(c.Annotations) != 0 {
		t.Errorf("another node's content changed: %+v", c)
	}
}

func TestSnapshotFailure(t *testing.T) {
	b := newBacking(t)
	b.fail = errors.New("no space left on device")
	e := newEnv(t, b, []runtime.Object{node("n1"), pvOn("pv-1", "n1")},
		[]runtime.Object{content("snapcontent-a", "pv-1", snapshotv1.VolumeSnapshotContentDelete)})
	if err := e.s.Sync(context.Background(), "snapcontent-a"); err == nil {
		t.Fatal("sync succeeded")
	}
	c := e.content(t, "snapcontent-a")
	if c.Status == nil || ptr.Deref(c.Status.ReadyToUse, true) || c.Status.Error == nil ||
		ptr.Deref(c.Status.Error.Message, "") != "Failed to create snapshot: no space left on device" || !c.Status.Error.Time.Time.Equal(now) {
		t.Errorf("status %+v", c.Status)
	}
	if metav1.HasAnnotation(c.ObjectMeta, snapshotapi.AnnBeingCreated) {
		t.Error("still marked being created")
	}
	select {
	case ev := <-e.events.Events:
		if !strings.HasPrefix(ev, "Warning SnapshotCreationFailed Failed to create snapshot: no space left on device") {
			t.Errorf("event %q", ev)
		}
	default:
		t.Error("no event")
	}
}

func TestDeleteSnapshot(t *testing.T) {
	tests := []struct {
		name        string
		policy      snapshotv1.DeletionPolicy
		annotations map[string]string
		wantDeleted bool // the backing's snapshot
		wantRelease bool // the content's finalizer
	}{
		{"Delete", snapshotv1.VolumeSnapshotContentDelete, map[string]string{snapshotapi.AnnBeingDeleted: "yes"}, true, true},
		{"Retain", snapshotv1.VolumeSnapshotContentRetain, map[string]string{snapshotapi.AnnBeingDeleted: "yes"}, false, true},
		{"not marked by the controller", snapshotv1.VolumeSnapshotContentDelete, nil, false, false},
		{"being created", snapshotv1.VolumeSnapshotContentDelete, map[string]string{snapshotapi.AnnBeingDeleted: "yes", snapshotapi.AnnBeingCreated: "yes"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBacking(t)
			if _, err := b.Snapshot(context.Background(), "pv-1", "snapcontent-a", func(int64, int64) {}); err != nil {
				t.Fatal(err)
			}
			c := content("snapcontent-a", "pv-1", tt.policy)
			c.DeletionTimestamp = &metav1.Time{Time: now}
			c.Annotations = map[string]string{volume.AnnSnapshotNode: "n1"}
			for k, v := range tt.annotations {
				c.Annotations[k] = v
			}
			c.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr.To("snapcontent-a"), ReadyToUse: ptr.To(true)}
			e := newEnv(t, b, []runtime.Object{node("n1")}, []runtime.Object{c})
			if err := e.s.Sync(context.Background(), "snapcontent-a"); err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(b.snapshotPath("snapcontent-a"))
			if deleted := os.IsNotExist(statErr); deleted != tt.wantDeleted {
				t.Errorf("snapshot deleted: %v, want %v", deleted, tt.wantDeleted)
			}
			got := e.content(t, "snapcontent-a")
			if released := !slices.Contains(got.Finalizers, snapshotapi.VolumeSnapshotContentFinalizer); released != tt.wantRelease {
				t.Errorf("finalizers %v, want released %v", got.Finalizers, tt.wantRelease)
			}
			if tt.wantDeleted && got.Status.SnapshotHandle != nil {
				t.Errorf("snapshotHandle %v still set after deletion", *got.Status.SnapshotHandle)
			}
		})
	}
	// Another node's content is not this node's to delete.
	b := newBacking(t)
	c := content("snapcontent-a", "pv-1", snapshotv1.VolumeSnapshotContentDelete)
	c.DeletionTimestamp = &metav1.Time{Time: now}
	c.Annotations = map[string]string{volume.AnnSnapshotNode: "n2", snapshotapi.AnnBeingDeleted: "yes"}
	c.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr.To("snapcontent-a"), ReadyToUse: ptr.To(true)}
	e := newEnv(t, b, []runtime.Object{node("n1")}, []runtime.Object{c})
	if err := e.s.Sync(context.Background(), "snapcontent-a"); err != nil {
		t.Fatal(err)
	}
	if len(b.deleted) != 0 || len(e.content(t, "snapcontent-a").Finalizers) != 1 {
		t.Errorf("another node's content was acted on: deleted %v", b.deleted)
	}
}
