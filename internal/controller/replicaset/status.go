package replicaset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// statusUpdateRetries is how many times a conflicting status write is
// retried on a fresh read within one sync.
const statusUpdateRetries = 1

func secondsDuration(s int32) time.Duration { return time.Duration(s) * time.Second }

// calculateStatus counts the pods and sets or clears the ReplicaFailure
// condition after a manage error.
func (c *Controller) calculateStatus(rs *appsv1.ReplicaSet, active, terminating []*corev1.Pod, manageErr error) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	now := c.now()
	var labeled, ready, available int32
	for _, p := range active {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			labeled++
		}
		if isPodReady(p) {
			ready++
			if IsPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	failure := GetCondition(rs.Status, appsv1.ReplicaSetReplicaFailure)
	switch {
	case manageErr != nil && failure == nil:
		reason := ""
		if diff := len(active) - int(*rs.Spec.Replicas); diff < 0 {
			reason = ReasonFailedCreate
		} else if diff > 0 {
			reason = ReasonFailedDelete
		}
		SetCondition(&st, NewCondition(appsv1.ReplicaSetReplicaFailure, corev1.ConditionTrue, reason, manageErr.Error(), now))
	case manageErr == nil && failure != nil:
		RemoveCondition(&st, appsv1.ReplicaSetReplicaFailure)
	}
	st.Replicas = int32(len(active))
	st.FullyLabeledReplicas = labeled
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.TerminatingReplicas = new(int32(len(terminating)))
	return st
}

// updateStatus writes the status when it changed (or the generation was not
// yet observed), retrying once on a fresh read.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) (*appsv1.ReplicaSet, error) {
	if rs.Generation == rs.Status.ObservedGeneration && apiequality.Semantic.DeepEqual(rs.Status, withObserved(st, rs.Status.ObservedGeneration)) {
		return rs, nil
	}
	st.ObservedGeneration = rs.Generation
	client := c.client.AppsV1().ReplicaSets(rs.Namespace)
	var err error
	for i := 0; ; i++ {
		rs.Status = st
		var updated *appsv1.ReplicaSet
		updated, err = client.UpdateStatus(ctx, rs, metav1.UpdateOptions{})
		if err == nil {
			return updated, nil
		}
		if i >= statusUpdateRetries {
			break
		}
		if rs, err = client.Get(ctx, rs.Name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
	}
	return nil, err
}

func withObserved(st appsv1.ReplicaSetStatus, gen int64) appsv1.ReplicaSetStatus {
	st.ObservedGeneration = gen
	return st
}

// NewCondition returns a ReplicaSet condition that transitioned at now.
func NewCondition(t appsv1.ReplicaSetConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.ReplicaSetCondition {
	return appsv1.ReplicaSetCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)}
}

// GetCondition returns the condition of type t, or nil.
func GetCondition(st appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) *appsv1.ReplicaSetCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// SetCondition sets cond, unless one of its type with the same status and
// reason is already there.
func SetCondition(st *appsv1.ReplicaSetStatus, cond appsv1.ReplicaSetCondition) {
	if cur := GetCondition(*st, cond.Type); cur != nil && cur.Status == cond.Status && cur.Reason == cond.Reason {
		return
	}
	RemoveCondition(st, cond.Type)
	st.Conditions = append(st.Conditions, cond)
}

// RemoveCondition drops the condition of type t.
func RemoveCondition(st *appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) {
	var out []appsv1.ReplicaSetCondition
	for _, c := range st.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	st.Conditions = out
}
