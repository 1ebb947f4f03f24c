// Package daemonset_test is the end-to-end suite of Havre's DaemonSet
// controller: a real `havre server` places daemon pods on the nodes that
// fit them, Node objects played by a fake kubelet
// (test/e2e/internal/fakekubelet) or hollow nodes (`havre agent
// --hollow`), and the tests check placement, rolling updates, history and
// the status `kubectl rollout status` reads.
package daemonset_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// waitTimeout bounds every wait for the controllers.
	waitTimeout = 60 * time.Second
)

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t)
	s.MustKubectl(t, "api-resources")
	return s
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func newNamespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	return framework.NewNamespace(t, cs, "ds")
}

// newDS returns a daemon set of image registry.example/agent:1.
func newDS(name string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "agent", Image: "registry.example/agent:1",
				}}},
			},
		},
	}
}

func createDS(t testing.TB, cs kubernetes.Interface, ns string, ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	t.Helper()
	out, err := cs.AppsV1().DaemonSets(ns).Create(ctx(t), ds, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating daemonset %s: %v", ds.Name, err)
	}
	return out
}

// waitDS waits until the set satisfies cond.
func waitDS(t testing.TB, cs kubernetes.Interface, ns, name string, cond func(*appsv1.DaemonSet) bool, what string) *appsv1.DaemonSet {
	t.Helper()
	var last *appsv1.DaemonSet
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = ds
		return cond(ds), nil
	})
	if err != nil {
		var st any
		if last != nil {
			st = last.Status
		}
		t.Fatalf("daemonset %s/%s: %s: %v (last status %+v)", ns, name, what, err, st)
	}
	return last
}

// rolledOut is what `kubectl rollout status` waits for, with every desired
// node covered.
func rolledOut(desired int32) func(*appsv1.DaemonSet) bool {
	return func(ds *appsv1.DaemonSet) bool {
		st := ds.Status
		return st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled == desired &&
			st.CurrentNumberScheduled == desired && st.UpdatedNumberScheduled == desired &&
			st.NumberAvailable == desired && st.NumberReady == desired && st.NumberUnavailable == 0
	}
}

// podsByNode maps node names to the names of the live pods bound there.
func podsByNode(t testing.TB, cs kubernetes.Interface, ns string) map[string][]string {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
		}
	}
	return out
}

func nodesOf(byNode map[string][]string) []string {
	return slices.Sorted(maps.Keys(byNode))
}

// waitPlacement waits until exactly one live pod runs on each of nodes,
// and none elsewhere.
func waitPlacement(t testing.TB, cs kubernetes.Interface, ns string, nodes ...string) map[string][]string {
	t.Helper()
	want := slices.Sorted(slices.Values(nodes))
	var last map[string][]string
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		last = podsByNode(t, cs, ns)
		if !slices.Equal(nodesOf(last), want) {
			return false, nil
		}
		for _, pods := range last {
			if len(pods) != 1 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("one daemon pod on each of %v: %v (last %v)", want, err, last)
	}
	return last
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
