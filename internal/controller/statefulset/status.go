package statefulset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// updateStatus writes status to the set when it differs, after completing
// a finished rolling update (every replica updated and ready: the update
// revision becomes the current one).
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	completeRollingUpdate(set, status)
	if !statusChanged(set, status) {
		return nil
	}
	toUpdate := set.DeepCopy()
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		toUpdate.Status = *status
		toUpdate.Status.Conditions = set.Status.Conditions
		_, err := c.client.AppsV1().StatefulSets(toUpdate.Namespace).UpdateStatus(ctx, toUpdate, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		fresh, getErr := c.sets.StatefulSets(set.Namespace).Get(set.Name)
		if getErr != nil {
			return fmt.Errorf("error getting updated StatefulSet %s/%s: %w", set.Namespace, set.Name, getErr)
		}
		if fresh.UID != set.UID {
			return nil // replaced by another set of that name
		}
		toUpdate = fresh.DeepCopy()
		return err
	})
}

func completeRollingUpdate(set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) {
	r := replicasOf(set)
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		status.UpdatedReplicas == r && status.ReadyReplicas == r && status.Replicas == r {
		status.CurrentReplicas = status.UpdatedReplicas
		status.CurrentRevision = status.UpdateRevision
	}
}

// statusChanged reports whether status says something set's does not.
func statusChanged(set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) bool {
	old := &set.Status
	return status.ObservedGeneration > old.ObservedGeneration ||
		status.Replicas != old.Replicas ||
		status.CurrentReplicas != old.CurrentReplicas ||
		status.ReadyReplicas != old.ReadyReplicas ||
		status.UpdatedReplicas != old.UpdatedReplicas ||
		status.AvailableReplicas != old.AvailableReplicas ||
		status.CurrentRevision != old.CurrentRevision ||
		status.UpdateRevision != old.UpdateRevision ||
		derefInt32(status.CollisionCount) != derefInt32(old.CollisionCount)
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
