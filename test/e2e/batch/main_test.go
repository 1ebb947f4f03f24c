// Package batch_test is the acceptance suite of Havre's Job, CronJob and
// TTL-after-finished controllers: it drives the real havre binary (without
// its node agent) with client-go and the upstream kubectl, the test itself
// acting as scheduler and kubelet (binding pods and reporting their
// phase), and checks the controllers behave as kube-controller-manager's.
package batch_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// waitTimeout bounds the waits for a controller to act.
	waitTimeout = 60 * time.Second
	// nodeName is the node the tests' fake kubelets bind pods to.
	nodeName = "batch-node"
)

// startServer starts a server without agent and registers the node the
// fake kubelets use; e2e tests are skipped with -short.
func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	if _, err := s.Clientset().CoreV1().Nodes().Create(ctx(t), node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	// Fill kubectl's discovery cache once, before parallel subtests run
	// kubectl.
	s.MustKubectl(t, "api-resources")
	return s
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func newNamespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	return framework.NewNamespace(t, cs, "batch")
}

// jobSpec is a Job of busybox pods that never restart.
func jobSpec(name string, completions, parallelism int32, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Completions: &completions, Parallelism: &parallelism,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: "busybox"}},
			}},
		},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func createJob(t *testing.T, cs kubernetes.Interface, ns string, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	created, err := cs.BatchV1().Jobs(ns).Create(ctx(t), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating job %s: %v", j.Name, err)
	}
	return created
}

// waitJobCondition waits until the job has condition type True and
// returns the job.
func waitJobCondition(t *testing.T, cs kubernetes.Interface, ns, name string, typ batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		job = j
		return condition(j, typ) != nil, nil
	}, "job %s/%s to get condition %s", ns, name, typ)
	return job
}

// condition returns the job's condition of type typ if it is True.
func condition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// conditionTypes lists a job's conditions as "Type=Status/Reason".
func conditionTypes(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return out
}

// events returns the Events of an object as "Type Reason Message".
func events(t *testing.T, cs kubernetes.Interface, ns, kind, name string) []string {
	t.Helper()
	l, err := cs.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e.Type+" "+e.Reason+" "+e.Message)
		}
	}
	return out
}

// waitEvent waits for an Event of the object whose "Type Reason Message"
// starts with prefix.
func waitEvent(t *testing.T, cs kubernetes.Interface, ns, kind, name, prefix string) {
	t.Helper()
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		return slices.ContainsFunc(events(t, cs, ns, kind, name), func(e string) bool { return strings.HasPrefix(e, prefix) }), nil
	})
	if err != nil {
		t.Fatalf("no Event %q of %s %s/%s: %v (events: %q)", prefix, kind, ns, name, err, events(t, cs, ns, kind, name))
	}
}

// jobPods lists the pods of a job by its job-name label.
func jobPods(t *testing.T, cs kubernetes.Interface, ns, job string) []corev1.Pod {
	t.Helper()
	l, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	return l.Items
}

// waitGone waits until get reports NotFound.
func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		err := get()
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "%s to be deleted", what)
}
