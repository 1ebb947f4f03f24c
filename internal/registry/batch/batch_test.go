package batch

import (
	"context"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var ctx = context.Background()

// want is an expected validation error: its path and type.
type want struct {
	field string
	typ   field.ErrorType
}

// checkErrors fails unless errs holds exactly the wanted (field, type)
// pairs, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	got := map[want]int{}
	for _, e := range errs {
		got[want{e.Field, e.Type}]++
	}
	for _, w := range wants {
		if got[w] == 0 {
			t.Errorf("missing error %s %q; got %v", w.typ, w.field, errs)
			continue
		}
		got[w]--
	}
	for w, n := range got {
		if n > 0 {
			t.Errorf("unexpected error %s %q; all: %v", w.typ, w.field, errs)
		}
	}
}

func jobTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "report"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers:    []corev1.Container{{Name: "report", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo done"}}},
		},
	}
}

// createdJob is a realistic job after defaulting and PrepareForCreate, with
// the name and uid the API server assigns.
func createdJob() *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "default", UID: "8f3c6d2e-uid"},
		Spec:       batchv1.JobSpec{BackoffLimit: new(int32(4)), Template: jobTemplate()},
	}
	s := JobStrategy{}
	s.Default(job)
	s.PrepareForCreate(ctx, job)
	return job
}

func TestJobDefaultsAndSelector(t *testing.T) {
	job := createdJob()
	s := job.Spec
	if *s.Parallelism != 1 || *s.Completions != 1 || *s.BackoffLimit != 4 || *s.CompletionMode != batchv1.NonIndexedCompletion ||
		*s.Suspend || *s.ManualSelector || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("job defaults: %+v", s)
	}
	if job.Labels["app"] != "report" {
		t.Errorf("job labels not copied from template: %v", job.Labels)
	}
	tl := s.Template.Labels
	if tl["controller-uid"] != "8f3c6d2e-uid" || tl[batchv1.ControllerUidLabel] != "8f3c6d2e-uid" || tl["job-name"] != "report" ||
		tl[batchv1.JobNameLabel] != "report" || s.Selector.MatchLabels[batchv1.ControllerUidLabel] != "8f3c6d2e-uid" {
		t.Errorf("generated selector/labels: %v %v", tl, s.Selector)
	}

	parallel := &batchv1.Job{Spec: batchv1.JobSpec{Parallelism: new(int32(3))}}
	JobStrategy{}.Default(parallel)
	if parallel.Spec.Completions != nil || *parallel.Spec.BackoffLimit != 6 {
		t.Errorf("parallel job defaults: %+v", parallel.Spec)
	}
	manual := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "m", UID: "u"}, Spec: batchv1.JobSpec{ManualSelector: new(true),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "report"}}, Template: jobTemplate()}}
	JobStrategy{}.Default(manual)
	JobStrategy{}.PrepareForCreate(ctx, manual)
	if len(manual.Spec.Template.Labels) != 1 {
		t.Errorf("manual selector got generated labels: %v", manual.Spec.Template.Labels)
	}
	checkErrors(t, JobStrategy{}.Validate(ctx, manual))
}

func TestJobValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []want
	}{
		{"valid", func(*batchv1.Job) {}, nil},
		{"restartPolicy Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]want{{"spec.template.spec.restartPolicy", field.ErrorTypeRequired}}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(-1)) }, []want{{"spec.parallelism", field.ErrorTypeInvalid}}},
		{"negative completions", func(j *batchv1.Job) { j.Spec.Completions = new(int32(-1)) }, []want{{"spec.completions", field.ErrorTypeInvalid}}},
		{"negative backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = new(int32(-1)) }, []want{{"spec.backoffLimit", field.ErrorTypeInvalid}}},
		{"negative ttl", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = new(int32(-1)) },
			[]want{{"spec.ttlSecondsAfterFinished", field.ErrorTypeInvalid}}},
		{"bad completionMode", func(j *batchv1.Job) { j.Spec.CompletionMode = new(batchv1.CompletionMode("Ordered")) },
			[]want{{"spec.completionMode", field.ErrorTypeNotSupported}}},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = new(batchv1.IndexedCompletion), nil
		}, []want{{"spec.completions", field.ErrorTypeRequired}}},
		{"conflicting generated label", func(j *batchv1.Job) { j.Spec.Template.Labels["job-name"] = "other" },
			[]want{{"spec.template.metadata.labels[job-name]", field.ErrorTypeInvalid}}},
		{"hand-written selector", func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "report"}}
		}, []want{{"spec.selector", field.ErrorTypeInvalid}}},
		{"no uid", func(j *batchv1.Job) { j.UID = "" }, []want{{"metadata.uid", field.ErrorTypeRequired},
			{"spec.template.metadata.labels[controller-uid]", field.ErrorTypeInvalid},
			{"spec.template.metadata.labels[batch.kubernetes.io/controller-uid]", field.ErrorTypeInvalid},
			{"spec.selector", field.ErrorTypeInvalid}}},
		{"pod spec rules", func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Name = "" },
			[]want{{"spec.template.spec.containers[0].name", field.ErrorTypeRequired}}},
		{"failure policy with OnFailure", func(j *batchv1.Job) {
			j.Spec.PodReplacementPolicy = new(batchv1.Failed)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}}}
		}, []want{{"spec.template.spec.restartPolicy", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := createdJob()
			tc.mutate(job)
			checkErrors(t, JobStrategy{}.Validate(ctx, job), tc.want...)
		})
	}
}

func TestJobUpdate(t *testing.T) {
	s := JobStrategy{}
	old := createdJob()
	job := old.DeepCopy()
	job.Spec.Parallelism = new(int32(2))
	job.Spec.ActiveDeadlineSeconds = new(int64(600))
	job.Spec.Suspend = new(true)
	checkErrors(t, s.ValidateUpdate(ctx, job, old))

	job = old.DeepCopy()
	job.Spec.Completions = new(int32(5))
	checkErrors(t, s.ValidateUpdate(ctx, job, old), want{"spec.completions", field.ErrorTypeInvalid})

	job = old.DeepCopy()
	job.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
	checkErrors(t, s.ValidateUpdate(ctx, job, old), want{"spec.template", field.ErrorTypeInvalid})

	job = old.DeepCopy()
	job.Spec.Selector.MatchLabels["app"] = "report"
	checkErrors(t, s.ValidateUpdate(ctx, job, old), want{"spec.selector", field.ErrorTypeInvalid}, // not auto-generated
		want{"spec.selector", field.ErrorTypeInvalid}) // immutable

	// A suspended job that never started may change its scheduling directives.
	old.Spec.Suspend = new(true)
	job = old.DeepCopy()
	job.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "a"}
	checkErrors(t, s.ValidateUpdate(ctx, job, old))

	job = old.DeepCopy()
	job.Status.Succeeded, job.Status.Failed = 2, -1
	checkErrors(t, s.ValidateStatusUpdate(ctx, job, old), want{"status.failed", field.ErrorTypeInvalid})
	if got := s.SelectableFields(job); len(got) != 1 || got["status.successful"] != "2" {
		t.Errorf("fields = %v", got)
	}
}

func validCronJob() *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule: "30 2 * * *",
			TimeZone: new("Europe/Paris"),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				BackoffLimit: new(int32(2)),
				Template:     jobTemplate(),
			}},
		},
	}
	CronJobStrategy{}.Default(cj)
	return cj
}

func TestCronJob(t *testing.T) {
	s := CronJobStrategy{}
	cj := validCronJob()
	if cj.Spec.ConcurrencyPolicy != batchv1.AllowConcurrent || *cj.Spec.Suspend || *cj.Spec.SuccessfulJobsHistoryLimit != 3 ||
		*cj.Spec.FailedJobsHistoryLimit != 1 || cj.Spec.JobTemplate.Spec.Template.Spec.SchedulerName != "default-scheduler" {
		t.Errorf("cronjob defaults: %+v", cj.Spec)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []want
	}{
		{"valid", func(*batchv1.CronJob) {}, nil},
		{"descriptor", func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }, nil},
		{"no schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []want{{"spec.schedule", field.ErrorTypeRequired}}},
		{"bad schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" }, []want{{"spec.schedule", field.ErrorTypeInvalid}}},
		{"TZ in schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }, []want{{"spec.schedule", field.ErrorTypeInvalid}}},
		{"unknown time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Mars/Olympus") }, []want{{"spec.timeZone", field.ErrorTypeInvalid}}},
		{"Local time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Local") }, []want{{"spec.timeZone", field.ErrorTypeInvalid}}},
		{"concurrencyPolicy", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Queue" }, []want{{"spec.concurrencyPolicy", field.ErrorTypeNotSupported}}},
		{"negative history", func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = new(int32(-1)) },
			[]want{{"spec.failedJobsHistoryLimit", field.ErrorTypeInvalid}}},
		{"template restartPolicy", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		},
			[]want{{"spec.jobTemplate.spec.template.spec.restartPolicy", field.ErrorTypeRequired}}},
		{"template selector", func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{} },
			[]want{{"spec.jobTemplate.spec.selector", field.ErrorTypeInvalid}}},
		{"manual selector", func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.ManualSelector = new(true) },
			[]want{{"spec.jobTemplate.spec.manualSelector", field.ErrorTypeNotSupported}}},
		{"long name", func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }, []want{{"metadata.name", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validCronJob()
			tc.mutate(c)
			checkErrors(t, s.Validate(ctx, c), tc.want...)
		})
	}

	// A TZ= schedule already stored may be kept on update.
	old := validCronJob()
	old.Spec.Schedule, old.Spec.TimeZone = "CRON_TZ=UTC 0 * * * *", nil
	upd := old.DeepCopy()
	upd.Spec.Suspend = new(true)
	checkErrors(t, s.ValidateUpdate(ctx, upd, old))
}
