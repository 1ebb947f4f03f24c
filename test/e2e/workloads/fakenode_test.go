package workloads_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/test/framework"
)

// fakeNode plays the kubelet of one namespace's pods: it binds unbound
// pods to its Node, reports bound pods Running and Ready, and completes the
// graceful deletion of deleted ones. Pods whose image is in notReady are
// reported Running but never Ready. It heartbeats its Node so that the node
// lifecycle controller leaves it Ready.
type fakeNode struct {
	name   string
	ns     string
	cs     kubernetes.Interface
	lister corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	notReady map[string]bool

	// errors counts failed calls (reported when the test fails).
	errors  atomic.Int64
	lastErr atomic.Value
}

// startFakeNode registers a Node named after ns and starts playing it with
// workers concurrent pod workers until the test ends. It talks protobuf,
// as a kubelet does, without client-side rate limits.
func startFakeNode(t testing.TB, s *framework.Server, ns string, workers int) *fakeNode {
	t.Helper()
	cfg := s.RESTConfig()
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{
		name: "fake-" + ns, ns: ns, cs: cs, notReady: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second)),
	}
	n.register(t)
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods()
	n.lister = inf.Lister()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			n.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n.work(ctx) {
			}
		})
	}
	wg.Go(func() { n.heartbeat(ctx) })
	t.Cleanup(func() {
		cancel()
		n.queue.ShutDown()
		wg.Wait()
		factory.Shutdown()
		if t.Failed() && n.errors.Load() > 0 {
			t.Logf("fake node %s: %d failed calls, last: %v", n.name, n.errors.Load(), n.lastErr.Load())
		}
	})
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		t.Fatal("fake node: pod informer did not sync")
	}
	return n
}

// holdNotReady makes pods of image stay not Ready.
func (n *fakeNode) holdNotReady(image string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notReady[image] = true
}

func (n *fakeNode) readyAllowed(p *corev1.Pod) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range p.Spec.Containers {
		if n.notReady[c.Image] {
			return false
		}
	}
	return true
}

func (n *fakeNode) register(t testing.TB) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"kubernetes.io/hostname": n.name}}}
	node, err := n.cs.CoreV1().Nodes().Create(ctxFor(t), node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", n.name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("5000"),
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "fake node is ready",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
	}
	if _, err := n.cs.CoreV1().Nodes().UpdateStatus(ctxFor(t), node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("reporting node %s Ready: %v", n.name, err)
	}
}

// heartbeat renews the Ready condition every few seconds.
func (n *fakeNode) heartbeat(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := metav1.Now()
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "fake node is ready",
			LastHeartbeatTime: now,
		}}}})
		if _, err := n.cs.CoreV1().Nodes().Patch(ctx, n.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			n.fail(err)
		}
	}
}

func (n *fakeNode) fail(err error) {
	n.errors.Add(1)
	n.lastErr.Store(err.Error())
}

func (n *fakeNode) work(ctx context.Context) bool {
	key, quit := n.queue.Get()
	if quit {
		return false
	}
	defer n.queue.Done(key)
	if err := n.sync(ctx, key); err != nil && ctx.Err() == nil {
		n.fail(err)
		n.queue.AddRateLimited(key)
		return true
	}
	n.queue.Forget(key)
	return true
}

func (n *fakeNode) sync(ctx context.Context, key string) error {
	_, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := n.lister.Pods(n.ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pods := n.cs.CoreV1().Pods(n.ns)
	switch {
	case pod.DeletionTimestamp != nil:
		if pod.Spec.NodeName == "" {
			return nil // deleted at once by the API server
		}
		// The containers stopped: finish the graceful deletion.
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName == "":
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: n.name},
		}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or the scheduler bound it first
		}
		return err
	case pod.Status.Phase == corev1.PodRunning && (podReady(pod) || !n.readyAllowed(pod)):
		return nil // nothing to report
	}
	patch, err := json.Marshal(map[string]any{"status": n.runningStatus(pod, n.readyAllowed(pod))})
	if err != nil {
		return err
	}
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// runningStatus is the status of a pod whose containers all run, Ready
// when ready is set.
func (n *fakeNode) runningStatus(pod *corev1.Pod, ready bool) corev1.PodStatus {
	now := metav1.Now()
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "127.0.0.1",
		PodIP:     fmt.Sprintf("10.%d.%d.%d", pod.UID[0]%200, pod.UID[1]%250, pod.UID[2]%250+1),
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: readyStatus, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: readyStatus, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "fake://" + c.Image, Ready: ready, Started: new(true),
			ContainerID: "fake://" + string(pod.UID) + "/" + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return st
}
