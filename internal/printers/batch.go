package printers

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

func init() {
	batch := batchv1.SchemeGroupVersion
	register(batch.WithKind("CronJob"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Schedule", "string", batchv1beta1.CronJobSpec{}.SwaggerDoc()["schedule"]),
		column("Timezone", "string", batchv1beta1.CronJobSpec{}.SwaggerDoc()["timeZone"]),
		column("Suspend", "boolean", batchv1beta1.CronJobSpec{}.SwaggerDoc()["suspend"]),
		column("Active", "integer", batchv1beta1.CronJobStatus{}.SwaggerDoc()["active"]),
		column("Last Schedule", "string", batchv1beta1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]),
		ageColumn,
		containersColumn,
		imagesColumn,
		wideColumn("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"]),
	}, printCronJob)
	register(batch.WithKind("Job"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Status", "string", "Status of the job."),
		column("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
		column("Duration", "string", "Time required to complete the job."),
		ageColumn,
		containersColumn,
		imagesColumn,
		wideColumn("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"]),
	}, printJob)
}

func printCronJob(cj *batchv1.CronJob) (metav1.TableRow, error) {
	lastSchedule := "<none>"
	if cj.Status.LastScheduleTime != nil {
		lastSchedule = age(*cj.Status.LastScheduleTime)
	}
	tmpl := cj.Spec.JobTemplate.Spec
	names, images := containerCells(tmpl.Template.Spec.Containers)
	return cells(cj.Name, cj.Spec.Schedule, deref(cj.Spec.TimeZone, "<none>"), boolPtr(cj.Spec.Suspend),
		int64(len(cj.Status.Active)), lastSchedule, age(cj.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(tmpl.Selector))
}

func printJob(job *batchv1.Job) (metav1.TableRow, error) {
	var completions string
	switch parallelism := deref(job.Spec.Parallelism, 0); {
	case job.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
	case parallelism > 1:
		completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, parallelism)
	default:
		completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
	}

	var took string
	switch start, end := job.Status.StartTime, job.Status.CompletionTime; {
	case start == nil:
	case end == nil:
		took = duration.HumanDuration(time.Since(start.Time))
	default:
		took = duration.HumanDuration(end.Sub(start.Time))
	}

	names, images := containerCells(job.Spec.Template.Spec.Containers)
	return cells(job.Name, jobStatus(job), completions, took, age(job.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(job.Spec.Selector))
}

// jobStatus is the STATUS of a job: its first True condition in order of
// precedence, "Terminating" once it is being deleted, else "Running".
func jobStatus(job *batchv1.Job) string {
	has := func(typ batchv1.JobConditionType) bool {
		for _, c := range job.Status.Conditions {
			if c.Type == typ {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case job.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}
