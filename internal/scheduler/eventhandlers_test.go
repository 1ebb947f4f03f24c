package scheduler

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

// TestInformerFlow runs the scheduler on informers of a fake clientset
// whose pods/binding sets spec.nodeName: pods are scheduled, pods of other
// schedulers are not, and a pod that fits nowhere is bound once a node
// that fits it is added.
func TestInformerFlow(t *testing.T) {
	client := fake.NewClientset(testutil.Node("n0", "1", "1Gi", 10))
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
	s, err := New(client, factory, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	factory.Start(ctx.Done())
	go s.Run(ctx)

	create := func(p *corev1.Pod) {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nodeOfPod := func(name string) string {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return p.Spec.NodeName
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	create(testutil.Pod("small", "500m", ""))
	waitFor("small to be bound", func() bool { return nodeOfPod("small") == "n0" })

	other := testutil.Pod("other", "", "")
	other.Spec.SchedulerName = "other-scheduler"
	create(other)
	create(testutil.Pod("big", "2", ""))
	waitFor("big to be unschedulable", func() bool {
		_, _, u := s.Queue.Lengths()
		return u == 1
	})
	if _, err := client.CoreV1().Nodes().Create(ctx, testutil.Node("n1", "4", "4Gi", 10), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("big to be bound to n1", func() bool { return nodeOfPod("big") == "n1" })
	if got := nodeOfPod("other"); got != "" {
		t.Errorf("a pod of another scheduler was bound to %s", got)
	}
	waitFor("the cache to hold both pods", func() bool { return s.Cache.PodCount() == 2 })
}

func TestNodeChange(t *testing.T) {
	base := testutil.Node("n", "1", "1Gi", 10)
	for _, tc := range []struct {
		name   string
		change func(n *corev1.Node)
		want   framework.ActionType
	}{
		{"heartbeat", func(n *corev1.Node) { n.ResourceVersion = "9" }, 0},
		{"labels", func(n *corev1.Node) { n.Labels["a"] = "b" }, framework.UpdateNodeLabel},
		{"taints", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}} }, framework.UpdateNodeTaint},
		{"cordon", func(n *corev1.Node) { n.Spec.Unschedulable = true }, framework.UpdateNodeSpecUnschedulable},
		{"allocatable", func(n *corev1.Node) { n.Status.Allocatable = testutil.Node("n", "2", "1Gi", 10).Status.Allocatable }, framework.UpdateNodeAllocatable},
		{"condition", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		}, framework.UpdateNodeCondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base.DeepCopy()
			tc.change(n)
			if got := nodeChange(base, n); got != tc.want {
				t.Errorf("nodeChange = %b, want %b", got, tc.want)
			}
		})
	}
}
