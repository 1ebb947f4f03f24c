package daemonset

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestShouldRun(t *testing.T) {
	for _, tc := range []struct {
		name            string
		node            *corev1.Node
		ds              func(*appsv1.DaemonSet)
		run, keepRuning bool
	}{
		{"plain", node("n"), nil, true, true},
		{"NoSchedule taint", node("n", tainted("dedicated", corev1.TaintEffectNoSchedule)), nil, false, true},
		{"NoExecute taint", node("n", tainted("dedicated", corev1.TaintEffectNoExecute)), nil, false, false},
		{"PreferNoSchedule taint", node("n", tainted("dedicated", corev1.TaintEffectPreferNoSchedule)), nil, true, true},
		{"tolerated taint", node("n", tainted("dedicated", corev1.TaintEffectNoSchedule)), func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		}, true, true},
		{"unschedulable", node("n", func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
		}), nil, true, true},
		{"not ready", node("n", tainted(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)), nil, true, true},
		{"unreachable", node("n", tainted(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)), nil, true, true},
		{"disk pressure", node("n", tainted(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)), nil, true, true},
		{"memory pressure", node("n", tainted(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)), nil, true, true},
		{"pid pressure", node("n", tainted(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)), nil, true, true},
		{"network unavailable", node("n", tainted(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), nil, false, true},
		{"network unavailable, host network", node("n", tainted(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.HostNetwork = true
		}, true, true},
		{"node selector matches", node("n", labelled("role", "edge")), func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"}
		}, true, true},
		{"node selector misses", node("n"), func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"}
		}, false, false},
		{"required affinity misses", node("n", labelled("zone", "a")), func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}},
				}}},
			}}
		}, false, false},
		{"nodeName elsewhere", node("n"), func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeName = "m" }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := newDS("d")
			if tc.ds != nil {
				tc.ds(ds)
			}
			run, keep := shouldRun(tc.node, ds)
			if run != tc.run || keep != tc.keepRuning {
				t.Errorf("shouldRun = %v, %v; want %v, %v", run, keep, tc.run, tc.keepRuning)
			}
		})
	}
}

func TestOnePodPerEligibleNode(t *testing.T) {
	h := newHarness(t, newDS("agent"),
		node("n1"), node("n2"),
		node("tainted", tainted("dedicated", corev1.TaintEffectNoSchedule)),
		node("cordoned", func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
		}))
	h.mustSync("agent")
	h.mustSync("agent") // nothing more
	byNode := h.podsByNode()
	if got := slices.Sorted(maps.Keys(byNode)); !slices.Equal(got, []string{"cordoned", "n1", "n2"}) {
		t.Fatalf("pods on %v, want cordoned, n1, n2", got)
	}
	for n, pods := range byNode {
		if len(pods) != 1 {
			t.Errorf("node %s has pods %v", n, pods)
		}
	}
	ds := h.ds("agent")
	hash := h.revisions()[0].Labels[hashLabel]
	for _, p := range h.pods() {
		if p.GenerateName != "agent-" || p.Spec.NodeName != "" {
			t.Errorf("pod %s: generateName %q nodeName %q", p.Name, p.GenerateName, p.Spec.NodeName)
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != ds.UID {
			t.Errorf("pod %s controller %v", p.Name, ref)
		}
		if p.Labels[hashLabel] != hash || p.Labels["app"] != "agent" {
			t.Errorf("pod %s labels %v, want hash %s", p.Name, p.Labels, hash)
		}
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Key != "metadata.name" ||
			terms[0].MatchFields[0].Operator != corev1.NodeSelectorOpIn {
			t.Errorf("pod %s affinity %+v", p.Name, terms)
		}
		for _, want := range daemonTolerations {
			if !slices.ContainsFunc(p.Spec.Tolerations, func(got corev1.Toleration) bool { return got == want }) {
				t.Errorf("pod %s lacks toleration %+v", p.Name, want)
			}
		}
	}

	h.kubelet()
	h.mustSync("agent")
	st := h.ds("agent").Status
	want := appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3,
		UpdatedNumberScheduled: 3, NumberAvailable: 3, ObservedGeneration: 1}
	if !equality.Semantic.DeepEqual(st, want) {
		t.Errorf("status = %+v, want %+v", st, want)
	}

	// A new node gets a pod; a node that loses its fit loses it.
	if _, err := h.client.CoreV1().Nodes().Create(context.Background(), node("n3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.mustSync("agent")
	if got := h.podsByNode()["n3"]; len(got) != 1 {
		t.Fatalf("new node n3 has pods %v", got)
	}
	n2, err := h.client.CoreV1().Nodes().Get(context.Background(), "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Spec.Taints = []corev1.Taint{{Key: "evict", Effect: corev1.TaintEffectNoExecute}}
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.mustSync("agent")
	if got := h.podsByNode()["n2"]; len(got) != 0 {
		t.Errorf("n2 (NoExecute taint) still has pods %v", got)
	}
}

func TestMisscheduledCounted(t *testing.T) {
	h := newHarness(t, newDS("agent"), node("n1"), node("n2"))
	h.mustSync("agent")
	h.kubelet()
	// A NoSchedule taint: the pod stays, counted misscheduled.
	n2, err := h.client.CoreV1().Nodes().Get(context.Background(), "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Spec.Taints = []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.mustSync("agent")
	if len(h.pods()) != 2 {
		t.Fatalf("pods %v, want the n2 pod kept", h.podsByNode())
	}
	st := h.ds("agent").Status
	if st.DesiredNumberScheduled != 1 || st.NumberMisscheduled != 1 || st.CurrentNumberScheduled != 1 {
		t.Errorf("status %+v, want desired 1, misscheduled 1", st)
	}
}

// roll runs syncs and the kubelet until the set is stable.
func roll(t *testing.T, h *harness, name string) {
	t.Helper()
	for range 30 {
		before := len(h.client.Actions())
		h.mustSync(name)
		wrote := false
		for _, a := range h.client.Actions()[before:] {
			if v := a.GetVerb(); v == "create" || v == "delete" || (v == "update" && a.GetSubresource() == "status") {
				wrote = true
			}
		}
		if h.kubelet() == 0 && !wrote {
			return
		}
	}
	t.Fatalf("daemonset %s still rolling", name)
}

func TestRollingUpdateMaxUnavailable(t *testing.T) {
	h := newHarness(t, newDS("agent"), node("n1"), node("n2"), node("n3"))
	roll(t, h, "agent")
	h.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "img:2" })

	h.mustSync("agent") // deletes one old pod
	if got := len(h.pods()); got != 2 {
		t.Fatalf("%d pods after the first update sync, want 2 (one deleted)", got)
	}
	h.mustSync("agent") // creates its replacement
	h.mustSync("agent") // which is not ready: nothing else goes
	if got := len(h.pods()); got != 3 {
		t.Fatalf("%d pods, want 3", got)
	}
	updated := 0
	for _, p := range h.pods() {
		if p.Spec.Containers[0].Image == "img:2" {
			updated++
		}
	}
	if updated != 1 {
		t.Fatalf("%d updated pods while the first is not ready, want 1", updated)
	}
	roll(t, h, "agent")
	for _, p := range h.pods() {
		if p.Spec.Containers[0].Image != "img:2" {
			t.Errorf("pod %s still at %s", p.Name, p.Spec.Containers[0].Image)
		}
	}
	st := h.ds("agent").Status
	if st.UpdatedNumberScheduled != 3 || st.NumberAvailable != 3 || st.ObservedGeneration != 2 {
		t.Errorf("status %+v", st)
	}
}

func TestRollingUpdateMaxSurge(t *testing.T) {
	ds := newDS("agent")
	ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{
		MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromInt32(1)),
	}
	h := newHarness(t, ds, node("n1"), node("n2"))
	roll(t, h, "agent")
	h.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "img:2" })
	h.mustSync("agent")
	byNode := h.podsByNode()
	if len(h.pods()) != 3 || (len(byNode["n1"]) != 2 && len(byNode["n2"]) != 2) {
		t.Fatalf("pods by node %v, want one node surged to two pods", byNode)
	}
	h.mustSync("agent")
	if len(h.pods()) != 3 {
		t.Fatalf("the old pod went before the new one was available: %v", h.podsByNode())
	}
	roll(t, h, "agent")
	byNode = h.podsByNode()
	if len(byNode["n1"]) != 1 || len(byNode["n2"]) != 1 {
		t.Fatalf("pods by node %v after the rollout", byNode)
	}
	for _, p := range h.pods() {
		if p.Spec.Containers[0].Image != "img:2" {
			t.Errorf("pod %s still at %s", p.Name, p.Spec.Containers[0].Image)
		}
	}
}

func TestOnDelete(t *testing.T) {
	ds := newDS("agent")
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	h := newHarness(t, ds, node("n1"), node("n2"))
	roll(t, h, "agent")
	h.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "img:2" })
	roll(t, h, "agent")
	for _, p := range h.pods() {
		if p.Spec.Containers[0].Image != "img:1" {
			t.Fatalf("OnDelete replaced %s by itself", p.Name)
		}
	}
	if st := h.ds("agent").Status; st.UpdatedNumberScheduled != 0 || st.ObservedGeneration != 2 {
		t.Errorf("status %+v, want 0 updated, generation 2 observed", st)
	}
	victim := h.podsByNode()["n1"][0]
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	roll(t, h, "agent")
	p := h.podsByNode()["n1"]
	if len(p) != 1 {
		t.Fatalf("n1 pods %v", p)
	}
	for _, pod := range h.pods() {
		if pod.Name == p[0] && pod.Spec.Containers[0].Image != "img:2" {
			t.Errorf("recreated pod at %s", pod.Spec.Containers[0].Image)
		}
	}
}

func TestFailedPodReplacedWithBackoff(t *testing.T) {
	h := newHarness(t, newDS("agent"), node("n1"))
	roll(t, h, "agent")
	fail := func() {
		t.Helper()
		p := h.pods()[0]
		p.Status.Phase = corev1.PodFailed
		if _, err := h.client.CoreV1().Pods("default").UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fail()
	first := h.pods()[0].Name
	h.mustSync("agent") // deletes it
	h.mustSync("agent") // creates a new one
	if p := h.pods(); len(p) != 1 || p[0].Name == first {
		t.Fatalf("pods %v, want a replacement of %s", p, first)
	}
	// Failing again right away: the node is in backoff, the pod stays.
	fail()
	h.mustSync("agent")
	if len(h.pods()) != 1 {
		t.Fatalf("pods %v", h.podsByNode())
	}
	if p := h.pods()[0]; p.Status.Phase != corev1.PodFailed {
		t.Fatalf("the failed pod was deleted during backoff")
	}
}

func TestHistory(t *testing.T) {
	ds := newDS("agent")
	ds.Spec.RevisionHistoryLimit = new(int32(1))
	h := newHarness(t, ds, node("n1"))
	roll(t, h, "agent")
	revs := h.revisions()
	if len(revs) != 1 || revs[0].Revision != 1 || revs[0].Name != "agent-"+revs[0].Labels[hashLabel] {
		t.Fatalf("revisions %+v", revs)
	}
	first := revs[0].Name
	for _, img := range []string{"img:2", "img:3"} {
		h.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = img })
		roll(t, h, "agent")
	}
	revs = h.revisions()
	if len(revs) != 2 || revs[0].Revision != 2 || revs[1].Revision != 3 {
		t.Fatalf("revisions %v, want 2 and 3 (limit 1)", revNames(revs))
	}
	// Rolling back to img:2 renumbers its revision.
	rev2 := revs[0].Name
	h.updateDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "img:2" })
	roll(t, h, "agent")
	revs = h.revisions()
	if last := revs[len(revs)-1]; last.Name != rev2 || last.Revision != 4 {
		t.Fatalf("revisions %v, want %s as 4", revNames(revs), rev2)
	}
	if h.pods()[0].Labels[hashLabel] != revs[len(revs)-1].Labels[hashLabel] {
		t.Errorf("pod hash %s", h.pods()[0].Labels[hashLabel])
	}
	if first == rev2 {
		t.Errorf("two templates share revision %s", first)
	}
}

func TestExpectationsHoldBackAStaleCache(t *testing.T) {
	h := newHarness(t, newDS("agent"), node("n1"), node("n2"))
	h.refresh()
	ctx := context.Background()
	if err := h.c.sync(ctx, "default/agent"); err != nil {
		t.Fatal(err)
	}
	// The informer has not delivered the pods: the set must wait.
	if err := h.c.sync(ctx, "default/agent"); err != nil {
		t.Fatal(err)
	}
	if got := len(h.pods()); got != 2 {
		t.Fatalf("%d pods, want 2 (no duplicates from a stale cache)", got)
	}
	for _, p := range h.pods() {
		h.c.addPod(&p)
	}
	if !h.c.expectations.satisfied("default/agent") {
		t.Error("expectations not satisfied after the pods were observed")
	}
}

func TestMinReadySeconds(t *testing.T) {
	ds := newDS("agent")
	ds.Spec.MinReadySeconds = 10
	h := newHarness(t, ds, node("n1"))
	h.mustSync("agent")
	h.kubelet()
	h.mustSync("agent")
	if st := h.ds("agent").Status; st.NumberReady != 1 || st.NumberAvailable != 0 || st.NumberUnavailable != 1 {
		t.Fatalf("status %+v, want ready but unavailable", st)
	}
	h.clock = h.clock.Add(11 * time.Second)
	h.mustSync("agent")
	if st := h.ds("agent").Status; st.NumberAvailable != 1 || st.NumberUnavailable != 0 {
		t.Fatalf("status %+v, want available", st)
	}
}

func revNames(revs []appsv1.ControllerRevision) []string {
	var out []string
	for _, r := range revs {
		out = append(out, r.Name)
	}
	return out
}
