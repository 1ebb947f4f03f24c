// Package statefulset_test is the end-to-end suite of Havre's StatefulSet
// controller: a real `havre server` without node agent, whose Node
// objects a fake kubelet plays (test/e2e/internal/fakekubelet), runs
// StatefulSets created with client-go and driven with the upstream
// kubectl (scale, rollout status/history/undo), and the tests check pod
// order, identities, claims, updates and status as kube-controller-manager
// would leave them.
package statefulset_test

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// waitTimeout bounds every wait for the controllers.
	waitTimeout = 60 * time.Second
)

// startServer starts a server without agent and fills kubectl's discovery
// cache once.
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
	return framework.NewNamespace(t, cs, "sts")
}

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// newSet returns a set of replicas pods of image registry.example/web:1
// with a claim template "data".
func newSet(name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "registry.example/web:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("1Gi"),
					}},
				},
			}},
		},
	}
}

func createSet(t testing.TB, cs kubernetes.Interface, ns string, set *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	out, err := cs.AppsV1().StatefulSets(ns).Create(ctx(t), set, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating statefulset %s: %v", set.Name, err)
	}
	return out
}

// waitSet waits until the set satisfies cond.
func waitSet(t testing.TB, cs kubernetes.Interface, ns, name string, cond func(*appsv1.StatefulSet) bool, what string) *appsv1.StatefulSet {
	t.Helper()
	var last *appsv1.StatefulSet
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = s
		return cond(s), nil
	})
	if err != nil {
		var st any
		if last != nil {
			st = last.Status
		}
		t.Fatalf("statefulset %s/%s: %s: %v (last status %+v)", ns, name, what, err, st)
	}
	return last
}

// podNames lists the names of the pods of ns, sorted.
func podNames(t testing.TB, cs kubernetes.Interface, ns string) []string {
	t.Helper()
	var names []string
	for _, p := range pods(t, cs, ns) {
		names = append(names, p.Name)
	}
	return names
}

func pods(t testing.TB, cs kubernetes.Interface, ns string) []corev1.Pod {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l.Items, func(a, b corev1.Pod) int { return compare(a.Name, b.Name) })
	return l.Items
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
