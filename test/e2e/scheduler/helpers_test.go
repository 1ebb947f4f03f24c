// Package scheduler_test is the acceptance suite of Havre's scheduler: it
// creates Node objects (with capacity, allocatable and a Ready condition;
// no agent runs them) and pods through the API of a real havre server and
// checks where they are bound, the FailedScheduling Events and
// PodScheduled conditions of pods that fit nowhere, retries on cluster
// changes, preemption and the scheduler configuration file.
package scheduler_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// scheduleTimeout bounds every wait for the scheduler.
	scheduleTimeout = 30 * time.Second
	// groupLabel scopes a test's nodes: its pods select them.
	groupLabel = "e2e.havre.dev/group"
)

func startServer(t *testing.T, opts ...framework.Option) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t, append([]framework.Option{noNodeMonitor}, opts...)...)
}

// noNodeMonitor keeps the node lifecycle controller from tainting the
// tests' nodes, which no agent heartbeats, while a slow run goes on.
var noNodeMonitor = framework.WithArgs("--node-monitor-grace-period", "1h")

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func newNamespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	return framework.NewNamespace(t, cs, "sched")
}

// nodeSpec describes a node to create.
type nodeSpec struct {
	name        string
	cpu, memory string
	pods        int
	labels      map[string]string
	taints      []corev1.Taint
}

// createNode creates a Ready node with the given allocatable.
func createNode(t testing.TB, cs kubernetes.Interface, n nodeSpec) *corev1.Node {
	t.Helper()
	out, err := cs.CoreV1().Nodes().Create(ctx(t), nodeFromSpec(n), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", n.name, err)
	}
	return out
}

// nodeFromSpec builds a Ready node.
func nodeFromSpec(n nodeSpec) *corev1.Node {
	if n.cpu == "" {
		n.cpu = "4"
	}
	if n.memory == "" {
		n.memory = "8Gi"
	}
	if n.pods == 0 {
		n.pods = 110
	}
	labels := map[string]string{corev1.LabelHostname: n.name}
	for k, v := range n.labels {
		labels[k] = v
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(n.cpu),
		corev1.ResourceMemory: resource.MustParse(n.memory),
		corev1.ResourcePods:   *resource.NewQuantity(int64(n.pods), resource.DecimalSI),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: n.taints},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
	return node
}

// podSpec describes a pod to create.
type podSpec struct {
	name          string
	labels        map[string]string
	cpu           string
	group         string
	priorityClass string
	tolerations   []corev1.Toleration
	affinity      *corev1.Affinity
	spread        []corev1.TopologySpreadConstraint
	hostPort      int32
	nodeSelector  map[string]string
}

func makePod(ns string, p podSpec) *corev1.Pod {
	c := corev1.Container{Name: "c", Image: "registry.invalid/pause:1"}
	if p.cpu != "" {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(p.cpu)}
	}
	if p.hostPort != 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: p.hostPort}}
	}
	sel := map[string]string{}
	for k, v := range p.nodeSelector {
		sel[k] = v
	}
	if p.group != "" {
		sel[groupLabel] = p.group
	}
	if len(sel) == 0 {
		sel = nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: p.labels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			NodeSelector:                  sel,
			Tolerations:                   p.tolerations,
			Affinity:                      p.affinity,
			TopologySpreadConstraints:     p.spread,
			PriorityClassName:             p.priorityClass,
			TerminationGracePeriodSeconds: new(int64(0)),
		},
	}
}

func createPod(t testing.TB, cs kubernetes.Interface, ns string, p podSpec) *corev1.Pod {
	t.Helper()
	out, err := cs.CoreV1().Pods(ns).Create(ctx(t), makePod(ns, p), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", p.name, err)
	}
	return out
}

// waitBound waits until the pod is bound and returns its node.
func waitBound(t testing.TB, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	var node string
	framework.Eventually(t, scheduleTimeout, func() (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = pod.Spec.NodeName
		return node != "", nil
	}, "pod %s/%s was not bound", ns, name)
	return node
}

// waitUnschedulable waits for PodScheduled=False reason Unschedulable and
// returns its message.
func waitUnschedulable(t testing.TB, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	var msg string
	framework.Eventually(t, scheduleTimeout, func() (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pod.Spec.NodeName != "" {
			return false, fmt.Errorf("pod was bound to %s", pod.Spec.NodeName)
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				msg = c.Message
				return true, nil
			}
		}
		return false, nil
	}, "pod %s/%s did not get PodScheduled=False/Unschedulable", ns, name)
	return msg
}

// waitEvent waits for an event of reason about the pod whose message
// contains want, and returns it.
func waitEvent(t testing.TB, cs kubernetes.Interface, ns, name, reason, want string) corev1.Event {
	t.Helper()
	var found corev1.Event
	var seen []string
	framework.Eventually(t, scheduleTimeout, func() (bool, error) {
		list, err := cs.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
		if err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range list.Items {
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, want) {
				found = e
				return true, nil
			}
		}
		return false, nil
	}, "no %s event containing %q for %s/%s (seen: %q)", reason, want, ns, name, seen)
	return found
}

func createPriorityClass(t testing.TB, cs kubernetes.Interface, name string, value int32, policy corev1.PreemptionPolicy, globalDefault bool) {
	t.Helper()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: globalDefault}
	if policy != "" {
		pc.PreemptionPolicy = &policy
	}
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx(t), pc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating priority class %s: %v", name, err)
	}
}

// group creates n nodes labelled with a group of their own and returns
// the group's name and node names.
func group(t testing.TB, cs kubernetes.Interface, name string, nodes ...nodeSpec) []string {
	t.Helper()
	var names []string
	for i, n := range nodes {
		if n.name == "" {
			n.name = fmt.Sprintf("%s-%d", name, i)
		}
		if n.labels == nil {
			n.labels = map[string]string{}
		}
		n.labels[groupLabel] = name
		createNode(t, cs, n)
		names = append(names, n.name)
	}
	return names
}
