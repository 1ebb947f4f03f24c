package provisioner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/local"
)

const node = "node-a"

type env struct {
	t       *testing.T
	client  *fake.Clientset
	p       *Provisioner
	rec     *record.FakeRecorder
	backing local.Backing
	ctx     context.Context
	factory informers.SharedInformerFactory
	clk     *testingclock.FakeClock
	dynamic *dynamicfake.FakeDynamicClient
}

func newEnv(t *testing.T, dynObjs []runtime.Object, objs ...runtime.Object) *env {
	t.Helper()
	backing, err := local.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, UID: "node-uid", Labels: map[string]string{corev1.LabelHostname: node}}})
	client := fake.NewClientset(objs...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		snapshotsResource: "VolumeSnapshotList", contentsResource: "VolumeSnapshotContentList",
	}, dynObjs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	clk := testingclock.NewFakeClock(time.Unix(1_800_000_000, 0))
	p, err := New(Options{Client: client, Dynamic: dyn, NodeName: node, Backing: backing, Recorder: rec, Clock: clk}, factory)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return &env{t: t, client: client, p: p, rec: rec, backing: backing, ctx: ctx, factory: factory, clk: clk, dynamic: dyn}
}

// eventually waits (10 s at most) for cond.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	if err := wait.PollUntilContextTimeout(e.ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		e.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// events drains the recorded events.
func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	for _, ev := range events {
		if strings.HasPrefix(ev, prefix) {
			return true
		}
	}
	return false
}

func localClass(name string, mutate ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          volume.Provisioner,
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: ptr.To(true),
		MountOptions:         []string{"noatime"},
	}
	for _, m := range mutate {
		m(sc)
	}
	return sc
}

func claim(name, uid, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), Annotations: map[string]string{
			volume.AnnSelectedNode: node, volume.AnnStorageProvisioner: volume.Provisioner,
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("local"),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

// boundPair is a claim bound to a volume of ours (made on the backing).
func boundPair(t *testing.T, backing local.Backing, name, uid, size, onNode string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	c := claim(name, uid, size, func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeName = "pvc-" + uid
		c.Status.Phase = corev1.ClaimBound
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	})
	q := resource.MustParse(size)
	path := backing.Path("pvc-" + uid)
	if onNode == node {
		var err error
		if path, err = backing.Create(context.Background(), "pvc-"+uid, q.Value()); err != nil {
			t.Fatal(err)
		}
	}
	p := &Provisioner{o: Options{NodeName: onNode, Backing: backing}}
	pv := p.newVolume(c, ptr.To(corev1.PersistentVolumeReclaimDelete), nil, "pvc-"+uid, path, q)
	pv.Status.Phase = corev1.VolumeBound
	return c, pv
}

func TestProvision(t *testing.T) {
	e := newEnv(t, nil, localClass("local"), claim("data", "u1", "1Gi"))
	if err := e.p.syncClaim(e.ctx, "default/data"); err != nil {
		t.Fatal(err)
	}
	pv, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-u1",
			Annotations: map[string]string{volume.AnnProvisionedBy: volume.Provisioner, volume.AnnBacking: "dir"},
			Finalizers:  []string{Finalizer},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              "local",
			MountOptions:                  []string{"noatime"},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "data", UID: "u1"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: e.backing.Path("pvc-u1")}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	pv.ResourceVersion, pv.ManagedFields, pv.TypeMeta = "", nil, metav1.TypeMeta{}
	if diff := cmpDiff(want, pv); diff != "" {
		t.Errorf("PersistentVolume (-want +got):\n%s", diff)
	}
	if info, err := os.Stat(e.backing.Path("pvc-u1")); err != nil || !info.IsDir() {
		t.Errorf("the volume's directory: %v", err)
	}
	events := e.events()
	for _, ev := range []string{
		`Normal Provisioning External provisioner is provisioning volume for claim "default/data"`,
		"Normal ProvisioningSucceeded Successfully provisioned volume pvc-u1",
		"Warning SizeNotEnforced Volume pvc-u1 is a plain directory on node node-a: its size of 1Gi is not enforced",
	} {
		if !hasEvent(events, ev) {
			t.Errorf("no event %q in %q", ev, events)
		}
	}
	// Again: nothing more.
	e.eventually("the informer to see the volume", func() bool { _, err := e.p.volumes.Get("pvc-u1"); return err == nil })
	if err := e.p.syncClaim(e.ctx, "default/data"); err != nil {
		t.Fatal(err)
	}
	if ev := e.events(); len(ev) != 0 {
		t.Errorf("a second sync wrote events: %q", ev)
	}
}

func TestProvisionNotOurs(t *testing.T) {
	tests := []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		extra []runtime.Object
	}{
		{"another node", claim("c", "u1", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Annotations[volume.AnnSelectedNode] = "node-b" }), nil},
		{"no selected node", claim("c", "u1", "1Gi", func(c *corev1.PersistentVolumeClaim) { delete(c.Annotations, volume.AnnSelectedNode) }), nil},
		{"another provisioner", claim("c", "u1", "1Gi", func(c *corev1.PersistentVolumeClaim) {
			c.Annotations[volume.AnnStorageProvisioner] = "ebs.csi.aws.com"
		}), nil},
		{"class of another provisioner", claim("c", "u1", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("other") }),
			[]runtime.Object{localClass("other", func(sc *storagev1.StorageClass) { sc.Provisioner = "ebs.csi.aws.com" })}},
		{"already bound", claim("c", "u1", "1Gi", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-1" }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, append(tc.extra, localClass("local"), tc.claim)...)
			if err := e.p.syncClaim(e.ctx, "default/c"); err != nil {
				t.Fatal(err)
			}
			if pvs, _ := e.client.CoreV1().PersistentVolumes().List(e.ctx, metav1.ListOptions{}); len(pvs.Items) != 0 {
				t.Errorf("provisioned %v", pvs.Items)
			}
			if ok, _ := exists(e.backing.Path("pvc-u1")); ok {
				t.Error("made a volume on the backing")
			}
		})
	}
}

func exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}

func TestProvisionClone(t *testing.T) {
	tests := []struct {
		name    string
		srcNode string
		size    string
		wantErr string
	}{
		{name: "same node", srcNode: node, size: "2Gi"},
		{name: "other node", srcNode: "node-b", size: "2Gi", wantErr: "is on node node-b"},
		{name: "smaller", srcNode: node, size: "512Mi", wantErr: "must be greater than or equal in size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, localClass("local"))
			src, srcPV := boundPair(t, e.backing, "src", "s1", "1Gi", tc.srcNode)
			if tc.srcNode == node {
				if err := os.WriteFile(filepath.Join(e.backing.Path("pvc-s1"), "file"), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			clone := claim("clone", "c1", tc.size, func(c *corev1.PersistentVolumeClaim) {
				c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
			})
			e.create(src, srcPV, clone)
			err := e.p.syncClaim(e.ctx, "default/clone")
			events := e.events()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("syncClaim: %v, want an error with %q", err, tc.wantErr)
				}
				if !hasEvent(events, `Warning ProvisioningFailed failed to provision volume with StorageClass "local": `) {
					t.Errorf("no ProvisioningFailed event in %q", events)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(e.backing.Path("pvc-c1"), "file"))
			if err != nil || string(data) != "data" {
				t.Errorf("the clone's file: %q, %v", data, err)
			}
			if _, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-c1", metav1.GetOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
}

// create creates objects and waits for the informers to see them.
func (e *env) create(objs ...runtime.Object) {
	e.t.Helper()
	for _, obj := range objs {
		switch o := obj.(type) {
		case *corev1.PersistentVolumeClaim:
			if _, err := e.client.CoreV1().PersistentVolumeClaims(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{}); err != nil {
				e.t.Fatal(err)
			}
			e.eventually("claim "+o.Name, func() bool { _, err := e.p.claims.PersistentVolumeClaims(o.Namespace).Get(o.Name); return err == nil })
		case *corev1.PersistentVolume:
			if _, err := e.client.CoreV1().PersistentVolumes().Create(e.ctx, o, metav1.CreateOptions{}); err != nil {
				e.t.Fatal(err)
			}
			e.eventually("volume "+o.Name, func() bool { _, err := e.p.volumes.Get(o.Name); return err == nil })
		default:
			e.t.Fatalf("create: %T", obj)
		}
	}
}

func TestProvisionFromSnapshot(t *testing.T) {
	snapshot := func(ready bool) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
			"metadata": map[string]any{"namespace": "default", "name": "snap"},
			"spec":     map[string]any{"source": map[string]any{"persistentVolumeClaimName": "src"}},
			"status":   map[string]any{"readyToUse": ready, "boundVolumeSnapshotContentName": "snapcontent-1"},
		}}
	}
	content := func(onNode string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
			"metadata": map[string]any{"name": "snapcontent-1", "annotations": map[string]any{volume.AnnSnapshotNode: onNode}},
			"spec":     map[string]any{"driver": volume.Provisioner},
			"status":   map[string]any{"readyToUse": true, "restoreSize": int64(1 << 30), "snapshotHandle": "snapcontent-1"},
		}}
	}
	tests := []struct {
		name    string
		ready   bool
		onNode  string
		wantErr string
	}{
		{name: "ready", ready: true, onNode: node},
		{name: "not ready", ready: false, onNode: node, wantErr: "snapshot snap is not Ready"},
		{name: "other node", ready: true, onNode: "node-b", wantErr: "is on node node-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, []runtime.Object{snapshot(tc.ready), content(tc.onNode)}, localClass("local"))
			if _, err := e.backing.Create(e.ctx, "pvc-s1", 1<<30); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(e.backing.Path("pvc-s1"), "file")
			if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := e.backing.Snapshot(e.ctx, "pvc-s1", "snapcontent-1", nil); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.create(claim("restored", "r1", "1Gi", func(c *corev1.PersistentVolumeClaim) {
				c.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"}
			}))
			err := e.p.syncClaim(e.ctx, "default/restored")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("syncClaim: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(e.backing.Path("pvc-r1"), "file"))
			if err != nil || string(data) != "old" {
				t.Errorf("the restored file: %q, %v; want %q", data, err, "old")
			}
		})
	}
}

func TestProvisionFailureReschedules(t *testing.T) {
	e := newEnv(t, nil, localClass("local", func(sc *storagev1.StorageClass) { sc.Parameters = map[string]string{"fsType": "ext4"} }), claim("data", "u1", "1Gi"))
	for i := 1; i <= 3; i++ {
		err := e.p.syncClaim(e.ctx, "default/data")
		if i < 3 && err == nil {
			t.Fatalf("failure %d: no error (no retry)", i)
		}
		if i == 3 && err != nil {
			t.Fatalf("failure %d: %v, want the claim handed back", i, err)
		}
		if ev := e.events(); !hasEvent(ev, `Warning ProvisioningFailed failed to provision volume with StorageClass "local": invalid parameter "fsType"`) {
			t.Errorf("failure %d: events %q", i, ev)
		}
		c, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, "data", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, selected := c.Annotations[volume.AnnSelectedNode]; selected != (i < 3) {
			t.Errorf("after failure %d: selected node annotation present %v", i, selected)
		}
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name        string
		phase       corev1.PersistentVolumePhase
		policy      corev1.PersistentVolumeReclaimPolicy
		onNode      string
		wantDeleted bool // the PV and its data
		wantFinal   bool // the finalizer still there
	}{
		{name: "released, Delete", phase: corev1.VolumeReleased, policy: corev1.PersistentVolumeReclaimDelete, onNode: node, wantDeleted: true},
		{name: "bound", phase: corev1.VolumeBound, policy: corev1.PersistentVolumeReclaimDelete, onNode: node, wantFinal: true},
		{name: "released, Retain", phase: corev1.VolumeReleased, policy: corev1.PersistentVolumeReclaimRetain, onNode: node},
		{name: "another node's", phase: corev1.VolumeReleased, policy: corev1.PersistentVolumeReclaimDelete, onNode: "node-b", wantFinal: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, localClass("local"))
			// The volume's data on this node (for another node's volume too:
			// it must stay).
			if _, err := e.backing.Create(e.ctx, "pvc-u1", 1<<30); err != nil {
				t.Fatal(err)
			}
			_, pv := boundPair(t, e.backing, "data", "u1", "1Gi", tc.onNode)
			pv.Status.Phase = tc.phase
			pv.Spec.PersistentVolumeReclaimPolicy = tc.policy
			e.create(pv)
			if err := e.p.syncVolume(e.ctx, "pvc-u1"); err != nil {
				t.Fatal(err)
			}
			got, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
			if deleted := apierrors.IsNotFound(err); deleted != tc.wantDeleted {
				t.Fatalf("PV deleted: %v (%v), want %v", deleted, err, tc.wantDeleted)
			}
			if ok, _ := exists(e.backing.Path("pvc-u1")); ok == tc.wantDeleted {
				t.Errorf("the volume's data there: %v, want %v", ok, !tc.wantDeleted)
			}
			if !tc.wantDeleted {
				if has := len(got.Finalizers) == 1 && got.Finalizers[0] == Finalizer; has != tc.wantFinal {
					t.Errorf("finalizers %v, want %s: %v", got.Finalizers, Finalizer, tc.wantFinal)
				}
			}
		})
	}
}

func TestExpand(t *testing.T) {
	e := newEnv(t, nil, localClass("local"))
	c, pv := boundPair(t, e.backing, "data", "u1", "1Gi", node)
	c.Annotations[AnnStorageResizer] = volume.Provisioner
	e.create(c, pv)
	c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("3Gi")
	if _, err := e.client.CoreV1().PersistentVolumeClaims("default").Update(e.ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the informer to see the larger request", func() bool {
		got, err := e.p.claims.PersistentVolumeClaims("default").Get("data")
		return err == nil && got.Spec.Resources.Requests.Storage().Cmp(resource.MustParse("3Gi")) == 0
	})
	if err := e.p.syncClaim(e.ctx, "default/data"); err != nil {
		t.Fatal(err)
	}
	three := resource.MustParse("3Gi")
	gotPV, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gotPV.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(three) != 0 {
		t.Errorf("PV capacity %s, want 3Gi", got.String())
	}
	gotClaim, err := e.client.CoreV1().PersistentVolumeClaims("default").Get(e.ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gotClaim.Status.Capacity[corev1.ResourceStorage]; got.Cmp(three) != 0 {
		t.Errorf("claim status.capacity %s, want 3Gi", got.String())
	}
	if got := gotClaim.Status.AllocatedResources[corev1.ResourceStorage]; got.Cmp(three) != 0 {
		t.Errorf("claim status.allocatedResources %s, want 3Gi", got.String())
	}
	if len(gotClaim.Status.Conditions) != 0 || len(gotClaim.Status.AllocatedResourceStatuses) != 0 {
		t.Errorf("claim conditions %v, allocatedResourceStatuses %v; want none", gotClaim.Status.Conditions, gotClaim.Status.AllocatedResourceStatuses)
	}
	if _, capacity, err := e.backing.Usage(e.ctx, "pvc-u1"); err != nil || capacity != three.Value() {
		t.Errorf("backing capacity %d, %v; want 3Gi", capacity, err)
	}
	events := e.events()
	for _, ev := range []string{
		"Normal Resizing External resizer is resizing volume pvc-u1",
		"Normal VolumeResizeSuccessful Resize volume succeeded",
		`Normal FileSystemResizeSuccessful MountVolume.NodeExpandVolume succeeded for volume "pvc-u1" node-a`,
	} {
		if !hasEvent(events, ev) {
			t.Errorf("no event %q in %q", ev, events)
		}
	}
}

func TestExpandNotAnnotated(t *testing.T) {
	e := newEnv(t, nil, localClass("local"))
	c, pv := boundPair(t, e.backing, "data", "u1", "1Gi", node)
	c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("3Gi")
	e.create(c, pv)
	if err := e.p.syncClaim(e.ctx, "default/data"); err != nil {
		t.Fatal(err)
	}
	gotPV, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gotPV.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("a claim without %s grew its volume to %s", AnnStorageResizer, got.String())
	}
}

func TestPublishCapacity(t *testing.T) {
	stale := func(name, class, onNode string) *storagev1.CSIStorageCapacity {
		return &storagev1.CSIStorageCapacity{
			ObjectMeta:       metav1.ObjectMeta{Namespace: volume.CapacityNamespace, Name: name, Labels: map[string]string{labelDriverName: driverLabel}},
			NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelHostname: onNode}},
			StorageClassName: class,
			Capacity:         resource.NewQuantity(1, resource.BinarySI),
		}
	}
	e := newEnv(t, nil,
		localClass("local"), localClass("fast"),
		localClass("other", func(sc *storagev1.StorageClass) { sc.Provisioner = "ebs.csi.aws.com" }),
		stale(volume.CapacityName(node, "local"), "local", node),
		stale(volume.CapacityName(node, "gone"), "gone", node),
		stale(volume.CapacityName("node-b", "gone"), "gone", "node-b"),
	)
	if err := e.p.PublishCapacity(e.ctx); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.StorageV1().CSIStorageCapacities(volume.CapacityNamespace).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]storagev1.CSIStorageCapacity{}
	for _, c := range list.Items {
		got[c.Name] = c
	}
	free, err := e.backing.Free(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"local", "fast"} {
		c, ok := got[volume.CapacityName(node, class)]
		if !ok {
			t.Errorf("no capacity for class %s", class)
			continue
		}
		// The free space moves with the machine's other users: within
		// 1 GiB of what the backing says now.
		if c.Capacity == nil || c.MaximumVolumeSize == nil || abs(c.Capacity.Value()-free) > 1<<30 || c.MaximumVolumeSize.Value() != c.Capacity.Value() {
			t.Errorf("class %s: capacity %v, maximum %v; want about %d", class, c.Capacity, c.MaximumVolumeSize, free)
		}
		if c.StorageClassName != class || c.NodeTopology == nil || c.NodeTopology.MatchLabels[corev1.LabelHostname] != node {
			t.Errorf("class %s: %+v", class, c)
		}
		if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].Kind != "Node" || c.OwnerReferences[0].UID != "node-uid" {
			t.Errorf("class %s: owners %v, want the Node", class, c.OwnerReferences)
		}
	}
	if _, ok := got[volume.CapacityName(node, "gone")]; ok {
		t.Error("the capacity of a class gone stayed")
	}
	if _, ok := got[volume.CapacityName("node-b", "gone")]; !ok {
		t.Error("removed another node's capacity")
	}
	if _, ok := got[volume.CapacityName(node, "other")]; ok {
		t.Error("published capacity for another provisioner's class")
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestRun drives the queues: a claim is provisioned, the node annotated,
// the capacity published; releasing the volume deletes it.
func TestRun(t *testing.T) {
	e := newEnv(t, nil, localClass("local"))
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(e.ctx)
	go func() {
		defer close(done)
		e.p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	e.create(claim("data", "u1", "1Gi"))
	var pv *corev1.PersistentVolume
	e.eventually("the volume", func() bool {
		var err error
		pv, err = e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
		return err == nil
	})
	e.eventually("the node's annotation", func() bool {
		n, err := e.client.CoreV1().Nodes().Get(e.ctx, node, metav1.GetOptions{})
		return err == nil && n.Annotations[volume.AnnBacking] == "dir"
	})
	e.eventually("the capacity", func() bool {
		_, err := e.client.StorageV1().CSIStorageCapacities(volume.CapacityNamespace).Get(e.ctx, volume.CapacityName(node, "local"), metav1.GetOptions{})
		return err == nil
	})
	pv.Status.Phase = corev1.VolumeReleased
	if _, err := e.client.CoreV1().PersistentVolumes().UpdateStatus(e.ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the released volume to go", func() bool {
		_, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, "pvc-u1", metav1.GetOptions{})
		ok, _ := exists(e.backing.Path("pvc-u1"))
		return apierrors.IsNotFound(err) && !ok
	})
}
