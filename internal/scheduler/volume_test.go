package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
	"github.com/havre/havre/internal/volume"
)

// TestVolumeScheduling runs the scheduler on informers of a fake
// clientset with the local class and the capacities three nodes publish;
// the test plays the provisioner and the PersistentVolume controller (it
// binds a claim once it has a selected node). A pod with a 5Gi claim
// lands on the node with room and its claim gets selected-node; a pod
// with a 50Gi claim fits nowhere and stays pending with upstream's
// message, until a node publishes more capacity.
func TestVolumeScheduling(t *testing.T) {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	capacity := func(node, size string) *storagev1.CSIStorageCapacity {
		return &storagev1.CSIStorageCapacity{
			ObjectMeta:       metav1.ObjectMeta{Name: volume.CapacityName(node, volume.DefaultClass), Namespace: volume.CapacityNamespace},
			NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelHostname: node}},
			StorageClassName: volume.DefaultClass, Capacity: ptr.To(resource.MustParse(size)),
		}
	}
	client := fake.NewClientset(
		testutil.Node("n1", "4", "8Gi", 10), testutil.Node("n2", "4", "8Gi", 10), testutil.Node("n3", "4", "8Gi", 10),
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: volume.DefaultClass}, Provisioner: volume.Provisioner, VolumeBindingMode: &wffc},
		capacity("n1", "1Gi"), capacity("n2", "10Gi"), capacity("n3", "2Gi"),
	)
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := a.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		obj, err := client.Tracker().Get(podsGVR, b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Spec.NodeName = b.Target.Name
		return true, b, client.Tracker().Update(podsGVR, pod, b.Namespace)
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg := DefaultConfig()
	s, err := New(client, factory, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	}()
	factory.Start(ctx.Done())
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Run(ctx)
	}()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	createPodWithClaim := func(name, size string) {
		t.Helper()
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-pvc-" + name)},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(volume.DefaultClass),
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
		}
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := testutil.Pod(name, "100m", "")
		pod.Spec.Volumes = []corev1.Volume{{Name: "data",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}}
		if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	claimOf := func(name string) *corev1.PersistentVolumeClaim {
		c, err := client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	nodeOfPod := func(name string) string {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return p.Spec.NodeName
	}
	// provision plays the node's provisioner and the PersistentVolume
	// controller once the claim has a selected node.
	provision := func(name string) string {
		t.Helper()
		var node string
		waitFor("selected-node on claim "+name, func() bool {
			node = claimOf(name).Annotations[volume.AnnSelectedNode]
			return node != ""
		})
		c := claimOf(name)
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + string(c.UID), Annotations: map[string]string{volume.AnnProvisionedBy: volume.Provisioner}},
			Spec: corev1.PersistentVolumeSpec{StorageClassName: volume.DefaultClass, Capacity: c.Spec.Resources.Requests,
				AccessModes: c.Spec.AccessModes, PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/v"}},
				ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
				NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
		}
		if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.Spec.VolumeName = pv.Name
		c.Status.Phase = corev1.ClaimBound
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, volume.AnnBindCompleted, "yes")
		if _, err := client.CoreV1().PersistentVolumeClaims("default").Update(ctx, c, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return node
	}

	createPodWithClaim("db", "5Gi")
	if node := provision("db"); node != "n2" {
		t.Fatalf("claim db selected for %s, want n2 (the only node with 5Gi free)", node)
	}
	waitFor("db to be bound to n2", func() bool { return nodeOfPod("db") == "n2" })

	createPodWithClaim("huge", "50Gi")
	const want = "0/3 nodes are available: 3 node(s) did not have enough free storage. " +
		"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
	waitFor("the FailedScheduling event of huge", func() bool {
		evs, err := client.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == "huge" && ev.Reason == "FailedScheduling" {
				if ev.Note != want {
					t.Fatalf("FailedScheduling %q, want %q", ev.Note, want)
				}
				return true
			}
		}
		return false
	})
	waitFor("huge's PodScheduled=False", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				strings.HasPrefix(c.Message, "0/3 nodes are available: 3 node(s) did not have enough free storage.") {
				return true
			}
		}
		return false
	})
	if _, ok := claimOf("huge").Annotations[volume.AnnSelectedNode]; ok {
		t.Error("a claim that fits nowhere got a selected node")
	}

	// n3 publishes more room: the capacity event retries huge, which
	// lands there.
	if _, err := client.StorageV1().CSIStorageCapacities(volume.CapacityNamespace).Update(ctx, capacity("n3", "100Gi"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if node := provision("huge"); node != "n3" {
		t.Fatalf("claim huge selected for %s, want n3", node)
	}
	waitFor("huge to be bound to n3", func() bool { return nodeOfPod("huge") == "n3" })
}

// failingPreBind fails PreBind and records Unreserve.
type failingPreBind struct {
	mu         sync.Mutex
	unreserved []string
}

func (*failingPreBind) Name() string { return "FailingPreBind" }

func (*failingPreBind) Reserve(context.Context, *framework.CycleState, *corev1.Pod, string) *framework.Status {
	return nil
}

func (f *failingPreBind) Unreserve(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, _ string) {
	f.mu.Lock()
	f.unreserved = append(f.unreserved, pod.Name)
	f.mu.Unlock()
}

func (*failingPreBind) PreBind(context.Context, *framework.CycleState, *corev1.Pod, string) *framework.Status {
	return framework.AsStatus(errors.New("binding volumes: timed out"))
}

// TestPreBindFailure: a failing PreBind keeps the pod from being bound,
// unreserves it, forgets it in the cache and requeues it to backoff.
func TestPreBindFailure(t *testing.T) {
	pod := testutil.Pod("p", "1", "")
	s, b, _, rec := newTestScheduler(t, pod)
	pb := &failingPreBind{}
	s.profile.addPlugin(pb, 0)
	s.Cache.AddNode(testutil.Node("n0", "2", "4Gi", 10))
	s.Queue.Add(pod)
	runCycles(s, 1)
	if node := b.boundTo("p"); node != "" {
		t.Errorf("bound to %s despite PreBind failing", node)
	}
	if pb.unreserved == nil || pb.unreserved[0] != "p" {
		t.Errorf("unreserved %v, want p", pb.unreserved)
	}
	if s.Cache.IsAssumed(pod) {
		t.Error("the pod is still assumed")
	}
	if _, backoff, _ := s.Queue.Lengths(); backoff != 1 {
		t.Errorf("the pod is not in backoff")
	}
	if ev := <-rec.Events; ev != `Warning FailedScheduling running PreBind plugin "FailingPreBind": binding volumes: timed out` {
		t.Errorf("event %q", ev)
	}
}
