package batch_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// cronJobSpec is a CronJob of one-pod jobs.
func cronJobSpec(name, schedule string, mutate ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"from": name}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "tick", Image: "busybox"}},
				}}},
			},
		},
	}
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

func createCronJob(t *testing.T, cs kubernetes.Interface, ns string, cj *batchv1.CronJob) *batchv1.CronJob {
	t.Helper()
	created, err := cs.BatchV1().CronJobs(ns).Create(ctx(t), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating cronjob %s: %v", cj.Name, err)
	}
	return created
}

// ownedJobs lists the jobs a CronJob controls.
func ownedJobs(t *testing.T, cs kubernetes.Interface, ns string, cj *batchv1.CronJob) []batchv1.Job {
	t.Helper()
	l, err := cs.BatchV1().Jobs(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing jobs: %v", err)
	}
	var out []batchv1.Job
	for _, j := range l.Items {
		if metav1.IsControlledBy(&j, cj) {
			out = append(out, j)
		}
	}
	return out
}

func TestCronJobs(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	t.Run("schedule", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		k := startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return run })
		// Forbid: the running job keeps any later schedule time from
		// starting another.
		cj := createCronJob(t, cs, ns, cronJobSpec("tick", "@every 2s", func(cj *batchv1.CronJob) {
			cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
		}))
		var job batchv1.Job
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			jobs := ownedJobs(t, cs, ns, cj)
			if len(jobs) > 0 {
				job = jobs[0]
			}
			return len(jobs) > 0, nil
		}, "the cronjob to start a job")
		if _, err := cs.BatchV1().CronJobs(ns).Patch(ctx(t), "tick", types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}

		scheduled, err := time.Parse(time.RFC3339, job.Annotations[batchv1.CronJobScheduledTimestampAnnotation])
		if err != nil {
			t.Fatalf("scheduled timestamp annotation: %v", err)
		}
		if want := fmt.Sprintf("tick-%d", scheduled.Unix()/60); job.Name != want {
			t.Errorf("job %s, want %s for the schedule time %v", job.Name, want, scheduled)
		}
		if d := scheduled.Sub(cj.CreationTimestamp.Time); d <= 0 || d%(2*time.Second) != 0 {
			t.Errorf("scheduled %v after the cronjob's creation, want a multiple of 2s", d)
		}
		if job.Labels["from"] != "tick" {
			t.Errorf("job labels %v", job.Labels)
		}
		// The controller writes the CronJob's status after it creates the
		// Job: wait for it rather than read it once.
		var got *batchv1.CronJob
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			var err error
			got, err = cs.BatchV1().CronJobs(ns).Get(ctx(t), "tick", metav1.GetOptions{})
			return err == nil && len(got.Status.Active) > 0 && got.Status.LastScheduleTime != nil, err
		}, "the cronjob's status to list its job")
		if len(got.Status.Active) != 1 || got.Status.Active[0].UID != job.UID ||
			!got.Status.LastScheduleTime.Time.Equal(scheduled) {
			t.Errorf("cronjob status %+v", got.Status)
		}

		// The job's pod finishes: the job completes and leaves the active
		// list.
		k.finish(k.waitRunning(t, waitTimeout), 0)
		waitJobCondition(t, cs, ns, job.Name, batchv1.JobComplete)
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			got, err = cs.BatchV1().CronJobs(ns).Get(ctx(t), "tick", metav1.GetOptions{})
			return err == nil && len(got.Status.Active) == 0 && got.Status.LastSuccessfulTime != nil, err
		}, "the cronjob to see its job complete")
		if jobs := ownedJobs(t, cs, ns, cj); len(jobs) != 1 {
			t.Errorf("%d jobs, want 1", len(jobs))
		}
		waitEvent(t, cs, ns, "CronJob", "tick", "Normal SuccessfulCreate Created job "+job.Name)
		waitEvent(t, cs, ns, "CronJob", "tick", "Normal SawCompletedJob Saw completed job: "+job.Name+", condition: Complete")
	})

	t.Run("kubectl create job --from and history limits", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		startKubelet(t, cs, ns, nodeName, func(*corev1.Pod) outcome { return succeed })
		cj := createCronJob(t, cs, ns, cronJobSpec("nightly", "0 3 * * *", func(cj *batchv1.CronJob) {
			cj.Spec.Suspend = new(true)
			cj.Spec.SuccessfulJobsHistoryLimit = new(int32(1))
		}))
		for _, name := range []string{"manual-1", "manual-2", "manual-3"} {
			s.MustKubectl(t, "create", "job", name, "--from=cronjob/nightly", "-n", ns)
			job := waitJobCondition(t, cs, ns, name, batchv1.JobComplete)
			if !metav1.IsControlledBy(job, cj) || job.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || job.Labels["from"] != "nightly" {
				t.Errorf("job %s: owners %v, annotations %v, labels %v", name, job.OwnerReferences, job.Annotations, job.Labels)
			}
		}
		// One successful job is kept: the newest.
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			jobs := ownedJobs(t, cs, ns, cj)
			return len(jobs) == 1 && jobs[0].Name == "manual-3", nil
		}, "the cronjob to delete all finished jobs but the last")
		waitEvent(t, cs, ns, "CronJob", "nightly", "Normal SuccessfulDelete Deleted job manual-1")
		waitEvent(t, cs, ns, "CronJob", "nightly", "Normal SuccessfulDelete Deleted job manual-2")
		if ev := events(t, cs, ns, "CronJob", "nightly"); slices.ContainsFunc(ev, func(e string) bool { return strings.Contains(e, "SuccessfulCreate") }) {
			t.Errorf("the suspended cronjob started a job: %q", ev)
		}
	})
}
