package job

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

// testNow is the fake clock's start.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness is a controller on a fake clientset whose informers are not
// running: refresh copies the clientset's objects into their stores.
type harness struct {
	t       *testing.T
	c       *Controller
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	clock   *clocktesting.FakeClock
	rec     *record.FakeRecorder
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	var n atomic.Int32
	// The fake tracker does not generate names.
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, n.Add(1))
		}
		if p.UID == "" {
			p.UID = types.UID("uid-" + p.Name)
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(testNow)
	c, err := New(client, factory, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	c.recorder = rec
	h := &harness{t: t, c: c, client: client, factory: factory, clock: clk, rec: rec}
	h.refresh()
	return h
}

// refresh replaces the informer stores' content by the clientset's.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	jobs, err := h.client.BatchV1().Jobs("").List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	pods, err := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var jobObjs, podObjs []any
	for i := range jobs.Items {
		jobObjs = append(jobObjs, &jobs.Items[i])
	}
	for i := range pods.Items {
		podObjs = append(podObjs, &pods.Items[i])
	}
	if err := h.factory.Batch().V1().Jobs().Informer().GetStore().Replace(jobObjs, ""); err != nil {
		h.t.Fatal(err)
	}
	if err := h.factory.Core().V1().Pods().Informer().GetStore().Replace(podObjs, ""); err != nil {
		h.t.Fatal(err)
	}
}

// sync runs one sync of ns/name, then observes its pod writes (as the
// informer would) and refreshes the stores.
func (h *harness) sync(key string) error {
	h.t.Helper()
	h.client.ClearActions()
	err := h.c.syncJob(context.Background(), key)
	h.c.expectations.forget(key)
	h.c.finalizerExpectation.forget(key)
	h.refresh()
	return err
}

func (h *harness) job(name string) *batchv1.Job {
	h.t.Helper()
	j, err := h.client.BatchV1().Jobs("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func (h *harness) pods() []corev1.Pod {
	h.t.Helper()
	l, err := h.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return l.Items
}

// events drains the recorded Events.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// actions returns the verbs and resources of the client's actions since
// the last sync ("create pods", "patch pods", "update jobs/status").
func (h *harness) actions() []string {
	var out []string
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetVerb() == "get" {
			continue
		}
		s := a.GetVerb() + " " + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			s += "/" + sub
		}
		out = append(out, s)
	}
	return out
}

// newJob returns a defaulted job as the API server stores it.
func newJob(name string, completions, parallelism *int32, mutate ...func(*batchv1.Job)) *batchv1.Job {
	uid := types.UID("job-uid-" + name)
	labels := map[string]string{batchv1.ControllerUidLabel: string(uid), batchv1.JobNameLabel: name,
		"controller-uid": string(uid), "job-name": name}
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: uid, ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(testNow.Add(-time.Minute))},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism,
			BackoffLimit:   new(int32(6)),
			CompletionMode: new(batchv1.NonIndexedCompletion),
			Suspend:        new(false),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: string(uid)}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			},
			PodReplacementPolicy: new(batchv1.TerminatingOrFailed),
		},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func indexed(j *batchv1.Job) { j.Spec.CompletionMode = new(batchv1.IndexedCompletion) }

// newPod returns a pod of job in phase, with the tracking finalizer.
func newPod(j *batchv1.Job, name string, phase corev1.PodPhase, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			Labels: j.Spec.Template.Labels, Finalizers: []string{batchv1.JobTrackingFinalizer},
			CreationTimestamp: metav1.NewTime(testNow.Add(-30 * time.Second)),
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(j, jobKind)}},
		Spec:   j.Spec.Template.Spec,
		Status: corev1.PodStatus{Phase: phase},
	}
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		code := int32(0)
		if phase == corev1.PodFailed {
			code = 1
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(testNow.Add(-time.Second))}}}}
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func withIndex(ix string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: ix}
	}
}

func withExitCode(code int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.ContainerStatuses[0].State.Terminated.ExitCode = code }
}

func conditionTypes(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return out
}
