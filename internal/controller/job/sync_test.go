package job

import (
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestManagePodCount(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		completions, parallelism *int32
		succeeded                int32
		active                   int
		suspend                  bool
		wantCreate, wantDelete   int
		wantActive               int32
	}{
		{"creates up to parallelism", new(int32(5)), new(int32(2)), 0, 0, false, 2, 0, 2},
		{"creates the remaining completions only", new(int32(5)), new(int32(2)), 4, 0, false, 1, 0, 1},
		{"tops up", new(int32(5)), new(int32(3)), 0, 1, false, 2, 0, 3},
		{"work queue: parallelism", nil, new(int32(3)), 0, 0, false, 3, 0, 3},
		{"work queue after a success: nothing new", nil, new(int32(3)), 1, 1, false, 0, 0, 1},
		{"too many: deletes", new(int32(5)), new(int32(1)), 0, 3, false, 0, 2, 1},
		{"parallelism 0", new(int32(5)), new(int32(0)), 0, 0, false, 0, 0, 0},
		{"suspended: deletes all", new(int32(5)), new(int32(2)), 0, 2, true, 0, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob("j", tc.completions, tc.parallelism, func(j *batchv1.Job) {
				j.Spec.Suspend = new(tc.suspend)
				j.Status.Succeeded = tc.succeeded
				j.Status.StartTime = &metav1.Time{Time: testNow}
			})
			objs := []runtime.Object{j}
			for i := range tc.active {
				objs = append(objs, newPod(j, "p"+string(rune('a'+i)), corev1.PodRunning))
			}
			h := newHarness(t, objs...)
			if err := h.sync("ns/j"); err != nil {
				t.Fatal(err)
			}
			var creates, deletes int
			for _, a := range h.actions() {
				switch a {
				case "create pods":
					creates++
				case "delete pods":
					deletes++
				}
			}
			if creates != tc.wantCreate || deletes != tc.wantDelete {
				t.Errorf("created %d and deleted %d pods, want %d and %d (actions %v)", creates, deletes, tc.wantCreate, tc.wantDelete, h.actions())
			}
			got := h.job("j")
			if got.Status.Active != tc.wantActive {
				t.Errorf("status.active = %d, want %d", got.Status.Active, tc.wantActive)
			}
			if tc.suspend != slices.Contains(conditionTypes(got), "Suspended=True/JobSuspended") {
				t.Errorf("conditions %v (suspended %v)", conditionTypes(got), tc.suspend)
			}
			// Pods deleted for scale-down or suspension lose the
			// finalizer first: they are not failures.
			if tc.wantDelete > 0 && got.Status.Failed != 0 {
				t.Errorf("status.failed = %d after deleting surplus pods", got.Status.Failed)
			}
		})
	}
}

func TestCreatedPods(t *testing.T) {
	j := newJob("work", new(int32(2)), new(int32(2)))
	h := newHarness(t, j)
	if err := h.sync("ns/work"); err != nil {
		t.Fatal(err)
	}
	pods := h.pods()
	if len(pods) != 2 {
		t.Fatalf("%d pods, want 2", len(pods))
	}
	for _, p := range pods {
		if p.GenerateName != "work-" || !strings.HasPrefix(p.Name, "work-") {
			t.Errorf("pod %s has generateName %q", p.Name, p.GenerateName)
		}
		if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s has finalizers %v", p.Name, p.Finalizers)
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != j.UID || ref.Kind != "Job" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s has controller %+v", p.Name, ref)
		}
		for _, l := range []string{batchv1.JobNameLabel, batchv1.ControllerUidLabel, "job-name", "controller-uid"} {
			if p.Labels[l] == "" {
				t.Errorf("pod %s lacks label %s", p.Name, l)
			}
		}
	}
	got := h.job("work")
	if got.Status.StartTime == nil || !got.Status.StartTime.Time.Equal(testNow) || got.Status.Active != 2 ||
		got.Status.Ready == nil || got.Status.Terminating == nil || got.Status.UncountedTerminatedPods == nil {
		t.Errorf("status %+v", got.Status)
	}
	ev := h.events()
	if len(ev) != 2 || !strings.HasPrefix(ev[0], "Normal SuccessfulCreate Created pod: work-") {
		t.Errorf("events %q", ev)
	}
}

func TestIndexedJob(t *testing.T) {
	j := newJob("ix", new(int32(3)), new(int32(3)), indexed)
	h := newHarness(t, j)
	if err := h.sync("ns/ix"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range h.pods() {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		seen[ix] = true
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
			t.Errorf("pod %s: index label %q, annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
		}
		if p.Spec.Hostname != "ix-"+ix || p.GenerateName != "ix-"+ix+"-" {
			t.Errorf("pod %s: hostname %q, generateName %q", p.Name, p.Spec.Hostname, p.GenerateName)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil ||
			env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("pod %s env %+v", p.Name, env)
		}
	}
	if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
		t.Fatalf("indexes %v", seen)
	}

	// Indexes 0 and 2 succeed (twice for 2: a duplicate counts once).
	for _, p := range h.pods() {
		if ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]; ix != "1" {
			p.Status.Phase = corev1.PodSucceeded
			if _, err := h.client.CoreV1().Pods("ns").UpdateStatus(t.Context(), &p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	extra := newPod(j, "ix-2-dup", corev1.PodSucceeded, withIndex("2"))
	if _, err := h.client.CoreV1().Pods("ns").Create(t.Context(), extra, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	if err := h.sync("ns/ix"); err != nil {
		t.Fatal(err)
	}
	got := h.job("ix")
	if got.Status.CompletedIndexes != "0,2" || got.Status.Succeeded != 2 || got.Status.Active != 1 {
		t.Errorf("completedIndexes %q, succeeded %d, active %d", got.Status.CompletedIndexes, got.Status.Succeeded, got.Status.Active)
	}
	for _, p := range h.pods() {
		if p.Status.Phase == corev1.PodSucceeded && slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("succeeded pod %s kept its finalizer", p.Name)
		}
	}
	// Index 1 succeeds too: the job completes.
	for _, p := range h.pods() {
		if p.Status.Phase != corev1.PodSucceeded {
			p.Status.Phase = corev1.PodSucceeded
			if _, err := h.client.CoreV1().Pods("ns").UpdateStatus(t.Context(), &p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.refresh()
	if err := h.sync("ns/ix"); err != nil {
		t.Fatal(err)
	}
	got = h.job("ix")
	if got.Status.CompletedIndexes != "0-2" || got.Status.Succeeded != 3 || FinishedCondition(got) != batchv1.JobComplete {
		t.Errorf("completedIndexes %q, succeeded %d, conditions %v", got.Status.CompletedIndexes, got.Status.Succeeded, conditionTypes(got))
	}
}

func TestCompletionTracking(t *testing.T) {
	j := newJob("done", new(int32(2)), new(int32(2)), func(j *batchv1.Job) { j.Status.StartTime = &metav1.Time{Time: testNow} })
	h := newHarness(t, j, newPod(j, "a", corev1.PodSucceeded), newPod(j, "b", corev1.PodSucceeded))
	if err := h.sync("ns/done"); err != nil {
		t.Fatal(err)
	}
	want := []string{"update jobs/status", "patch pods", "patch pods", "update jobs/status"}
	if got := h.actions(); !slices.Equal(got, want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	// The first write lists the pods as uncounted, with the interim
	// condition.
	first := h.client.Actions()
	var st batchv1.JobStatus
	for _, a := range first {
		if a.GetSubresource() == "status" {
			st = a.(interface{ GetObject() runtime.Object }).GetObject().(*batchv1.Job).Status
			break
		}
	}
	if len(st.UncountedTerminatedPods.Succeeded) != 2 || st.Succeeded != 0 {
		t.Errorf("first status write: uncounted %+v, succeeded %d", st.UncountedTerminatedPods, st.Succeeded)
	}
	got := h.job("done")
	if got.Status.Succeeded != 2 || len(got.Status.UncountedTerminatedPods.Succeeded) != 0 || got.Status.CompletionTime == nil {
		t.Errorf("status %+v", got.Status)
	}
	if c := conditionTypes(got); !slices.Equal(c, []string{"SuccessCriteriaMet=True/CompletionsReached", "Complete=True/CompletionsReached"}) {
		t.Errorf("conditions %v", c)
	}
	if c := findCondition(got.Status.Conditions, batchv1.JobComplete); c.Message != "Reached expected number of succeeded pods" {
		t.Errorf("Complete message %q", c.Message)
	}
	for _, p := range h.pods() {
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s kept finalizers %v", p.Name, p.Finalizers)
		}
	}
	if ev := h.events(); !slices.Equal(ev, []string{"Normal Completed Job completed"}) {
		t.Errorf("events %q", ev)
	}
	// A finished job is left alone.
	if err := h.sync("ns/done"); err != nil || len(h.actions()) != 0 {
		t.Errorf("sync of a finished job: %v, actions %v", err, h.actions())
	}
}

func TestFailures(t *testing.T) {
	deadline := func(j *batchv1.Job) {
		j.Spec.ActiveDeadlineSeconds = new(int64(5))
		j.Status.StartTime = &metav1.Time{Time: testNow.Add(-10 * time.Second)}
	}
	policy := func(rules ...batchv1.PodFailurePolicyRule) func(*batchv1.Job) {
		return func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
			j.Spec.PodReplacementPolicy = new(batchv1.Failed)
		}
	}
	onExit := func(action batchv1.PodFailurePolicyAction, codes ...int32) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: action, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: codes}}
	}
	disrupted := func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue})
	}
	for _, tc := range []struct {
		name       string
		mutate     []func(*batchv1.Job)
		pods       func(j *batchv1.Job) []runtime.Object
		wantFailed int32
		// wantConditions after the first sync; then after a second one
		// with the remaining pods gone.
		wantConditions, wantFinal []string
		wantMessage               string
		wantEvent                 string
	}{
		{
			name:   "within backoffLimit",
			mutate: []func(*batchv1.Job){func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(2)) }},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodFailed), newPod(j, "b", corev1.PodFailed)}
			},
			wantFailed: 2,
		},
		{
			name:   "past backoffLimit",
			mutate: []func(*batchv1.Job){func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(1)) }},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodFailed), newPod(j, "b", corev1.PodFailed)}
			},
			wantFailed:     2,
			wantConditions: []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
			wantMessage:    "Job has reached the specified backoff limit",
			wantEvent:      "Warning BackoffLimitExceeded Job has reached the specified backoff limit",
		},
		{
			name: "backoffLimit 0 with restartPolicy OnFailure counts restarts",
			mutate: []func(*batchv1.Job){func(j *batchv1.Job) {
				j.Spec.BackoffLimit = new(int32(0))
				j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			}},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodRunning, func(p *corev1.Pod) {
					p.Spec.NodeName = "n"
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: 1}}
				})}
			},
			wantFailed:     1,
			wantConditions: []string{"FailureTarget=True/BackoffLimitExceeded"},
			wantFinal:      []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
			wantEvent:      "Normal SuccessfulDelete Deleted pod: a",
		},
		{
			name:   "past activeDeadlineSeconds",
			mutate: []func(*batchv1.Job){deadline},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodRunning, func(p *corev1.Pod) { p.Spec.NodeName = "n" })}
			},
			wantFailed:     1,
			wantConditions: []string{"FailureTarget=True/DeadlineExceeded"},
			wantFinal:      []string{"FailureTarget=True/DeadlineExceeded", "Failed=True/DeadlineExceeded"},
			wantMessage:    "Job was active longer than specified deadline",
			wantEvent:      "Normal SuccessfulDelete Deleted pod: a",
		},
		{
			name:   "FailJob rule",
			mutate: []func(*batchv1.Job){policy(onExit(batchv1.PodFailurePolicyActionFailJob, 42))},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodFailed, withExitCode(42))}
			},
			wantFailed:     1,
			wantConditions: []string{"FailureTarget=True/PodFailurePolicy", "Failed=True/PodFailurePolicy"},
			wantMessage:    "Container main for pod ns/a failed with exit code 42 matching FailJob rule at index 0",
			wantEvent:      "Warning PodFailurePolicy Container main for pod ns/a failed with exit code 42 matching FailJob rule at index 0",
		},
		{
			name:   "Ignore rule on DisruptionTarget",
			mutate: []func(*batchv1.Job){func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(0)) }, policy(batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}})},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodFailed, disrupted)}
			},
			wantFailed: 0,
		},
		{
			name:   "Count rule",
			mutate: []func(*batchv1.Job){func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(0)) }, policy(onExit(batchv1.PodFailurePolicyActionIgnore, 3), onExit(batchv1.PodFailurePolicyActionCount, 1))},
			pods: func(j *batchv1.Job) []runtime.Object {
				return []runtime.Object{newPod(j, "a", corev1.PodFailed)}
			},
			wantFailed:     1,
			wantConditions: []string{"FailureTarget=True/BackoffLimitExceeded", "Failed=True/BackoffLimitExceeded"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob("f", new(int32(1)), new(int32(1)), tc.mutate...)
			h := newHarness(t, append([]runtime.Object{j}, tc.pods(j)...)...)
			if err := h.sync("ns/f"); err != nil {
				t.Fatal(err)
			}
			got := h.job("f")
			if got.Status.Failed != tc.wantFailed {
				t.Errorf("status.failed = %d, want %d", got.Status.Failed, tc.wantFailed)
			}
			if c := conditionTypes(got); !slices.Equal(c, tc.wantConditions) {
				t.Errorf("conditions %v, want %v", c, tc.wantConditions)
			}
			if tc.wantMessage != "" {
				if c := findCondition(got.Status.Conditions, batchv1.JobFailureTarget); c == nil || c.Message != tc.wantMessage {
					t.Errorf("FailureTarget %+v, want message %q", c, tc.wantMessage)
				}
			}
			if tc.wantEvent != "" && !slices.Contains(h.events(), tc.wantEvent) {
				t.Errorf("no Event %q", tc.wantEvent)
			}
			if tc.wantFinal != nil {
				// The deleted pod is gone now (the fake clientset
				// deletes at once): the job fails.
				if err := h.sync("ns/f"); err != nil {
					t.Fatal(err)
				}
				got = h.job("f")
				if c := conditionTypes(got); !slices.Equal(c, tc.wantFinal) {
					t.Errorf("conditions after the pods are gone %v, want %v", c, tc.wantFinal)
				}
				if got.Status.Failed != tc.wantFailed || got.Status.Active != 0 {
					t.Errorf("final failed %d active %d", got.Status.Failed, got.Status.Active)
				}
			}
		})
	}
}

func TestTerminatingPodsDelayFailed(t *testing.T) {
	j := newJob("t", new(int32(1)), new(int32(1)), func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(0)) })
	terminating := newPod(j, "b", corev1.PodRunning, func(p *corev1.Pod) {
		p.Spec.NodeName = "n"
		p.DeletionTimestamp = &metav1.Time{Time: testNow}
	})
	h := newHarness(t, j, newPod(j, "a", corev1.PodFailed), terminating)
	if err := h.sync("ns/t"); err != nil {
		t.Fatal(err)
	}
	got := h.job("t")
	if c := conditionTypes(got); !slices.Equal(c, []string{"FailureTarget=True/BackoffLimitExceeded"}) || *got.Status.Terminating != 1 {
		t.Errorf("conditions %v, terminating %d; want FailureTarget only while a pod terminates", c, *got.Status.Terminating)
	}
	if err := h.client.CoreV1().Pods("ns").Delete(t.Context(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	if err := h.sync("ns/t"); err != nil {
		t.Fatal(err)
	}
	if c := conditionTypes(h.job("t")); !slices.Contains(c, "Failed=True/BackoffLimitExceeded") {
		t.Errorf("conditions %v once the pod is gone", c)
	}
}

func TestFailedPodBackoff(t *testing.T) {
	j := newJob("b", new(int32(1)), new(int32(1)), func(j *batchv1.Job) { j.Status.StartTime = &metav1.Time{Time: testNow} })
	failed := newPod(j, "a", corev1.PodFailed, func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(testNow)
	})
	h := newHarness(t, j, failed)
	if err := h.sync("ns/b"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.actions(), "create pods") {
		t.Fatalf("a replacement was created at once: %v", h.actions())
	}
	h.clock.Step(5 * time.Second)
	if err := h.sync("ns/b"); err != nil || slices.Contains(h.actions(), "create pods") {
		t.Fatalf("a replacement was created 5s after the failure: %v %v", err, h.actions())
	}
	h.clock.Step(6 * time.Second)
	if err := h.sync("ns/b"); err != nil || !slices.Contains(h.actions(), "create pods") {
		t.Fatalf("no replacement 11s after the failure: %v %v", err, h.actions())
	}
	if got := h.job("b"); got.Status.Failed != 1 || got.Status.Active != 1 {
		t.Errorf("failed %d active %d", got.Status.Failed, got.Status.Active)
	}
}

func TestSuspendResume(t *testing.T) {
	j := newJob("s", new(int32(2)), new(int32(2)), func(j *batchv1.Job) { j.Spec.Suspend = new(true) })
	h := newHarness(t, j)
	if err := h.sync("ns/s"); err != nil {
		t.Fatal(err)
	}
	got := h.job("s")
	if len(h.pods()) != 0 || got.Status.StartTime != nil || !slices.Equal(conditionTypes(got), []string{"Suspended=True/JobSuspended"}) {
		t.Fatalf("suspended job: %d pods, startTime %v, conditions %v", len(h.pods()), got.Status.StartTime, conditionTypes(got))
	}
	got.Spec.Suspend = new(false)
	if _, err := h.client.BatchV1().Jobs("ns").Update(t.Context(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	h.clock.Step(time.Minute)
	if err := h.sync("ns/s"); err != nil {
		t.Fatal(err)
	}
	got = h.job("s")
	if len(h.pods()) != 2 || !slices.Equal(conditionTypes(got), []string{"Suspended=False/JobResumed"}) ||
		got.Status.StartTime == nil || !got.Status.StartTime.Time.Equal(testNow.Add(time.Minute)) {
		t.Errorf("resumed job: %d pods, conditions %v, startTime %v", len(h.pods()), conditionTypes(got), got.Status.StartTime)
	}
	if ev := h.events(); !slices.Contains(ev, "Normal Suspended Job suspended") || !slices.Contains(ev, "Normal Resumed Job resumed") {
		t.Errorf("events %q", ev)
	}
}

func TestAdoptionAndOrphans(t *testing.T) {
	j := newJob("a", new(int32(1)), new(int32(1)))
	orphan := newPod(j, "orphan", corev1.PodRunning, func(p *corev1.Pod) { p.OwnerReferences, p.Finalizers = nil, nil })
	gone := newJob("gone", new(int32(1)), new(int32(1)))
	leftover := newPod(gone, "leftover", corev1.PodSucceeded)
	h := newHarness(t, j, orphan, leftover)
	if err := h.sync("ns/a"); err != nil {
		t.Fatal(err)
	}
	p, err := h.client.CoreV1().Pods("ns").Get(t.Context(), "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(p, j) || !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
		t.Errorf("orphan not adopted: owners %+v finalizers %v", p.OwnerReferences, p.Finalizers)
	}
	if slices.Contains(h.actions(), "create pods") {
		t.Errorf("the adopted pod should count as active: %v", h.actions())
	}
	// A pod of a deleted job loses its finalizer.
	if err := h.c.syncOrphanPod(t.Context(), "ns/leftover"); err != nil {
		t.Fatal(err)
	}
	if p, _ := h.client.CoreV1().Pods("ns").Get(t.Context(), "leftover", metav1.GetOptions{}); len(p.Finalizers) != 0 {
		t.Errorf("orphan pod kept finalizers %v", p.Finalizers)
	}
}
