// Package nodelifecycle_test checks the node lifecycle controller, its
// taint-based eviction and the DefaultTolerationSeconds admission against
// the real havre binary, with hollow nodes (`havre agent --hollow`) that
// the tests kill to simulate node failures.
package nodelifecycle_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// waitTimeout bounds the waits for the controller: a 4s grace period,
	// 3s tolerations and slack for a loaded machine.
	waitTimeout = 60 * time.Second
	// heartbeat is the hollow nodes' Lease renewal interval, well under
	// the grace period.
	heartbeat = "--hollow-heartbeat-interval=500ms"
)

// startServer runs a server with short node lifecycle timings.
func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t, framework.WithArgs(
		"--node-monitor-grace-period=4s",
		"--default-not-ready-toleration-seconds=3",
		"--default-unreachable-toleration-seconds=3",
	))
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func boundPod(name, node string, tolerations ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: tolerations,
			Containers:  []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

func waitRunning(t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		var err error
		p, err = cs.CoreV1().Pods("default").Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodReady)
		return p.Status.Phase == corev1.PodRunning && c != nil && c.Status == corev1.ConditionTrue, nil
	}, "pod %s Running and Ready", name)
	return p
}

func hasEvent(t *testing.T, cs kubernetes.Interface, kind, name, reason, message string) (bool, error) {
	list, err := cs.CoreV1().Events("").List(ctx(t), metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason && strings.Contains(e.Message, message) {
			return true, nil
		}
	}
	return false, nil
}

// TestUnreachableNode kills a hollow node's agent: the node turns Unknown
// and tainted unreachable, its pods not Ready, and a pod tolerating the
// taint for its default 3 seconds is evicted while one tolerating it
// forever stays. When the agent comes back, the taints go.
func TestUnreachableNode(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	alive := s.StartHollowAgent(t, 2, heartbeat)
	doomed := s.StartHollowAgent(t, 1, heartbeat)
	node := doomed.NodeNames()[0]

	forever := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	for _, p := range []*corev1.Pod{boundPod("evicted", node), boundPod("stays", node, forever)} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// DefaultTolerationSeconds: both tolerations with the configured 3s;
	// a pod tolerating unreachable itself only gets the not-ready one.
	evicted := waitRunning(t, cs, "evicted")
	want := map[string]int64{corev1.TaintNodeNotReady: 3, corev1.TaintNodeUnreachable: 3}
	for _, tol := range evicted.Spec.Tolerations {
		if s, ok := want[tol.Key]; ok && tol.Effect == corev1.TaintEffectNoExecute && tol.Operator == corev1.TolerationOpExists &&
			tol.TolerationSeconds != nil && *tol.TolerationSeconds == s {
			delete(want, tol.Key)
		}
	}
	if len(want) != 0 {
		t.Errorf("default tolerations missing %v: %+v", want, evicted.Spec.Tolerations)
	}
	stays := waitRunning(t, cs, "stays")
	if n := len(stays.Spec.Tolerations); n != 2 {
		t.Errorf("pod tolerating unreachable: tolerations %+v, want its own and not-ready's", stays.Spec.Tolerations)
	}

	killed := time.Now()
	doomed.Kill()

	framework.Eventually(t, waitTimeout, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		r := nodeReady(n)
		if r == nil || r.Status != corev1.ConditionUnknown {
			return false, fmt.Errorf("Ready condition %+v", r)
		}
		if r.Reason != "NodeStatusUnknown" || r.Message != "Kubelet stopped posting node status." {
			return false, fmt.Errorf("Ready condition %+v", r)
		}
		if !hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) || !hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) {
			return false, fmt.Errorf("taints %+v", n.Spec.Taints)
		}
		return true, nil
	}, "node %s Unknown and tainted unreachable", node)
	t.Logf("node Unknown and tainted %v after the kill", time.Since(killed).Round(time.Millisecond))

	var evictedAt time.Time
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx(t), "evicted", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("pod is gone: the dead node cannot have finished its deletion")
		}
		if err != nil {
			return false, err
		}
		if p.DeletionTimestamp == nil {
			return false, fmt.Errorf("not being deleted")
		}
		c := podCondition(p, corev1.DisruptionTarget)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "DeletionByTaintManager" {
			return false, fmt.Errorf("DisruptionTarget condition %+v", c)
		}
		if r := podCondition(p, corev1.PodReady); r == nil || r.Status != corev1.ConditionFalse {
			return false, fmt.Errorf("Ready condition %+v", r)
		}
		evictedAt = time.Now()
		return true, nil
	}, "pod evicted from the unreachable node")
	t.Logf("pod evicted %v after the kill", evictedAt.Sub(killed).Round(time.Millisecond))

	// The pod tolerating the taint forever is not being deleted, though it
	// is not Ready any more.
	p, err := cs.CoreV1().Pods("default").Get(ctx(t), "stays", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp != nil {
		t.Error("the pod tolerating unreachable forever was evicted")
	}
	if r := podCondition(p, corev1.PodReady); r == nil || r.Status != corev1.ConditionFalse {
		t.Errorf("pod on the unreachable node: Ready condition %+v, want False", r)
	}
	// The other nodes are untouched.
	for _, name := range alive.NodeNames() {
		n, err := cs.CoreV1().Nodes().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := nodeReady(n); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
			t.Errorf("healthy node %s: Ready %+v, taints %+v", name, r, n.Spec.Taints)
		}
	}
	out := s.MustKubectl(t, "get", "node", node)
	if !strings.Contains(out, "NotReady") {
		t.Errorf("kubectl get node:\n%s", out)
	}
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		return hasEvent(t, cs, "Node", node, "NodeNotReady", "status is now: NodeNotReady")
	}, "NodeNotReady event")
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		return hasEvent(t, cs, "Pod", "evicted", "TaintManagerEviction", "Marking for deletion Pod default/evicted")
	}, "TaintManagerEviction event")

	// The node comes back: Ready, untainted, and it finishes the deletion.
	doomed.Restart()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if r := nodeReady(n); r == nil || r.Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
			return false, fmt.Errorf("Ready %+v, taints %+v", r, n.Spec.Taints)
		}
		return true, nil
	}, "node %s Ready and untainted again", node)
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx(t), "evicted", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, "evicted pod deleted once its node is back")
	waitRunning(t, cs, "stays")
}

// TestCordonedNodeTaint checks the unschedulable NoSchedule taint follows
// spec.unschedulable (kubectl cordon and uncordon).
func TestCordonedNodeTaint(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	a := s.StartHollowAgent(t, 1, heartbeat)
	node := a.NodeNames()[0]
	taintIs := func(want bool) func() (bool, error) {
		return func() (bool, error) {
			n, err := cs.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return hasTaint(n, corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule) == want, nil
		}
	}
	s.MustKubectl(t, "cordon", node)
	framework.Eventually(t, waitTimeout, taintIs(true), "unschedulable taint on the cordoned node")
	s.MustKubectl(t, "uncordon", node)
	framework.Eventually(t, waitTimeout, taintIs(false), "unschedulable taint removed")
}

// TestReplicaSetPodRecreatedElsewhere: a ReplicaSet's pod on a node that
// dies is evicted and replaced by one the scheduler puts on a healthy node.
func TestReplicaSetPodRecreatedElsewhere(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	doomed := s.StartHollowAgent(t, 1, heartbeat)
	dead := doomed.NodeNames()[0]

	labels := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().ReplicaSets("default").Create(ctx(t), rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningOn := func() (map[string]string, error) {
		list, err := cs.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, p := range list.Items {
			if r := podCondition(&p, corev1.PodReady); p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && r != nil && r.Status == corev1.ConditionTrue {
				out[p.Name] = p.Spec.NodeName
			}
		}
		return out, nil
	}
	var first string
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pods, err := runningOn()
		for name, n := range pods {
			if n != dead {
				return false, fmt.Errorf("pod %s on %s", name, n)
			}
			first = name
			return true, nil
		}
		return false, err
	}, "the ReplicaSet's pod Running on the only node")

	alive := s.StartHollowAgent(t, 2, heartbeat)
	doomed.Kill()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pods, err := runningOn()
		if err != nil {
			return false, err
		}
		for name, n := range pods {
			if name != first && n != dead {
				return true, nil
			}
		}
		return false, fmt.Errorf("running pods and nodes: %v", pods)
	}, "a replacement pod Running on a healthy node (%v)", alive.NodeNames())
	p, err := cs.CoreV1().Pods("default").Get(ctx(t), first, metav1.GetOptions{})
	if err == nil && p.DeletionTimestamp == nil {
		t.Errorf("the pod on the dead node was not evicted")
	}
}
