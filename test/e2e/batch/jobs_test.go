package batch_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/test/framework"
)

func TestJobs(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	t.Run("parallelism and completions", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		k := startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return run })
		createJob(t, cs, ns, jobSpec("five", 5, 2))
		// Rounds: the pods the job wants (2, 2, then 1) run together,
		// then they all succeed.
		finished := map[string]bool{}
		for done := 0; done < 5; {
			want := min(2, 5-done)
			var running []string
			framework.Eventually(t, waitTimeout, func() (bool, error) {
				running = nil
				for name, p := range k.pods() {
					if p.Status.Phase == corev1.PodRunning && !finished[name] {
						running = append(running, name)
					}
				}
				return len(running) == want, nil
			}, "%d pods running after %d succeeded", want, done)
			for _, name := range running {
				k.finish(name, 0)
				finished[name] = true
			}
			done += want
		}
		s.MustKubectl(t, "wait", "-n", ns, "--for=condition=complete", "--timeout=60s", "job/five")

		job, err := cs.BatchV1().Jobs(ns).Get(ctx(t), "five", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := job.Status; st.Succeeded != 5 || st.Failed != 0 || st.Active != 0 || st.StartTime == nil || st.CompletionTime == nil ||
			st.Ready == nil || *st.Ready != 0 || st.Terminating == nil || *st.Terminating != 0 ||
			st.UncountedTerminatedPods == nil || len(st.UncountedTerminatedPods.Succeeded) != 0 {
			t.Errorf("status %+v", st)
		}
		if c := conditionTypes(job); !slices.Equal(c, []string{"SuccessCriteriaMet=True/CompletionsReached", "Complete=True/CompletionsReached"}) {
			t.Errorf("conditions %v", c)
		}
		if peak := k.peak(); peak != 2 {
			t.Errorf("at most %d pods were active at once, want parallelism 2", peak)
		}
		pods := jobPods(t, cs, ns, "five")
		if len(pods) != 5 {
			t.Errorf("%d pods, want 5", len(pods))
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodSucceeded || len(p.Finalizers) != 0 || !metav1.IsControlledBy(&p, job) ||
				!strings.HasPrefix(p.Name, "five-") || p.Labels["job-name"] != "five" || p.Labels[batchv1.ControllerUidLabel] != string(job.UID) {
				t.Errorf("pod %s: phase %s, finalizers %v, owners %v, labels %v", p.Name, p.Status.Phase, p.Finalizers, p.OwnerReferences, p.Labels)
			}
		}
		// Events are written asynchronously.
		waitEvent(t, cs, ns, "Job", "five", "Normal Completed Job completed")
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			created := 0
			for _, e := range events(t, cs, ns, "Job", "five") {
				if strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: five-") {
					created++
				}
			}
			return created == 5, nil
		}, "5 SuccessfulCreate Events")
		if out := s.MustKubectl(t, "get", "job", "five", "-n", ns); !strings.Contains(out, "5/5") {
			t.Errorf("kubectl get job:\n%s", out)
		}
	})

	t.Run("backoffLimit", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return fail(1) })
		createJob(t, cs, ns, jobSpec("flaky", 2, 2, func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(1)) }))
		job := waitJobCondition(t, cs, ns, "flaky", batchv1.JobFailed)
		c := condition(job, batchv1.JobFailed)
		if c.Reason != "BackoffLimitExceeded" || c.Message != "Job has reached the specified backoff limit" {
			t.Errorf("Failed condition %+v", c)
		}
		if ft := condition(job, batchv1.JobFailureTarget); ft == nil || ft.Reason != "BackoffLimitExceeded" {
			t.Errorf("conditions %v: no FailureTarget", conditionTypes(job))
		}
		if job.Status.Failed != 2 || job.Status.Succeeded != 0 || job.Status.Active != 0 || job.Status.CompletionTime != nil {
			t.Errorf("status %+v", job.Status)
		}
		// The back-off (10s) kept the first failed pod from being replaced.
		if pods := jobPods(t, cs, ns, "flaky"); len(pods) != 2 {
			t.Errorf("%d pods, want 2", len(pods))
		}
		waitEvent(t, cs, ns, "Job", "flaky", "Warning BackoffLimitExceeded Job has reached the specified backoff limit")
	})

	t.Run("a failed pod is replaced after the back-off", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		first := true
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome {
			if first {
				first = false
				return fail(1)
			}
			return succeed
		})
		createJob(t, cs, ns, jobSpec("retry", 1, 1))
		job := waitJobCondition(t, cs, ns, "retry", batchv1.JobComplete)
		if job.Status.Failed != 1 || job.Status.Succeeded != 1 {
			t.Errorf("status %+v", job.Status)
		}
		pods := jobPods(t, cs, ns, "retry")
		if len(pods) != 2 {
			t.Fatalf("%d pods, want 2", len(pods))
		}
		slices.SortFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
		if d := pods[1].CreationTimestamp.Sub(pods[0].CreationTimestamp.Time); d < 9*time.Second {
			t.Errorf("the replacement came %v after the failed pod, want the 10s back-off", d)
		}
	})

	t.Run("Indexed", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		k := startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return succeed })
		createJob(t, cs, ns, jobSpec("ix", 3, 3, func(j *batchv1.Job) {
			j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
			j.Spec.Template.Spec.Subdomain = "workers"
		}))
		job := waitJobCondition(t, cs, ns, "ix", batchv1.JobComplete)
		if job.Status.CompletedIndexes != "0-2" || job.Status.Succeeded != 3 {
			t.Errorf("completedIndexes %q, succeeded %d", job.Status.CompletedIndexes, job.Status.Succeeded)
		}
		indexes := map[string]bool{}
		for _, p := range k.pods() {
			ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
			indexes[ix] = true
			env := p.Spec.Containers[0].Env
			if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "ix-"+ix || p.Spec.Subdomain != "workers" ||
				!strings.HasPrefix(p.Name, "ix-"+ix+"-") || len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" ||
				env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil ||
				env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("pod %s: index %q, labels %v, hostname %q, subdomain %q, env %+v", p.Name, ix, p.Labels, p.Spec.Hostname, p.Spec.Subdomain, env)
			}
		}
		if len(indexes) != 3 || !indexes["0"] || !indexes["1"] || !indexes["2"] {
			t.Errorf("indexes %v", indexes)
		}
	})

	t.Run("activeDeadlineSeconds", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		k := startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return run })
		created := createJob(t, cs, ns, jobSpec("slow", 1, 1, func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = new(int64(2)) }))
		running := k.waitRunning(t, waitTimeout)
		job := waitJobCondition(t, cs, ns, "slow", batchv1.JobFailed)
		c := condition(job, batchv1.JobFailed)
		if c.Reason != "DeadlineExceeded" || c.Message != "Job was active longer than specified deadline" {
			t.Errorf("Failed condition %+v", c)
		}
		if d := c.LastTransitionTime.Sub(job.Status.StartTime.Time); d < 2*time.Second {
			t.Errorf("failed %v after the start, before the 2s deadline", d)
		}
		if job.Status.Failed != 1 || job.Status.Active != 0 || *job.Status.Terminating != 0 {
			t.Errorf("status %+v", job.Status)
		}
		// The running pod was deleted (the kubelet then killed it).
		waitGone(t, "pod "+running, func() error {
			_, err := cs.CoreV1().Pods(ns).Get(ctx(t), running, metav1.GetOptions{})
			return err
		})
		waitEvent(t, cs, ns, "Job", created.Name, "Warning DeadlineExceeded Job was active longer than specified deadline")
		waitEvent(t, cs, ns, "Job", created.Name, "Normal SuccessfulDelete Deleted pod: "+running)
	})

	t.Run("podFailurePolicy", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return fail(42) })
		createJob(t, cs, ns, jobSpec("policy", 3, 1, func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
			}}
		}))
		job := waitJobCondition(t, cs, ns, "policy", batchv1.JobFailed)
		c := condition(job, batchv1.JobFailed)
		pods := jobPods(t, cs, ns, "policy")
		if len(pods) != 1 {
			t.Fatalf("%d pods, want 1", len(pods))
		}
		want := "Container work for pod " + ns + "/" + pods[0].Name + " failed with exit code 42 matching FailJob rule at index 1"
		if c.Reason != "PodFailurePolicy" || c.Message != want {
			t.Errorf("Failed condition %+v, want message %q", c, want)
		}
		if job.Status.Failed != 1 {
			t.Errorf("status %+v", job.Status)
		}
	})

	t.Run("suspend", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return succeed })
		createJob(t, cs, ns, jobSpec("later", 2, 2, func(j *batchv1.Job) { j.Spec.Suspend = new(true) }))
		job := waitJobCondition(t, cs, ns, "later", batchv1.JobSuspended)
		if pods := jobPods(t, cs, ns, "later"); len(pods) != 0 || job.Status.StartTime != nil {
			t.Fatalf("suspended job: %d pods, startTime %v", len(pods), job.Status.StartTime)
		}
		if _, err := cs.BatchV1().Jobs(ns).Patch(ctx(t), "later", types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		job = waitJobCondition(t, cs, ns, "later", batchv1.JobComplete)
		if !slices.Contains(conditionTypes(job), "Suspended=False/JobResumed") || job.Status.Succeeded != 2 {
			t.Errorf("conditions %v, succeeded %d", conditionTypes(job), job.Status.Succeeded)
		}
		waitEvent(t, cs, ns, "Job", "later", "Normal Suspended Job suspended")
		waitEvent(t, cs, ns, "Job", "later", "Normal Resumed Job resumed")
	})

	t.Run("deleting a running job", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		k := startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return run })
		createJob(t, cs, ns, jobSpec("doomed", 2, 2))
		k.waitRunning(t, waitTimeout)
		// kubectl deletes in the background: the job goes at once, and
		// its pods, which keep their tracking finalizer while it runs,
		// must still go.
		s.MustKubectl(t, "delete", "job", "doomed", "-n", ns, "--wait=false")
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			return len(jobPods(t, cs, ns, "doomed")) == 0, nil
		}, "the pods of the deleted job to be deleted")
	})

	t.Run("ttlSecondsAfterFinished", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return succeed })
		createJob(t, cs, ns, jobSpec("brief", 1, 1, func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(0)) }))
		waitGone(t, "job brief", func() error {
			_, err := cs.BatchV1().Jobs(ns).Get(ctx(t), "brief", metav1.GetOptions{})
			return err
		})
		// It was deleted because it finished, with its pods.
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			return len(jobPods(t, cs, ns, "brief")) == 0, nil
		}, "the pods of the deleted job to be deleted")
		waitEvent(t, cs, ns, "Job", "brief", "Normal Completed Job completed")
	})
}
