package volumebinding

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
	"github.com/havre/havre/internal/volume"
)

func class(name, provisioner string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
}

func claim(name, className, size string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &className, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

func boundTo(pv string) func(*corev1.PersistentVolumeClaim) {
	return func(c *corev1.PersistentVolumeClaim) {
		c.Spec.VolumeName = pv
		c.Status.Phase = corev1.ClaimBound
	}
}

// volumeOn is a volume of class with node affinity to node ("" none),
// Available unless bound to a claim.
func volumeOn(name, className, size, node string, claimRef *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: className, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/v/" + name}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}
	}
	if claimRef != nil {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: claimRef.Namespace, Name: claimRef.Name, UID: claimRef.UID}
		pv.Status.Phase = corev1.VolumeBound
	}
	return pv
}

// capacity is what a node publishes for a class.
func capacity(node, className, size string, maxSize ...string) *storagev1.CSIStorageCapacity {
	c := &storagev1.CSIStorageCapacity{
		ObjectMeta:       metav1.ObjectMeta{Name: volume.CapacityName(node, className), Namespace: volume.CapacityNamespace},
		NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelHostname: node}},
		StorageClassName: className,
	}
	if size != "" {
		c.Capacity = ptr.To(resource.MustParse(size))
	}
	if len(maxSize) > 0 {
		c.MaximumVolumeSize = ptr.To(resource.MustParse(maxSize[0]))
	}
	return c
}

func podWith(name string, claims ...string) *corev1.Pod {
	p := testutil.Pod(name, "", "")
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func snapshotObjects(node string) []runtime.Object {
	snap := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "snap", "namespace": "default"},
		"status":   map[string]any{"boundVolumeSnapshotContentName": "snapcontent-1"},
	}}
	content := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": "snapcontent-1", "annotations": map[string]any{volume.AnnSnapshotNode: node}},
	}}
	return []runtime.Object{snap, content}
}

var nodes = []*corev1.Node{testutil.Node("n1", "4", "8Gi", 10), testutil.Node("n2", "4", "8Gi", 10), testutil.Node("n3", "4", "8Gi", 10)}

// newPlugin builds the plugin over informers holding objs (not started:
// the objects are put in their stores).
func newPlugin(t *testing.T, dynObjs []runtime.Object, objs ...runtime.Object) (*VolumeBinding, *fake.Clientset, informers.SharedInformerFactory) {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	stores := map[string]cache.Store{
		"pvc": factory.Core().V1().PersistentVolumeClaims().Informer().GetStore(),
		"pv":  factory.Core().V1().PersistentVolumes().Informer().GetStore(),
		"sc":  factory.Storage().V1().StorageClasses().Informer().GetStore(),
		"cap": factory.Storage().V1().CSIStorageCapacities().Informer().GetStore(),
	}
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.PersistentVolumeClaim:
			err = stores["pvc"].Add(o)
		case *corev1.PersistentVolume:
			err = stores["pv"].Add(o)
		case *storagev1.StorageClass:
			err = stores["sc"].Add(o)
		case *storagev1.CSIStorageCapacity:
			err = stores["cap"].Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		volumeSnapshots: "VolumeSnapshotList", volumeSnapshotContents: "VolumeSnapshotContentList"}, dynObjs...)
	pl := New(&testutil.Handle{Client: client, Informers: factory}, dyn, DefaultArgs())
	return pl, client, factory
}

var (
	wffc      = storagev1.VolumeBindingWaitForFirstConsumer
	immediate = storagev1.VolumeBindingImmediate
	localSC   = class("local", volume.Provisioner, wffc)
	staticSC  = class("static", "kubernetes.io/no-provisioner", wffc)
	otherSC   = class("other", "example.com/nfs", wffc)
	immSC     = class("imm", volume.Provisioner, immediate)
)

func TestFilter(t *testing.T) {
	deleting := func(c *corev1.PersistentVolumeClaim) { c.DeletionTimestamp = &metav1.Time{Time: time.Now()} }
	cloneOf := func(src string) func(*corev1.PersistentVolumeClaim) {
		return func(c *corev1.PersistentVolumeClaim) {
			c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: src}
		}
	}
	fromSnapshot := func(c *corev1.PersistentVolumeClaim) {
		c.Spec.DataSource = &corev1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"}
	}
	selected := func(node string) func(*corev1.PersistentVolumeClaim) {
		return func(c *corev1.PersistentVolumeClaim) { c.Annotations = map[string]string{volume.AnnSelectedNode: node} }
	}
	bound := claim("bound", "local", "1Gi", boundTo("pv-n1"))
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		dynObjs []runtime.Object
		pod     *corev1.Pod
		// preFilter is PreFilter's code and message when it is not Success.
		preFilter framework.Code
		preMsg    string
		// want is each node's Filter reason ("" fits).
		want map[string]string
	}{
		{name: "no claims", pod: testutil.Pod("p", "", ""), preFilter: framework.Skip},
		{name: "claim not found", pod: podWith("p", "data"), preFilter: framework.UnschedulableAndUnresolvable,
			preMsg: `persistentvolumeclaim "data" not found`},
		{name: "claim being deleted", objs: []runtime.Object{localSC, claim("data", "local", "1Gi", deleting)}, pod: podWith("p", "data"),
			preFilter: framework.UnschedulableAndUnresolvable, preMsg: `persistentvolumeclaim "data" is being deleted`},
		{name: "unbound immediate claim", objs: []runtime.Object{immSC, claim("data", "imm", "1Gi")}, pod: podWith("p", "data"),
			preFilter: framework.UnschedulableAndUnresolvable, preMsg: ErrUnboundImmediateClaims},
		{name: "unbound claim of a missing class", objs: []runtime.Object{claim("data", "gone", "1Gi")}, pod: podWith("p", "data"),
			preFilter: framework.UnschedulableAndUnresolvable, preMsg: ErrUnboundImmediateClaims},
		{name: "bound claim: the volume's node", objs: []runtime.Object{localSC, bound, volumeOn("pv-n1", "local", "1Gi", "n1", bound)},
			pod: podWith("p", "bound"), want: map[string]string{"n1": "", "n2": ErrReasonNodeConflict, "n3": ErrReasonNodeConflict}},
		{name: "bound claim: volume missing", objs: []runtime.Object{localSC, bound},
			pod: podWith("p", "bound"), want: map[string]string{"n1": ErrReasonPVNotExist, "n2": ErrReasonPVNotExist, "n3": ErrReasonPVNotExist}},
		{name: "static volume on n2", objs: []runtime.Object{staticSC, claim("data", "static", "1Gi"),
			volumeOn("small", "static", "500Mi", "n1", nil), volumeOn("pv-n2", "static", "2Gi", "n2", nil)},
			pod: podWith("p", "data"), want: map[string]string{"n1": ErrReasonBindConflict, "n2": "", "n3": ErrReasonBindConflict}},
		{name: "static volume bound to another claim", objs: []runtime.Object{staticSC, claim("data", "static", "1Gi"),
			volumeOn("pv-n2", "static", "2Gi", "n2", claim("other", "static", "1Gi"))},
			pod: podWith("p", "data"), want: map[string]string{"n1": ErrReasonBindConflict, "n2": ErrReasonBindConflict, "n3": ErrReasonBindConflict}},
		{name: "local: published capacity", objs: []runtime.Object{localSC, claim("data", "local", "5Gi"),
			capacity("n1", "local", "10Gi"), capacity("n2", "local", "1Gi")},
			pod: podWith("p", "data"), want: map[string]string{"n1": "", "n2": ErrReasonNotEnoughSpace, "n3": ErrReasonNotEnoughSpace}},
		{name: "local: the pod's claims add up", objs: []runtime.Object{localSC, claim("a", "local", "4Gi"), claim("b", "local", "4Gi"),
			capacity("n1", "local", "6Gi"), capacity("n2", "local", "8Gi"), capacity("n3", "local", "")},
			pod: podWith("p", "a", "b"), want: map[string]string{"n1": ErrReasonNotEnoughSpace, "n2": "", "n3": ErrReasonNotEnoughSpace}},
		{name: "local: maximumVolumeSize", objs: []runtime.Object{localSC, claim("data", "local", "5Gi"),
			capacity("n1", "local", "100Gi", "4Gi"), capacity("n2", "local", "", "5Gi")},
			pod: podWith("p", "data"), want: map[string]string{"n1": ErrReasonNotEnoughSpace, "n2": "", "n3": ErrReasonNotEnoughSpace}},
		{name: "local: capacity of another class", objs: []runtime.Object{localSC, claim("data", "local", "1Gi"), capacity("n1", "fast", "10Gi")},
			pod: podWith("p", "data"), want: map[string]string{"n1": ErrReasonNotEnoughSpace, "n2": ErrReasonNotEnoughSpace, "n3": ErrReasonNotEnoughSpace}},
		{name: "other provisioner without capacities", objs: []runtime.Object{otherSC, claim("data", "other", "1Ti")},
			pod: podWith("p", "data"), want: map[string]string{"n1": "", "n2": "", "n3": ""}},
		{name: "already selected node", objs: []runtime.Object{localSC, claim("data", "local", "1Gi", selected("n3")),
			capacity("n1", "local", "10Gi"), capacity("n3", "local", "10Gi")},
			pod: podWith("p", "data"), want: map[string]string{"n1": ErrReasonBindConflict, "n2": ErrReasonBindConflict, "n3": ""}},
		{name: "clone: the source's node", objs: []runtime.Object{localSC, bound, volumeOn("pv-n1", "local", "1Gi", "n1", bound),
			claim("copy", "local", "1Gi", cloneOf("bound")), capacity("n1", "local", "10Gi"), capacity("n2", "local", "10Gi")},
			pod: podWith("p", "copy"), want: map[string]string{"n1": "", "n2": ErrReasonNodeConflict, "n3": ErrReasonNodeConflict}},
		{name: "clone: unbound source", objs: []runtime.Object{localSC, claim("src", "local", "1Gi"), claim("copy", "local", "1Gi", cloneOf("src"))},
			pod: podWith("p", "copy"), preFilter: framework.UnschedulableAndUnresolvable,
			preMsg: `source persistentvolumeclaim "src" of persistentvolumeclaim "copy" is not bound`},
		{name: "snapshot: its node", objs: []runtime.Object{localSC, claim("restored", "local", "1Gi", fromSnapshot),
			capacity("n1", "local", "10Gi"), capacity("n2", "local", "10Gi")}, dynObjs: snapshotObjects("n2"),
			pod: podWith("p", "restored"), want: map[string]string{"n1": ErrReasonSnapshotUnavailable, "n2": "", "n3": ErrReasonSnapshotUnavailable}},
		{name: "snapshot: not found", objs: []runtime.Object{localSC, claim("restored", "local", "1Gi", fromSnapshot), capacity("n1", "local", "10Gi")},
			pod:  podWith("p", "restored"),
			want: map[string]string{"n1": ErrReasonSnapshotUnavailable, "n2": ErrReasonSnapshotUnavailable, "n3": ErrReasonSnapshotUnavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, _, _ := newPlugin(t, tc.dynObjs, tc.objs...)
			state := framework.NewCycleState()
			infos := testutil.NodeInfos(nodes, nil)
			_, st := pl.PreFilter(context.Background(), state, tc.pod, infos)
			if st.Code() != tc.preFilter || tc.preMsg != "" && st.Message() != tc.preMsg {
				t.Fatalf("PreFilter: %v %q, want %v %q", st.Code(), st.Message(), tc.preFilter, tc.preMsg)
			}
			if !st.IsSuccess() {
				return
			}
			for _, ni := range infos {
				st := pl.Filter(context.Background(), state, tc.pod, ni)
				want := tc.want[ni.Node().Name]
				if want == "" && !st.IsSuccess() || want != "" && (st.Code() != framework.UnschedulableAndUnresolvable || st.Message() != want) {
					t.Errorf("Filter on %s: %v %q, want %q", ni.Node().Name, st.Code(), st.Message(), want)
				}
			}
		})
	}
}

// schedule runs PreFilter, Filter on node and Reserve for a pod, and
// returns the state (nil when the pod did not fit).
func schedule(t *testing.T, pl *VolumeBinding, pod *corev1.Pod, node *corev1.Node) (*framework.CycleState, *framework.Status) {
	t.Helper()
	state := framework.NewCycleState()
	infos := testutil.NodeInfos([]*corev1.Node{node}, nil)
	if _, st := pl.PreFilter(context.Background(), state, pod, infos); !st.IsSuccess() {
		t.Fatalf("PreFilter: %v", st.Message())
	}
	if st := pl.Filter(context.Background(), state, pod, infos[0]); !st.IsSuccess() {
		return nil, st
	}
	if st := pl.Reserve(context.Background(), state, pod, node.Name); !st.IsSuccess() {
		t.Fatalf("Reserve: %v", st.Message())
	}
	return state, nil
}

// TestReserve: what a pod reserved is not counted again for the next pod
// (capacity, static volumes) until it is unreserved.
func TestReserve(t *testing.T) {
	t.Run("capacity", func(t *testing.T) {
		pl, _, _ := newPlugin(t, nil, localSC, claim("a", "local", "6Gi"), claim("b", "local", "6Gi"), capacity("n1", "local", "10Gi"))
		a, b := podWith("a", "a"), podWith("b", "b")
		if _, st := schedule(t, pl, a, nodes[0]); st != nil {
			t.Fatalf("a: %v", st.Message())
		}
		if _, st := schedule(t, pl, b, nodes[0]); st.Message() != ErrReasonNotEnoughSpace {
			t.Fatalf("b while a is reserved: %q, want %q", st.Message(), ErrReasonNotEnoughSpace)
		}
		pl.Unreserve(context.Background(), nil, a, "n1")
		if _, st := schedule(t, pl, b, nodes[0]); st != nil {
			t.Fatalf("b once a is unreserved: %v", st.Message())
		}
	})
	t.Run("a claim shared by two pods counts once", func(t *testing.T) {
		pl, _, _ := newPlugin(t, nil, localSC, claim("a", "local", "6Gi"), capacity("n1", "local", "10Gi"))
		if _, st := schedule(t, pl, podWith("a", "a"), nodes[0]); st != nil {
			t.Fatalf("a: %v", st.Message())
		}
		if _, st := schedule(t, pl, podWith("a2", "a"), nodes[0]); st != nil {
			t.Fatalf("a2 with a's claim: %v", st.Message())
		}
	})
	t.Run("static volume", func(t *testing.T) {
		pl, _, _ := newPlugin(t, nil, staticSC, claim("a", "static", "1Gi"), claim("b", "static", "1Gi"), volumeOn("pv", "static", "1Gi", "", nil))
		a, b := podWith("a", "a"), podWith("b", "b")
		if _, st := schedule(t, pl, a, nodes[0]); st != nil {
			t.Fatalf("a: %v", st.Message())
		}
		if _, st := schedule(t, pl, b, nodes[0]); st.Message() != ErrReasonBindConflict {
			t.Fatalf("b while a holds the volume: %q, want %q", st.Message(), ErrReasonBindConflict)
		}
		pl.Unreserve(context.Background(), nil, a, "n1")
		if _, st := schedule(t, pl, b, nodes[0]); st != nil {
			t.Fatalf("b once a is unreserved: %v", st.Message())
		}
	})
	t.Run("provisioned claims no longer count", func(t *testing.T) {
		pl, _, factory := newPlugin(t, nil, localSC, claim("a", "local", "6Gi"), claim("b", "local", "6Gi"), capacity("n1", "local", "10Gi"))
		if _, st := schedule(t, pl, podWith("a", "a"), nodes[0]); st != nil {
			t.Fatalf("a: %v", st.Message())
		}
		// a's claim got its volume (and the node will publish less).
		if err := factory.Core().V1().PersistentVolumeClaims().Informer().GetStore().Update(claim("a", "local", "6Gi", boundTo("pv-a"))); err != nil {
			t.Fatal(err)
		}
		if _, st := schedule(t, pl, podWith("b", "b"), nodes[0]); st != nil {
			t.Fatalf("b once a's claim is provisioned: %v", st.Message())
		}
	})
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPreBind runs PreBind over started informers: it writes the choices
// and returns once the claims are bound (the test plays the
// PersistentVolume controller and the provisioner), or fails.
func TestPreBind(t *testing.T) {
	ctx := context.Background()
	start := func(t *testing.T, objs ...runtime.Object) (*VolumeBinding, *fake.Clientset) {
		pl, client, factory := newPlugin(t, nil, objs...)
		pl.PollInterval = time.Millisecond
		stop := make(chan struct{})
		t.Cleanup(func() {
			close(stop)
			factory.Shutdown()
		})
		factory.Start(stop)
		factory.WaitForCacheSync(stop)
		return pl, client
	}
	// bind plays the PersistentVolume controller: pv and claim bound.
	bind := func(t *testing.T, client *fake.Clientset, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) {
		pv = pv.DeepCopy()
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID}
		pv.Status.Phase = corev1.VolumeBound
		var err error
		if _, gerr := client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); gerr == nil {
			_, err = client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		} else {
			_, err = client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		}
		if err != nil {
			t.Error(err)
			return
		}
		cur, err := client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		cur.Spec.VolumeName = pv.Name
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, volume.AnnBindCompleted, "yes")
		if _, err := client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}
	claimOf := func(client *fake.Clientset, name string) *corev1.PersistentVolumeClaim {
		c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("dynamic", func(t *testing.T) {
		data := claim("data", "local", "1Gi")
		pl, client := start(t, localSC, data, capacity("n1", "local", "10Gi"))
		pl.BindTimeout = time.Minute
		pod := podWith("p", "data")
		state, st := schedule(t, pl, pod, nodes[0])
		if st != nil {
			t.Fatal(st.Message())
		}
		done := make(chan *framework.Status)
		go func() { done <- pl.PreBind(ctx, state, pod, "n1") }()
		waitFor(t, "selected-node on the claim", func() bool { return claimOf(client, "data").Annotations[volume.AnnSelectedNode] == "n1" })
		if _, ok := claimOf(client, "data").Annotations[volume.AnnStorageProvisioner]; ok {
			t.Error("the scheduler wrote the storage-provisioner annotation: the PersistentVolume controller's to write")
		}
		select {
		case st := <-done:
			t.Fatalf("PreBind returned %v before the claim was bound", st.Message())
		default:
		}
		bind(t, client, data, volumeOn("pvc-data", "local", "1Gi", "n1", nil))
		if st := <-done; !st.IsSuccess() {
			t.Fatalf("PreBind: %v", st.Message())
		}
		if got := pl.assumed.pendingSize(podWith("other"), "n1", "local", func(string, string) bool { return false }); got != 0 {
			t.Errorf("%d bytes still assumed after PreBind", got)
		}
	})
	t.Run("static", func(t *testing.T) {
		data := claim("data", "static", "1Gi")
		pl, client := start(t, staticSC, data, volumeOn("pv1", "static", "1Gi", "n1", nil))
		pl.BindTimeout = time.Minute
		pod := podWith("p", "data")
		state, st := schedule(t, pl, pod, nodes[0])
		if st != nil {
			t.Fatal(st.Message())
		}
		done := make(chan *framework.Status)
		go func() { done <- pl.PreBind(ctx, state, pod, "n1") }()
		var pv *corev1.PersistentVolume
		waitFor(t, "the volume's claimRef", func() bool {
			var err error
			pv, err = client.CoreV1().PersistentVolumes().Get(ctx, "pv1", metav1.GetOptions{})
			return err == nil && pv.Spec.ClaimRef != nil
		})
		if ref := pv.Spec.ClaimRef; ref.Name != "data" || ref.Namespace != "default" || ref.UID != data.UID ||
			pv.Annotations[volume.AnnBoundByController] != "yes" {
			t.Errorf("volume pre-bound as %+v, annotations %v", ref, pv.Annotations)
		}
		if _, ok := claimOf(client, "data").Annotations[volume.AnnSelectedNode]; ok {
			t.Error("selected-node written on a claim with a static volume")
		}
		bind(t, client, data, pv)
		if st := <-done; !st.IsSuccess() {
			t.Fatalf("PreBind: %v", st.Message())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		pl, _ := start(t, localSC, claim("data", "local", "1Gi"), capacity("n1", "local", "10Gi"))
		pl.BindTimeout = 20 * time.Millisecond
		pod := podWith("p", "data")
		state, _ := schedule(t, pl, pod, nodes[0])
		st := pl.PreBind(ctx, state, pod, "n1")
		if st.Code() != framework.Error || !strings.Contains(st.Message(), "were not bound within 20ms") {
			t.Fatalf("PreBind: %v %q, want an error saying the claims were not bound", st.Code(), st.Message())
		}
	})
	t.Run("provisioning given up", func(t *testing.T) {
		pl, client := start(t, localSC, claim("data", "local", "1Gi"), capacity("n1", "local", "10Gi"))
		pl.BindTimeout = time.Minute
		pod := podWith("p", "data")
		state, _ := schedule(t, pl, pod, nodes[0])
		done := make(chan *framework.Status)
		go func() { done <- pl.PreBind(ctx, state, pod, "n1") }()
		waitFor(t, "selected-node on the claim", func() bool { return claimOf(client, "data").Annotations[volume.AnnSelectedNode] == "n1" })
		// The provisioner gives up and takes the annotation away.
		c := claimOf(client, "data")
		delete(c.Annotations, volume.AnnSelectedNode)
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := <-done; st.Code() != framework.Error || !strings.Contains(st.Message(), "selectedNode annotation reset") {
			t.Fatalf("PreBind: %v %q", st.Code(), st.Message())
		}
	})
}

func TestArgs(t *testing.T) {
	if err := DefaultArgs().Validate(); err != nil || DefaultArgs().BindTimeoutSeconds != 600 {
		t.Errorf("default args %+v: %v", DefaultArgs(), err)
	}
	if err := (Args{BindTimeoutSeconds: -1}).Validate(); err == nil {
		t.Error("a negative bindTimeoutSeconds was accepted")
	}
}

// TestWaitBoundWakesOnEvents: PreBind's wait looks at the claims again at
// a claim or volume event, not only at its next poll.
func TestWaitBoundWakesOnEvents(t *testing.T) {
	pl := &VolumeBinding{changed: &notifier{}, PollInterval: time.Hour}
	var bound atomic.Bool
	checked := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- pl.waitBound(t.Context(), func() (bool, error) {
			checked <- struct{}{}
			return bound.Load(), nil
		})
	}()
	<-checked // the first look, at once: not bound yet
	bound.Store(true)
	pl.changed.notify()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("waitBound did not look again at the event (it waits for its hourly poll)")
	}
}
