// Package workloads_test is the end-to-end suite of Havre's ReplicaSet and
// Deployment controllers: a real `havre server` (without its agent) runs
// the controllers, and the test itself plays the node: it registers a Node,
// binds pending pods to it through the binding subresource, reports them
// Running and Ready (or not, when a test says so) and finishes their
// graceful deletion, as a kubelet would. Rollouts are then driven and
// checked with the upstream kubectl (`rollout status/history/undo/pause/
// resume/restart`, `scale`, `set image`, `delete --cascade`) and client-go
// watches.
//
// One test runs Deployments on the real node agent instead; it needs root
// and containerd, and is skipped without them.
package workloads_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// callTimeout bounds single API calls.
	callTimeout = 30 * time.Second
	// rolloutTimeout bounds every wait for the controllers.
	rolloutTimeout = 90 * time.Second
)

// startServer starts a server without an agent for one top-level test
// (skipped with -short) and fills kubectl's discovery cache once, so that
// parallel subtests do not all discover the API at the same time.
func startServer(t testing.TB) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t)
	s.MustKubectl(t, "api-resources")
	return s
}

// ctxFor returns a context bounded by callTimeout and by the test's end.
func ctxFor(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return c
}

func newNamespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	return framework.NewNamespace(t, cs, prefix)
}

// deployment is a Deployment of replicas pods of image (the fake node runs
// any image), RollingUpdate with the defaults.
func deployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "app", Image: image}},
					TerminationGracePeriodSeconds: new(int64(1)),
				},
			},
		},
	}
}

func withStrategy(d *appsv1.Deployment, maxSurge, maxUnavailable intstr.IntOrString) *appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable},
	}
	return d
}

func createDeployment(t testing.TB, cs kubernetes.Interface, ns string, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	out, err := cs.AppsV1().Deployments(ns).Create(ctxFor(t), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment %s/%s: %v", ns, d.Name, err)
	}
	return out
}

func getDeployment(t testing.TB, cs kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(ctxFor(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting deployment %s/%s: %v", ns, name, err)
	}
	return d
}

// complete reports whether d finished its rollout as `kubectl rollout
// status` judges it.
func complete(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation &&
		d.Status.UpdatedReplicas == *d.Spec.Replicas &&
		d.Status.Replicas == *d.Spec.Replicas &&
		d.Status.AvailableReplicas == *d.Spec.Replicas
}

// waitDeployment waits until cond holds for the Deployment and returns it;
// on timeout it reports the status.
func waitDeployment(t testing.TB, cs kubernetes.Interface, ns, name, what string, cond func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	var last *appsv1.Deployment
	err := framework.WaitFor(rolloutTimeout, func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctxFor(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = d
		return cond(d), nil
	})
	if err != nil {
		t.Fatalf("deployment %s/%s: %s: %v\nlast: %s", ns, name, what, err, describe(last))
	}
	return last
}

// describe summarises a Deployment's status for failure messages.
func describe(d *appsv1.Deployment) string {
	if d == nil {
		return "(none)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "generation=%d observed=%d replicas=%d updated=%d ready=%d available=%d unavailable=%d",
		d.Generation, d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas,
		d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	for _, c := range d.Status.Conditions {
		fmt.Fprintf(&b, "\n  %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// replicaSets lists the ReplicaSets a Deployment controls.
func replicaSets(t testing.TB, cs kubernetes.Interface, d *appsv1.Deployment) []appsv1.ReplicaSet {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets(d.Namespace).List(ctxFor(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	return out
}

// podsOf lists the live pods with the label app=name.
func podsOf(t testing.TB, cs kubernetes.Interface, ns, name string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func image(p *corev1.Pod) string { return p.Spec.Containers[0].Image }

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
