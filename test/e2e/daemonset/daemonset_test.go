package daemonset_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/e2e/internal/fakekubelet"
	"github.com/havre/havre/test/e2e/internal/podwatch"
	"github.com/havre/havre/test/framework"
)

// upstreamTolerations are the tolerations the controller adds to every
// daemon pod.
var upstreamTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

func TestDaemonSet(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	k := fakekubelet.Start(t, cs,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tainted"}, Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}},
		}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cordoned"}, Spec: corev1.NodeSpec{Unschedulable: true}},
	)
	ns := newNamespace(t, cs)
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		return s.MustKubectl(t, append([]string{"-n", ns}, args...)...)
	}

	t.Run("lands on every eligible node", func(t *testing.T) {
		createDS(t, cs, ns, newDS("agent"))
		// The tainted node is skipped; the cordoned one is not.
		waitPlacement(t, cs, ns, "node-a", "node-b", "cordoned")
		out := kubectl(t, "rollout", "status", "daemonset/agent", "--timeout=60s")
		if !strings.Contains(out, `daemon set "agent" successfully rolled out`) {
			t.Errorf("kubectl rollout status: %q", out)
		}
		ds := waitDS(t, cs, ns, "agent", rolledOut(3), "rolled out on 3 nodes")
		if ds.Status.NumberMisscheduled != 0 || ds.Status.ObservedGeneration != ds.Generation {
			t.Errorf("status %+v", ds.Status)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != ds.UID {
				t.Errorf("%s: controller %v", p.Name, ref)
			}
			if !strings.HasPrefix(p.Name, "agent-") || p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
				t.Errorf("%s: labels %v", p.Name, p.Labels)
			}
			// Placed by required node affinity on its node's name.
			a := p.Spec.Affinity
			if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
				t.Errorf("%s: no required node affinity", p.Name)
				continue
			}
			terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Key != "metadata.name" ||
				!slices.Equal(terms[0].MatchFields[0].Values, []string{p.Spec.NodeName}) {
				t.Errorf("%s on %s: affinity terms %+v", p.Name, p.Spec.NodeName, terms)
			}
			for _, want := range upstreamTolerations {
				if !slices.ContainsFunc(p.Spec.Tolerations, func(got corev1.Toleration) bool {
					return got.Key == want.Key && got.Operator == want.Operator && got.Effect == want.Effect
				}) {
					t.Errorf("%s: no toleration %s:%s", p.Name, want.Key, want.Effect)
				}
			}
		}
		// One SuccessfulCreate event per pod, as upstream words it.
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			l, err := cs.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			created := 0
			for _, e := range l.Items {
				if e.InvolvedObject.Kind == "DaemonSet" && e.InvolvedObject.Name == "agent" && e.Reason == "SuccessfulCreate" &&
					strings.HasPrefix(e.Message, "Created pod: agent-") && e.Source.Component == "daemonset-controller" {
					created++
				}
			}
			return created == 3, nil
		}, "3 SuccessfulCreate events of daemonset agent")
		out = kubectl(t, "get", "daemonset", "agent")
		if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) < 6 || f[1] != "3" || f[2] != "3" || f[3] != "3" || f[4] != "3" || f[5] != "3" {
			t.Errorf("kubectl get daemonset:\n%s", out)
		}
	})

	t.Run("a new node gets a pod", func(t *testing.T) {
		k.AddNode(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}})
		waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned")
		waitDS(t, cs, ns, "agent", rolledOut(4), "rolled out on 4 nodes")
	})

	t.Run("rolling update", func(t *testing.T) {
		before := podsByNode(t, cs, ns)
		w := podwatch.Start(t, cs, ns)
		kubectl(t, "set", "image", "daemonset/agent", "agent=registry.example/agent:2")
		out := kubectl(t, "rollout", "status", "daemonset/agent", "--timeout=60s")
		if !strings.Contains(out, "successfully rolled out") {
			t.Errorf("kubectl rollout status: %q", out)
		}
		ds := waitDS(t, cs, ns, "agent", rolledOut(4), "rolled out on 4 nodes")
		after := waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned")
		pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hash := ""
		for _, p := range pods.Items {
			if p.Spec.Containers[0].Image != "registry.example/agent:2" {
				t.Errorf("%s: image %s", p.Name, p.Spec.Containers[0].Image)
			}
			if hash == "" {
				hash = p.Labels[appsv1.ControllerRevisionHashLabelKey]
			} else if h := p.Labels[appsv1.ControllerRevisionHashLabelKey]; h != hash {
				t.Errorf("%s: hash %s, another pod has %s", p.Name, h, hash)
			}
		}
		for node, names := range after {
			if slices.Equal(names, before[node]) {
				t.Errorf("node %s kept pod %v", node, names)
			}
		}
		if ds.Status.UpdatedNumberScheduled != 4 {
			t.Errorf("status %+v", ds.Status)
		}
		// maxUnavailable 1: at no point were two nodes without a ready pod.
		if worst := fewestReadyNodes(w); worst < 3 {
			t.Errorf("at one point only %d of 4 nodes had a ready pod; events:\n%s", worst, w.Dump())
		}
	})

	t.Run("surge", func(t *testing.T) {
		w := podwatch.Start(t, cs, ns)
		kubectl(t, "patch", "daemonset/agent", "-p",
			`{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":0,"maxSurge":"50%"}},"template":{"spec":{"containers":[{"name":"agent","image":"registry.example/agent:3"}]}}}}`)
		kubectl(t, "rollout", "status", "daemonset/agent", "--timeout=60s")
		waitDS(t, cs, ns, "agent", rolledOut(4), "rolled out on 4 nodes")
		waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned")
		// No node ever went without a ready pod.
		if worst := fewestReadyNodes(w); worst < 4 {
			t.Errorf("at one point only %d of 4 nodes had a ready pod; events:\n%s", worst, w.Dump())
		}
	})

	t.Run("rollout history and undo", func(t *testing.T) {
		out := kubectl(t, "rollout", "history", "daemonset/agent")
		if !hasRevisions(out, "1", "2", "3") {
			t.Fatalf("kubectl rollout history:\n%s", out)
		}
		kubectl(t, "rollout", "undo", "daemonset/agent", "--to-revision=1")
		kubectl(t, "rollout", "status", "daemonset/agent", "--timeout=60s")
		waitDS(t, cs, ns, "agent", rolledOut(4), "rolled back on 4 nodes")
		pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image != "registry.example/agent:1" {
				t.Errorf("%s: image %s after undo", p.Name, p.Spec.Containers[0].Image)
			}
		}
		// Revision 1 became revision 4.
		out = kubectl(t, "rollout", "history", "daemonset/agent")
		if !hasRevisions(out, "2", "3", "4") || hasRevisions(out, "1") {
			t.Errorf("kubectl rollout history after undo:\n%s", out)
		}
	})

	t.Run("a toleration opens the tainted node", func(t *testing.T) {
		kubectl(t, "patch", "daemonset/agent", "-p",
			`{"spec":{"template":{"spec":{"tolerations":[{"key":"dedicated","operator":"Exists","effect":"NoSchedule"}]}}}}`)
		waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned", "tainted")
		waitDS(t, cs, ns, "agent", rolledOut(5), "rolled out on 5 nodes")
	})

	t.Run("node selector", func(t *testing.T) {
		ns := newNamespace(t, cs)
		ds := newDS("edge")
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"}
		createDS(t, cs, ns, ds)
		waitDS(t, cs, ns, "edge", rolledOut(0), "no node selected")
		labelNode(t, cs, "node-b", `{"metadata":{"labels":{"role":"edge"}}}`)
		waitPlacement(t, cs, ns, "node-b")
		waitDS(t, cs, ns, "edge", rolledOut(1), "rolled out on node-b")
		labelNode(t, cs, "node-b", `{"metadata":{"labels":{"role":null}}}`)
		waitPlacement(t, cs, ns)
		waitDS(t, cs, ns, "edge", rolledOut(0), "gone from node-b")
	})

	t.Run("on delete", func(t *testing.T) {
		ns := newNamespace(t, cs)
		ds := newDS("od")
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		createDS(t, cs, ns, ds)
		byNode := waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned")
		waitDS(t, cs, ns, "od", rolledOut(4), "up on 4 nodes")
		s.MustKubectl(t, "-n", ns, "set", "image", "daemonset/od", "agent=registry.example/agent:2")
		waitDS(t, cs, ns, "od", func(ds *appsv1.DaemonSet) bool {
			return ds.Status.ObservedGeneration == ds.Generation && ds.Status.UpdatedNumberScheduled == 0
		}, "the new template observed, nothing updated")
		if _, errOut, err := s.Kubectl("-n", ns, "rollout", "status", "daemonset/od"); err == nil ||
			!strings.Contains(errOut, "rollout status is only available for RollingUpdate strategy type") {
			t.Errorf("kubectl rollout status of an OnDelete set: %v, %q", err, errOut)
		}
		if err := cs.CoreV1().Pods(ns).Delete(ctx(t), byNode["node-a"][0], metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitDS(t, cs, ns, "od", func(ds *appsv1.DaemonSet) bool {
			return ds.Status.UpdatedNumberScheduled == 1 && ds.Status.NumberReady == 4
		}, "one pod replaced")
		after := waitPlacement(t, cs, ns, "node-a", "node-b", "node-c", "cordoned")
		for node, pods := range after {
			if node != "node-a" && !slices.Equal(pods, byNode[node]) {
				t.Errorf("node %s: pods %v, were %v", node, pods, byNode[node])
			}
		}
	})
}

// TestDaemonSetOnHollowNodes runs a daemon set across hollow nodes (`havre
// agent --hollow`, bound by the scheduler, run by the hollow kubelets)
// and a fake kubelet's node.
func TestDaemonSetOnHollowNodes(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	a := s.StartHollowAgent(t, 3)
	fakekubelet.Start(t, cs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fake-0"}})
	ns := newNamespace(t, cs)
	createDS(t, cs, ns, newDS("everywhere"))
	nodes := append(a.NodeNames(), "fake-0")
	waitPlacement(t, cs, ns, nodes...)
	out := s.MustKubectl(t, "-n", ns, "rollout", "status", "daemonset/everywhere", "--timeout=60s")
	if !strings.Contains(out, "successfully rolled out") {
		t.Errorf("kubectl rollout status: %q", out)
	}
	waitDS(t, cs, ns, "everywhere", rolledOut(4), "rolled out on 4 nodes")
	pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("%s on %s: phase %s, ready %v", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p))
		}
	}
}

func labelNode(t *testing.T, cs kubernetes.Interface, name, patch string) {
	t.Helper()
	if _, err := cs.CoreV1().Nodes().Patch(ctx(t), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching node %s: %v", name, err)
	}
}

// fewestReadyNodes replays the watch and returns the fewest nodes that had
// a live ready pod at any point.
func fewestReadyNodes(w *podwatch.Watch) int {
	state := map[string]*corev1.Pod{}
	for i := range w.Initial {
		state[w.Initial[i].Name] = &w.Initial[i]
	}
	count := func() int {
		nodes := map[string]bool{}
		for _, p := range state {
			if p.DeletionTimestamp == nil && podwatch.Ready(p) {
				nodes[p.Spec.NodeName] = true
			}
		}
		return len(nodes)
	}
	worst := count()
	for _, e := range w.Events() {
		if e.Type == watch.Deleted {
			delete(state, e.Pod.Name)
		} else {
			state[e.Pod.Name] = e.Pod
		}
		worst = min(worst, count())
	}
	return worst
}

// hasRevisions reports whether `kubectl rollout history` output lists
// every revision of revs.
func hasRevisions(out string, revs ...string) bool {
	listed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, r := range revs {
		if !listed[r] {
			return false
		}
	}
	return true
}
