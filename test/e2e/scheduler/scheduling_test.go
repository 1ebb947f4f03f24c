package scheduler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/havre/havre/test/framework"
)

// TestScheduling runs the placement cases on one server; each case has
// nodes of its own (a group label its pods select).
func TestScheduling(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	t.Run("NodeSelector", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		nodes := group(t, cs, "sel", nodeSpec{labels: map[string]string{"disk": "hdd"}}, nodeSpec{labels: map[string]string{"disk": "ssd"}})
		for _, name := range []string{"a", "b", "c"} {
			createPod(t, cs, ns, podSpec{name: name, group: "sel", nodeSelector: map[string]string{"disk": "ssd"}})
		}
		for _, name := range []string{"a", "b", "c"} {
			if got := waitBound(t, cs, ns, name); got != nodes[1] {
				t.Errorf("pod %s bound to %s, want %s (the ssd node)", name, got, nodes[1])
			}
		}
		createPod(t, cs, ns, podSpec{name: "nvme", group: "sel", nodeSelector: map[string]string{"disk": "nvme"}})
		if msg := waitUnschedulable(t, cs, ns, "nvme"); !strings.Contains(msg, "node(s) didn't match Pod's node affinity/selector") {
			t.Errorf("message %q does not name the selector", msg)
		}
	})

	t.Run("NodeAffinity", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		nodes := group(t, cs, "aff",
			nodeSpec{labels: map[string]string{"zone": "z1"}},
			nodeSpec{labels: map[string]string{"zone": "z2"}},
			nodeSpec{labels: map[string]string{"zone": "z3"}})
		required := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"z2", "z3"}}},
			}}},
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"z3"}}},
			}}},
		}}
		for _, name := range []string{"a", "b", "c", "d"} {
			createPod(t, cs, ns, podSpec{name: name, group: "aff", affinity: required})
		}
		for _, name := range []string{"a", "b", "c", "d"} {
			if got := waitBound(t, cs, ns, name); got != nodes[2] {
				t.Errorf("pod %s bound to %s, want the preferred node %s", name, got, nodes[2])
			}
		}
	})

	t.Run("TaintsAndTolerations", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		nodes := group(t, cs, "taint", nodeSpec{taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}}})
		createPod(t, cs, ns, podSpec{name: "plain", group: "taint"})
		if msg := waitUnschedulable(t, cs, ns, "plain"); !strings.Contains(msg, "node(s) had untolerated taint {dedicated: infra}") {
			t.Errorf("message %q does not name the taint", msg)
		}
		createPod(t, cs, ns, podSpec{name: "tolerant", group: "taint", tolerations: []corev1.Toleration{
			{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infra", Effect: corev1.TaintEffectNoSchedule}}})
		if got := waitBound(t, cs, ns, "tolerant"); got != nodes[0] {
			t.Errorf("tolerant pod bound to %s, want %s", got, nodes[0])
		}
	})

	t.Run("Resources", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		group(t, cs, "res", nodeSpec{cpu: "2"}, nodeSpec{cpu: "2", pods: 1})
		got := sets.New[string]()
		for _, name := range []string{"a", "b"} {
			createPod(t, cs, ns, podSpec{name: name, group: "res", cpu: "1500m"})
			got.Insert(waitBound(t, cs, ns, name))
		}
		if got.Len() != 2 {
			t.Errorf("two 1.5-CPU pods share a 2-CPU node: %v", sets.List(got))
		}
		createPod(t, cs, ns, podSpec{name: "c", group: "res", cpu: "1500m"})
		msg := waitUnschedulable(t, cs, ns, "c")
		if want := "0/"; !strings.HasPrefix(msg, want) || !strings.Contains(msg, "Insufficient cpu") || !strings.Contains(msg, "Too many pods") {
			t.Errorf("message %q lacks Insufficient cpu and Too many pods", msg)
		}
	})

	t.Run("HostPorts", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		group(t, cs, "ports", nodeSpec{}, nodeSpec{})
		got := sets.New[string]()
		for _, name := range []string{"a", "b"} {
			createPod(t, cs, ns, podSpec{name: name, group: "ports", hostPort: 8080})
			got.Insert(waitBound(t, cs, ns, name))
		}
		if got.Len() != 2 {
			t.Errorf("two pods with host port 8080 share a node: %v", sets.List(got))
		}
		createPod(t, cs, ns, podSpec{name: "c", group: "ports", hostPort: 8080})
		if msg := waitUnschedulable(t, cs, ns, "c"); !strings.Contains(msg, "2 node(s) didn't have free ports for the requested pod ports") {
			t.Errorf("message %q does not name the ports", msg)
		}
	})

	t.Run("PodAntiAffinityAndAffinity", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		group(t, cs, "anti", nodeSpec{}, nodeSpec{})
		web := map[string]string{"app": "web"}
		anti := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: web}, TopologyKey: corev1.LabelHostname}}}}
		got := sets.New[string]()
		for _, name := range []string{"web-0", "web-1"} {
			createPod(t, cs, ns, podSpec{name: name, group: "anti", labels: web, affinity: anti})
			got.Insert(waitBound(t, cs, ns, name))
		}
		if got.Len() != 2 {
			t.Errorf("anti-affine pods share a node: %v", sets.List(got))
		}
		createPod(t, cs, ns, podSpec{name: "web-2", group: "anti", labels: web, affinity: anti})
		if msg := waitUnschedulable(t, cs, ns, "web-2"); !strings.Contains(msg, "2 node(s) didn't match pod anti-affinity rules") {
			t.Errorf("message %q does not name anti-affinity", msg)
		}
		web0, err := cs.CoreV1().Pods(ns).Get(ctx(t), "web-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Affinity to web-0 alone: label it and select that label.
		web0.Labels["instance"] = "zero"
		if _, err := cs.CoreV1().Pods(ns).Update(ctx(t), web0, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		with := &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "instance": "zero"}}, TopologyKey: corev1.LabelHostname,
		}}}}
		createPod(t, cs, ns, podSpec{name: "cache", group: "anti", affinity: with})
		if got, want := waitBound(t, cs, ns, "cache"), web0.Spec.NodeName; got != want {
			t.Errorf("pod with affinity to web-0 bound to %s, want %s", got, want)
		}
	})

	t.Run("TopologySpread", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		// Two nodes in zone a, one in zone b: spreading over nodes alone
		// would put twice as many pods in a.
		nodes := group(t, cs, "spread",
			nodeSpec{labels: map[string]string{corev1.LabelTopologyZone: "a"}},
			nodeSpec{labels: map[string]string{corev1.LabelTopologyZone: "a"}},
			nodeSpec{labels: map[string]string{corev1.LabelTopologyZone: "b"}})
		zoneOf := map[string]string{nodes[0]: "a", nodes[1]: "a", nodes[2]: "b"}
		lbl := map[string]string{"app": "spread"}
		spread := []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone,
			WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: lbl}}}
		perZone := map[string]int{}
		for _, name := range []string{"p0", "p1", "p2", "p3", "p4", "p5"} {
			createPod(t, cs, ns, podSpec{name: name, group: "spread", labels: lbl, spread: spread})
			perZone[zoneOf[waitBound(t, cs, ns, name)]]++
		}
		if perZone["a"] != 3 || perZone["b"] != 3 {
			t.Errorf("pods per zone %v, want 3 and 3", perZone)
		}
	})

	t.Run("LeastAllocatedSpreads", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		group(t, cs, "least", nodeSpec{cpu: "4"}, nodeSpec{cpu: "4"})
		got := sets.New[string]()
		for _, name := range []string{"a", "b"} {
			createPod(t, cs, ns, podSpec{name: name, group: "least", cpu: "1"})
			got.Insert(waitBound(t, cs, ns, name))
		}
		if got.Len() != 2 {
			t.Errorf("LeastAllocated put both pods on %v, want one per node", sets.List(got))
		}
	})

	t.Run("UnschedulableNode", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		nodes := group(t, cs, "cordon", nodeSpec{})
		node, err := cs.CoreV1().Nodes().Get(ctx(t), nodes[0], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Spec.Unschedulable = true
		if _, err := cs.CoreV1().Nodes().Update(ctx(t), node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		createPod(t, cs, ns, podSpec{name: "p", group: "cordon"})
		if msg := waitUnschedulable(t, cs, ns, "p"); !strings.Contains(msg, "1 node(s) were unschedulable") {
			t.Errorf("message %q does not name the cordoned node", msg)
		}
		// Uncordoning is a cluster event that retries the pod.
		framework.Eventually(t, scheduleTimeout, func() (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx(t), nodes[0], metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			node.Spec.Unschedulable = false
			_, err = cs.CoreV1().Nodes().Update(ctx(t), node, metav1.UpdateOptions{})
			return err == nil, err
		}, "uncordoning %s", nodes[0])
		if got := waitBound(t, cs, ns, "p"); got != nodes[0] {
			t.Errorf("pod bound to %s, want %s", got, nodes[0])
		}
	})

	t.Run("Preemption", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		nodes := group(t, cs, "preempt", nodeSpec{cpu: "1"})
		createPriorityClass(t, cs, "e2e-low", 100, "", false)
		createPriorityClass(t, cs, "e2e-high", 1000, "", false)
		createPriorityClass(t, cs, "e2e-high-never", 1000, corev1.PreemptNever, false)
		createPod(t, cs, ns, podSpec{name: "low", group: "preempt", cpu: "800m", priorityClass: "e2e-low"})
		waitBound(t, cs, ns, "low")

		createPod(t, cs, ns, podSpec{name: "never", group: "preempt", cpu: "800m", priorityClass: "e2e-high-never"})
		if msg := waitUnschedulable(t, cs, ns, "never"); !strings.Contains(msg, "preemption: not eligible due to preemptionPolicy=Never.") {
			t.Errorf("message %q does not say preemptionPolicy=Never", msg)
		}
		if err := cs.CoreV1().Pods(ns).Delete(ctx(t), "never", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}

		high := createPod(t, cs, ns, podSpec{name: "high", group: "preempt", cpu: "800m", priorityClass: "e2e-high"})
		if high.Spec.Priority == nil || *high.Spec.Priority != 1000 {
			t.Fatalf("high pod's priority is %v, want 1000", high.Spec.Priority)
		}
		if got := waitBound(t, cs, ns, "high"); got != nodes[0] {
			t.Errorf("high-priority pod bound to %s, want %s", got, nodes[0])
		}
		framework.Eventually(t, scheduleTimeout, func() (bool, error) {
			_, err := cs.CoreV1().Pods(ns).Get(ctx(t), "low", metav1.GetOptions{})
			return err != nil, nil
		}, "the low-priority victim was not deleted")
		waitEvent(t, cs, ns, "low", "Preempted", "Preempted by pod "+string(high.UID)+" on node "+nodes[0])
	})
}
