// Package fakekubelet plays, for end-to-end tests of a server without node
// agents, the scheduler and the kubelets of Node objects it registers: it
// binds pending pods (a pod whose required node affinity names a node by
// metadata.name, as daemon pods do, to that node; others to one of its
// schedulable nodes), reports the pods bound to its nodes Running and
// Ready (or Running but not Ready while a test holds them), finishes their
// graceful deletion, and heartbeats its nodes so that the node lifecycle
// controller keeps them Ready. A real scheduler running in the server may
// bind pods first; the fake kubelet then only runs them.
package fakekubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// callTimeout bounds each API call of the fake kubelet.
const callTimeout = 10 * time.Second

// heartbeatInterval is how often the nodes' Ready condition is renewed.
const heartbeatInterval = 5 * time.Second

// Kubelet is the fake scheduler and kubelets of a set of nodes.
type Kubelet struct {
	cs     kubernetes.Interface
	lister corelisters.PodLister
	nodes  corelisters.NodeLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	mine   []string // the nodes it plays, in registration order
	hold   func(*corev1.Pod) bool
	spread int

	errors  atomic.Int64
	lastErr atomic.Value
}

// Start registers nodes (their spec and labels as given, their status
// Ready with room for many pods) and plays them until the test ends.
func Start(t testing.TB, cs kubernetes.Interface, nodes ...*corev1.Node) *Kubelet {
	t.Helper()
	k := &Kubelet{
		cs: cs,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(cs, 0)
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	k.lister, k.nodes = podInf.Lister(), nodeInf.Lister()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) },
	}); err != nil {
		t.Fatal(err)
	}
	// A node that appears or changes may let pending pods be bound.
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { k.requeuePending() }, UpdateFunc: func(_, _ any) { k.requeuePending() },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for k.work(ctx) {
			}
		})
	}
	wg.Go(func() { k.heartbeat(ctx) })
	t.Cleanup(func() {
		cancel()
		k.queue.ShutDown()
		wg.Wait()
		factory.Shutdown()
		if t.Failed() && k.errors.Load() > 0 {
			t.Logf("fake kubelet: %d failed calls, last: %v", k.errors.Load(), k.lastErr.Load())
		}
	})
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, nodeInf.Informer().HasSynced) {
		t.Fatal("fake kubelet: informers did not sync")
	}
	for _, n := range nodes {
		k.AddNode(t, n)
	}
	return k
}

// AddNode registers one more node and plays it.
func (k *Kubelet) AddNode(t testing.TB, node *corev1.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	node = node.DeepCopy()
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	node.Labels[corev1.LabelHostname] = node.Name
	node.Labels[corev1.LabelOSStable] = "linux"
	created, err := k.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("fake kubelet: creating node %s: %v", node.Name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
	now := metav1.Now()
	// A patch, not an update: controllers write the new node too.
	patch, err := json.Marshal(map[string]any{"status": corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "fake kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: node.Name}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.cs.CoreV1().Nodes().Patch(ctx, created.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("fake kubelet: reporting node %s Ready: %v", node.Name, err)
	}
	k.mu.Lock()
	k.mine = append(k.mine, node.Name)
	k.mu.Unlock()
	k.requeuePending()
}

// HoldReady makes the pods for which held returns true run without being
// Ready (as a failing readiness probe would) until they are released with
// Requeue after held changes its mind. nil holds nothing.
func (k *Kubelet) HoldReady(held func(*corev1.Pod) bool) {
	k.mu.Lock()
	k.hold = held
	k.mu.Unlock()
	k.Requeue()
}

// Requeue has every pod looked at again.
func (k *Kubelet) Requeue() {
	pods, err := k.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		k.queue.Add(p.Namespace + "/" + p.Name)
	}
}

func (k *Kubelet) requeuePending() {
	pods, err := k.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			k.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
}

func (k *Kubelet) isMine(node string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Contains(k.mine, node)
}

func (k *Kubelet) held(p *corev1.Pod) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hold != nil && k.hold(p)
}

func (k *Kubelet) fail(err error) {
	k.errors.Add(1)
	k.lastErr.Store(err.Error())
}

func (k *Kubelet) work(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	if err := k.sync(ctx, key); err != nil && ctx.Err() == nil {
		k.fail(err)
		k.queue.AddRateLimited(key)
		return true
	}
	k.queue.Forget(key)
	return true
}

func (k *Kubelet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	pods := k.cs.CoreV1().Pods(ns)
	switch {
	case pod.Spec.NodeName == "":
		if pod.DeletionTimestamp != nil {
			return nil
		}
		node := k.placement(pod)
		if node == "" {
			return nil // not for our nodes (or none fits yet)
		}
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // bound by the scheduler, or gone
		}
		return err
	case !k.isMine(pod.Spec.NodeName):
		return nil
	case pod.DeletionTimestamp != nil:
		// The containers stopped: finish the graceful deletion.
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	}
	ready := !k.held(pod)
	if pod.Status.Phase == corev1.PodRunning && podReady(pod) == ready {
		return nil
	}
	_, err = pods.UpdateStatus(ctx, runningStatus(pod, ready), metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// placement returns the node to bind an unbound pod to: the node its
// required affinity names, if ours, else the next of our nodes that fits.
func (k *Kubelet) placement(pod *corev1.Pod) string {
	if name, ok := affinityNode(pod); ok {
		if k.isMine(name) {
			return name
		}
		return ""
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range k.mine {
		name := k.mine[(k.spread+i)%len(k.mine)]
		node, err := k.nodes.Get(name)
		if err != nil || !fits(pod, node) {
			continue
		}
		k.spread++
		return name
	}
	return ""
}

// affinityNode returns the node a required node affinity names by
// metadata.name.
func affinityNode(pod *corev1.Pod) (string, bool) {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, req := range term.MatchFields {
			if req.Key == metav1.ObjectNameField && req.Operator == corev1.NodeSelectorOpIn && len(req.Values) == 1 {
				return req.Values[0], true
			}
		}
	}
	return "", false
}

// fits is a small scheduler: the node is schedulable, matches the pod's
// nodeSelector and its NoSchedule and NoExecute taints are tolerated.
func fits(pod *corev1.Pod, node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	for k, v := range pod.Spec.NodeSelector {
		if node.Labels[k] != v {
			return false
		}
	}
	for _, taint := range node.Spec.Taints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool {
			return tol.ToleratesTaint(klog.Background(), &taint, false)
		}) {
			return false
		}
	}
	return true
}

// runningStatus is the status of the pod running, ready or not.
func runningStatus(pod *corev1.Pod, ready bool) *corev1.Pod {
	p := pod.DeepCopy()
	now := metav1.Now()
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	if p.Status.StartTime == nil {
		p.Status.StartTime = &now
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = "127.0.0.1"
	p.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	setCondition(p, corev1.PodInitialized, corev1.ConditionTrue, now)
	setCondition(p, corev1.ContainersReady, readyStatus, now)
	setCondition(p, corev1.PodReady, readyStatus, now)
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: new(true),
			ContainerID: fmt.Sprintf("fake://%s/%s", p.UID, c.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: *p.Status.StartTime}},
		})
	}
	return p
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus, now metav1.Time) {
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == t {
			if c.Status != s {
				c.Status, c.LastTransitionTime = s, now
			}
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// heartbeat renews the nodes' Ready condition.
func (k *Kubelet) heartbeat(ctx context.Context) {
	tick := time.NewTicker(heartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k.mu.Lock()
		nodes := slices.Clone(k.mine)
		k.mu.Unlock()
		for _, name := range nodes {
			now := metav1.Now()
			ready := corev1.NodeCondition{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "fake kubelet is posting ready status", LastTransitionTime: now,
			}
			if node, err := k.nodes.Get(name); err == nil {
				for _, c := range node.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready.LastTransitionTime = c.LastTransitionTime
					}
				}
			}
			ready.LastHeartbeatTime = now
			patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{ready}}})
			if err != nil {
				k.fail(err)
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err = k.cs.CoreV1().Nodes().Patch(cctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
			cancel()
			if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
				k.fail(err)
			}
		}
	}
}
