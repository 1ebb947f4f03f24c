package job

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons and messages of the job controller, as upstream's.
const (
	reasonCompletionsReached  = batchv1.JobReasonCompletionsReached
	messageCompletionsReached = "Reached expected number of succeeded pods"
	messageBackoffLimit       = "Job has reached the specified backoff limit"
	messageDeadlineExceeded   = "Job was active longer than specified deadline"
)

// FinishedCondition returns the type of the True Complete or Failed
// condition of a job, or "" while it runs.
func FinishedCondition(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// IsFinished reports whether a job is Complete or Failed.
func IsFinished(j *batchv1.Job) bool { return FinishedCondition(j) != "" }

func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// trueCondition returns the condition of type t if it is True.
func trueCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	if c := findCondition(j.Status.Conditions, t); c != nil && c.Status == corev1.ConditionTrue {
		return c
	}
	return nil
}

func newCondition(t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{
		Type: t, Status: status, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	}
}

// ensureCondition sets the condition of type t to status, reason and
// message, reporting whether the list changed. A False condition is never
// added where there was none.
func ensureCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	if c := findCondition(list, t); c != nil {
		if c.Status == status && c.Reason == reason && c.Message == message {
			return list, false
		}
		*c = *newCondition(t, status, reason, message, now)
		return list, true
	}
	if status == corev1.ConditionFalse {
		return list, false
	}
	return append(list, *newCondition(t, status, reason, message, now)), true
}

// failureTarget is the interim FailureTarget condition set before a job's
// remaining pods are gone; Failed follows with the same reason.
func failureTarget(reason, message string, now time.Time) *batchv1.JobCondition {
	return newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, reason, message, now)
}

// successCriteriaMet is the interim condition before Complete.
func successCriteriaMet(now time.Time) *batchv1.JobCondition {
	return newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonCompletionsReached, messageCompletionsReached, now)
}

func isSuccessCriteriaMet(c *batchv1.JobCondition) bool {
	return c != nil && c.Type == batchv1.JobSuccessCriteriaMet
}
