package scheduler

import (
	"context"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
)

// updatePodStatus sets the pod's PodScheduled condition and, when
// nominate is not nil, its status.nominatedNodeName, with a strategic
// merge patch of the status; nothing is written when nothing changes.
// The transition time moves only when the condition's status changes.
func updatePodStatus(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, cond corev1.PodCondition, nominate *string) error {
	old := pod.Status
	cur := *old.DeepCopy()
	changed := setCondition(&cur, cond)
	if nominate != nil && cur.NominatedNodeName != *nominate {
		cur.NominatedNodeName = *nominate
		changed = true
	}
	if !changed {
		return nil
	}
	oldData, err := json.Marshal(corev1.Pod{Status: old})
	if err != nil {
		return err
	}
	newData, err := json.Marshal(corev1.Pod{Status: cur})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Pod{})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// setCondition updates or adds a condition and reports whether anything
// changed.
func setCondition(status *corev1.PodStatus, c corev1.PodCondition) bool {
	c.LastProbeTime = metav1.Time{}
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return false
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = metav1.Now()
		}
		*old = c
		return true
	}
	c.LastTransitionTime = metav1.Now()
	status.Conditions = append(status.Conditions, c)
	return true
}
