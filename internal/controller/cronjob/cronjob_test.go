package cronjob

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func newCronJob(schedule, created string, mutate ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "ns", UID: "cj-uid", ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(at(created))},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule, ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: new(false),
			SuccessfulJobsHistoryLimit: new(int32(3)), FailedJobsHistoryLimit: new(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"note": "y"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
			},
		},
	}
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

// childJob is a job of cj started at start, finished with cond if given.
func childJob(cj *batchv1.CronJob, name, start string, cond batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobKind)}}}
	if start != "" {
		j.Status.StartTime = &metav1.Time{Time: at(start)}
	}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		if cond == batchv1.JobComplete {
			j.Status.CompletionTime = &metav1.Time{Time: at(start).Add(time.Minute)}
		}
	}
	return j
}

func active(jobs ...*batchv1.Job) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) {
		for _, j := range jobs {
			cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: "ns", Name: j.Name, UID: j.UID})
		}
	}
}

type harness struct {
	c                      *Controller
	client                 *fake.Clientset
	rec                    *record.FakeRecorder
	jobStore, cronJobStore cache.Store
}

func newHarness(t *testing.T, now string, cj *batchv1.CronJob, jobs ...*batchv1.Job) *harness {
	t.Helper()
	objs := []runtime.Object{cj}
	for _, j := range jobs {
		objs = append(objs, j)
	}
	client := fake.NewClientset(objs...)
	client.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		j.UID = types.UID("uid-" + j.Name)
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, clocktesting.NewFakeClock(at(now)))
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	c.recorder = rec
	if err := factory.Batch().V1().CronJobs().Informer().GetStore().Add(cj); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if err := factory.Batch().V1().Jobs().Informer().GetStore().Add(j); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{c: c, client: client, rec: rec,
		jobStore: factory.Batch().V1().Jobs().Informer().GetStore(), cronJobStore: factory.Batch().V1().CronJobs().Informer().GetStore()}
}

// resync copies the clientset's objects into the informer stores.
func (h *harness) resync(t *testing.T) {
	t.Helper()
	cj := h.cronJob(t)
	jobs, err := h.client.BatchV1().Jobs("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []any
	for i := range jobs.Items {
		objs = append(objs, &jobs.Items[i])
	}
	if err := h.jobStore.Replace(objs, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.cronJobStore.Update(cj); err != nil {
		t.Fatal(err)
	}
}

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

func (h *harness) cronJob(t *testing.T) *batchv1.CronJob {
	cj, err := h.client.BatchV1().CronJobs("ns").Get(context.Background(), "cj", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cj
}

func (h *harness) jobNames(t *testing.T) []string {
	l, err := h.client.BatchV1().Jobs("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range l.Items {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	return names
}

func activeNames(cj *batchv1.CronJob) []string {
	var names []string
	for _, r := range cj.Status.Active {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

func minutes(s string) string { return fmt.Sprint(at(s).Unix() / 60) }

func TestSyncSchedules(t *testing.T) {
	running := func() *batchv1.Job {
		return childJob(newCronJob("", "2026-03-01T10:00:00Z"), "cj-old", "2026-03-01T09:59:00Z", "")
	}
	for _, tc := range []struct {
		name        string
		cj          *batchv1.CronJob
		jobs        []*batchv1.Job
		now         string
		wantJobs    []string
		wantActive  []string
		wantRequeue time.Duration // 0: none
		wantEvent   string
	}{
		{
			name: "creates the job of a passed schedule time",
			cj:   newCronJob("* * * * *", "2026-03-01T10:00:30Z"), now: "2026-03-01T10:01:05Z",
			wantJobs: []string{"cj-" + minutes("2026-03-01T10:01:00Z")}, wantActive: []string{"cj-" + minutes("2026-03-01T10:01:00Z")},
			wantRequeue: 55*time.Second + nextScheduleDelta,
			wantEvent:   "Normal SuccessfulCreate Created job cj-" + minutes("2026-03-01T10:01:00Z"),
		},
		{
			name: "waits for the first schedule time",
			cj:   newCronJob("* * * * *", "2026-03-01T10:00:30Z"), now: "2026-03-01T10:00:50Z",
			wantRequeue: 10*time.Second + nextScheduleDelta,
		},
		{
			name: "@every",
			cj:   newCronJob("@every 2s", "2026-03-01T10:00:30Z"), now: "2026-03-01T10:00:32.5Z",
			wantJobs: []string{"cj-" + minutes("2026-03-01T10:00:32Z")}, wantActive: []string{"cj-" + minutes("2026-03-01T10:00:32Z")},
			wantRequeue: 1500*time.Millisecond + nextScheduleDelta,
		},
		{
			name: "only the most recent missed time runs",
			cj: newCronJob("*/5 * * * *", "2026-03-01T09:00:00Z", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T09:00:00Z")}
			}),
			now:      "2026-03-01T10:02:00Z",
			wantJobs: []string{"cj-" + minutes("2026-03-01T10:00:00Z")}, wantActive: []string{"cj-" + minutes("2026-03-01T10:00:00Z")},
			wantRequeue: 3*time.Minute + nextScheduleDelta,
		},
		{
			name: "startingDeadlineSeconds skips a time missed for too long",
			cj: newCronJob("0 * * * *", "2026-03-01T09:30:00Z", func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = new(int64(60))
			}),
			now:         "2026-03-01T10:05:00Z",
			wantRequeue: 55*time.Minute + nextScheduleDelta,
		},
		{
			name: "startingDeadlineSeconds: still in time",
			cj: newCronJob("0 * * * *", "2026-03-01T09:30:00Z", func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = new(int64(600))
			}),
			now:      "2026-03-01T10:05:00Z",
			wantJobs: []string{"cj-" + minutes("2026-03-01T10:00:00Z")}, wantActive: []string{"cj-" + minutes("2026-03-01T10:00:00Z")},
			wantRequeue: 55*time.Minute + nextScheduleDelta,
		},
		{
			name: "suspended",
			cj:   newCronJob("* * * * *", "2026-03-01T10:00:30Z", func(cj *batchv1.CronJob) { cj.Spec.Suspend = new(true) }),
			now:  "2026-03-01T10:01:05Z",
		},
		{
			name: "Allow runs concurrently",
			cj:   newCronJob("* * * * *", "2026-03-01T09:58:30Z", active(running())),
			jobs: []*batchv1.Job{running()}, now: "2026-03-01T10:01:05Z",
			wantJobs:    []string{"cj-" + minutes("2026-03-01T10:01:00Z"), "cj-old"},
			wantActive:  []string{"cj-" + minutes("2026-03-01T10:01:00Z"), "cj-old"},
			wantRequeue: 55*time.Second + nextScheduleDelta,
		},
		{
			name: "Forbid waits for the running job",
			cj: newCronJob("* * * * *", "2026-03-01T09:58:30Z", active(running()), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			}),
			jobs: []*batchv1.Job{running()}, now: "2026-03-01T10:01:05Z",
			wantJobs: []string{"cj-old"}, wantActive: []string{"cj-old"},
			wantRequeue: 55*time.Second + nextScheduleDelta,
			wantEvent:   "Normal JobAlreadyActive Not starting job because prior execution is running and concurrency policy is Forbid",
		},
		{
			name: "Replace deletes the running job",
			cj: newCronJob("* * * * *", "2026-03-01T09:58:30Z", active(running()), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
			}),
			jobs: []*batchv1.Job{running()}, now: "2026-03-01T10:01:05Z",
			wantJobs: []string{"cj-" + minutes("2026-03-01T10:01:00Z")}, wantActive: []string{"cj-" + minutes("2026-03-01T10:01:00Z")},
			wantRequeue: 55*time.Second + nextScheduleDelta,
			wantEvent:   "Normal SuccessfulDelete Deleted job cj-old",
		},
		{
			name: "unparseable schedule",
			cj:   newCronJob("every day", "2026-03-01T10:00:30Z"), now: "2026-03-01T10:01:05Z",
			wantEvent: `Warning UnparseableSchedule unparseable schedule: "every day" : expected exactly 5 fields, found 2: [every day]`,
		},
		{
			name: "schedule that never fires",
			cj:   newCronJob("59 23 31 2 *", "2026-03-01T10:00:30Z"), now: "2026-03-01T10:01:05Z",
			wantEvent: "Warning InvalidSchedule invalid schedule: 59 23 31 2 * : time difference between two schedules is less than 1 second",
		},
		{
			name: "active job gone",
			cj:   newCronJob("0 0 1 1 *", "2026-03-01T10:00:30Z", active(running())), now: "2026-03-01T10:01:05Z",
			wantRequeue: at("2027-01-01T00:00:00Z").Sub(at("2026-03-01T10:01:05Z")) + nextScheduleDelta,
			wantEvent:   "Normal MissingJob Active job went missing: cj-old",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.now, tc.cj, tc.jobs...)
			requeue, err := h.c.sync(context.Background(), "ns/cj")
			if err != nil {
				t.Fatal(err)
			}
			var got time.Duration
			if requeue != nil {
				got = *requeue
			}
			if got != tc.wantRequeue {
				t.Errorf("requeue after %v, want %v", got, tc.wantRequeue)
			}
			if jobs := h.jobNames(t); !slices.Equal(jobs, tc.wantJobs) {
				t.Errorf("jobs %v, want %v", jobs, tc.wantJobs)
			}
			if a := activeNames(h.cronJob(t)); !slices.Equal(a, tc.wantActive) {
				t.Errorf("active %v, want %v", a, tc.wantActive)
			}
			if ev := h.events(); tc.wantEvent != "" && !slices.Contains(ev, tc.wantEvent) {
				t.Errorf("events %q, want %q", ev, tc.wantEvent)
			}
		})
	}
}

func TestCreatedJob(t *testing.T) {
	cj := newCronJob("0 12 * * *", "2026-02-27T00:00:00Z", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = new("Europe/Paris") })
	h := newHarness(t, "2026-03-01T11:00:30Z", cj)
	if _, err := h.c.sync(context.Background(), "ns/cj"); err != nil {
		t.Fatal(err)
	}
	// Noon in Paris is 11:00 UTC in March.
	name := "cj-" + minutes("2026-03-01T11:00:00Z")
	j, err := h.client.BatchV1().Jobs("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("job %s: %v (jobs %v)", name, err, h.jobNames(t))
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-03-01T12:00:00+01:00" {
		t.Errorf("scheduled timestamp %q", got)
	}
	if j.Labels["app"] != "x" || j.Annotations["note"] != "y" || !metav1.IsControlledBy(j, cj) || j.Spec.Template.Spec.Containers[0].Image != "busybox" {
		t.Errorf("job %+v", j.ObjectMeta)
	}
	got := h.cronJob(t)
	if got.Status.LastScheduleTime == nil || !got.Status.LastScheduleTime.Time.Equal(at("2026-03-01T11:00:00Z")) {
		t.Errorf("lastScheduleTime %v", got.Status.LastScheduleTime)
	}
}

func TestFinishedJobs(t *testing.T) {
	cj := newCronJob("0 0 1 1 *", "2026-01-01T10:00:00Z")
	var jobs []*batchv1.Job
	for i, start := range []string{"2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z", "2026-02-04T00:00:00Z", "2026-02-05T00:00:00Z"} {
		jobs = append(jobs, childJob(cj, fmt.Sprintf("ok-%d", i), start, batchv1.JobComplete))
	}
	for i, start := range []string{"2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"} {
		jobs = append(jobs, childJob(cj, fmt.Sprintf("bad-%d", i), start, batchv1.JobFailed))
	}
	running := childJob(cj, "running", "2026-02-06T00:00:00Z", "")
	done := childJob(cj, "done", "2026-02-07T00:00:00Z", batchv1.JobComplete)
	jobs = append(jobs, running, done)
	active(running, done)(cj)
	h := newHarness(t, "2026-03-01T11:00:00Z", cj, jobs...)
	if _, err := h.c.sync(context.Background(), "ns/cj"); err != nil {
		t.Fatal(err)
	}
	// 3 successful (done, ok-4, ok-3) and 1 failed (bad-1) are kept.
	if got, want := h.jobNames(t), []string{"bad-1", "done", "ok-3", "ok-4", "running"}; !slices.Equal(got, want) {
		t.Errorf("jobs %v, want %v", got, want)
	}
	got := h.cronJob(t)
	if a := activeNames(got); !slices.Equal(a, []string{"running"}) {
		t.Errorf("active %v", a)
	}
	// As upstream, a job leaving the active list moves
	// lastSuccessfulTime on the next sync.
	if got.Status.LastSuccessfulTime == nil || !got.Status.LastSuccessfulTime.Time.Equal(at("2026-02-05T00:01:00Z")) {
		t.Errorf("lastSuccessfulTime %v", got.Status.LastSuccessfulTime)
	}
	ev := strings.Join(h.events(), "\n")
	for _, want := range []string{"Normal SawCompletedJob Saw completed job: done, condition: Complete", "Normal SuccessfulDelete Deleted job ok-0", "Normal SuccessfulDelete Deleted job bad-0"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no Event %q in\n%s", want, ev)
		}
	}
	h.resync(t)
	if _, err := h.c.sync(context.Background(), "ns/cj"); err != nil {
		t.Fatal(err)
	}
	if got := h.cronJob(t); got.Status.LastSuccessfulTime == nil || !got.Status.LastSuccessfulTime.Time.Equal(at("2026-02-07T00:01:00Z")) {
		t.Errorf("lastSuccessfulTime after the second sync %v", got.Status.LastSuccessfulTime)
	}
}

func TestUnexpectedJob(t *testing.T) {
	cj := newCronJob("0 0 1 1 *", "2026-01-01T10:00:00Z")
	manual := childJob(cj, "manual", "2026-02-01T00:00:00Z", "")
	h := newHarness(t, "2026-03-01T11:00:00Z", cj, manual)
	if _, err := h.c.sync(context.Background(), "ns/cj"); err != nil {
		t.Fatal(err)
	}
	if ev := h.events(); !slices.Contains(ev, "Warning UnexpectedJob Saw a job that the controller did not create or forgot: manual") {
		t.Errorf("events %q", ev)
	}
}

func TestMostRecentScheduleTime(t *testing.T) {
	for _, tc := range []struct {
		schedule, created, last, now string
		want                         string // "" for none
		wantMissed                   missed
	}{
		{"* * * * *", "2026-03-01T10:00:30Z", "", "2026-03-01T10:00:59Z", "", noneMissed},
		{"* * * * *", "2026-03-01T10:00:30Z", "", "2026-03-01T10:01:00Z", "2026-03-01T10:01:00Z", noneMissed},
		{"* * * * *", "2026-03-01T10:00:30Z", "", "2026-03-01T10:05:10Z", "2026-03-01T10:05:00Z", fewMissed},
		{"* * * * *", "2026-03-01T10:00:30Z", "2026-03-01T10:03:00Z", "2026-03-01T10:03:30Z", "", noneMissed},
		{"* * * * *", "2026-03-01T08:00:30Z", "", "2026-03-01T10:05:10Z", "2026-03-01T10:05:00Z", manyMissed},
		{"30 6-16/4 * * 1-5", "2026-03-02T00:00:00Z", "", "2026-03-04T15:00:00Z", "2026-03-04T14:30:00Z", fewMissed},
		{"@every 90s", "2026-03-01T10:00:00Z", "", "2026-03-01T10:10:00Z", "2026-03-01T10:09:00Z", fewMissed},
	} {
		sched, err := cron.ParseStandard(tc.schedule)
		if err != nil {
			t.Fatal(err)
		}
		cj := newCronJob(tc.schedule, tc.created)
		if tc.last != "" {
			cj.Status.LastScheduleTime = &metav1.Time{Time: at(tc.last)}
		}
		_, got, m, err := mostRecentScheduleTime(cj, at(tc.now), sched, false)
		if err != nil {
			t.Fatal(err)
		}
		gotS := ""
		if got != nil {
			gotS = got.UTC().Format(time.RFC3339)
		}
		if gotS != tc.want || m != tc.wantMissed {
			t.Errorf("%s created %s last %s now %s: %q (missed %d), want %q (%d)", tc.schedule, tc.created, tc.last, tc.now, gotS, m, tc.want, tc.wantMissed)
		}
	}
}
