package persistentvolume

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/volume"
)

// bind binds a volume and a claim, as upstream: the volume's claimRef,
// the volume Bound, the claim's volumeName and annotations, the claim
// Bound. Each step writes only what differs, so binding again is cheap;
// it returns the claim as written.
func (c *Controller) bind(ctx context.Context, pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) (*corev1.PersistentVolumeClaim, error) {
	next, dirty, err := storagehelpers.GetBindVolumeToClaim(pv, pvc)
	if err != nil {
		return nil, err
	}
	if dirty {
		if pv, err = c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("binding volume %s to claim %s/%s: %w", next.Name, pvc.Namespace, pvc.Name, err)
		}
	}
	if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeBound, ""); err != nil {
		return nil, err
	}
	if pvc, err = c.bindClaimToVolume(ctx, pvc, pv); err != nil {
		return nil, err
	}
	return c.updateClaimStatus(ctx, pvc, corev1.ClaimBound, pv)
}

// bindClaimToVolume sets the claim's volumeName (with bound-by-controller
// when the controller chose the volume) and bind-completed.
func (c *Controller) bindClaimToVolume(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	next, dirty := pvc.DeepCopy(), false
	if pvc.Spec.VolumeName != pv.Name {
		next.Spec.VolumeName = pv.Name
		if !metav1.HasAnnotation(next.ObjectMeta, volume.AnnBoundByController) {
			metav1.SetMetaDataAnnotation(&next.ObjectMeta, volume.AnnBoundByController, "yes")
		}
		dirty = true
	}
	if !metav1.HasAnnotation(next.ObjectMeta, volume.AnnBindCompleted) {
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, volume.AnnBindCompleted, "yes")
		dirty = true
	}
	if !dirty {
		return pvc, nil
	}
	out, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("binding claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
	}
	return out, nil
}

// unbindVolume undoes the controller's binding of a volume, or, for a
// volume the user pre-bound, forgets only the claim's uid; the volume is
// Available again.
func (c *Controller) unbindVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	next := pv.DeepCopy()
	if metav1.HasAnnotation(pv.ObjectMeta, volume.AnnBoundByController) {
		next.Spec.ClaimRef = nil
		delete(next.Annotations, volume.AnnBoundByController)
		if len(next.Annotations) == 0 {
			next.Annotations = nil
		}
	} else {
		next.Spec.ClaimRef.UID = ""
	}
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("unbinding volume %s: %w", pv.Name, err)
	}
	_, err = c.updateVolumePhase(ctx, out, corev1.VolumeAvailable, "")
	return err
}

// updateVolumePhase sets a volume's phase and message, dating a change
// of phase.
func (c *Controller) updateVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, message string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase && pv.Status.Message == message {
		return pv, nil
	}
	next := pv.DeepCopy()
	if next.Status.Phase != phase {
		now := metav1.NewTime(c.clock.Now())
		next.Status.LastPhaseTransitionTime = &now
	}
	next.Status.Phase = phase
	next.Status.Message = message
	out, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("setting volume %s %s: %w", pv.Name, phase, err)
	}
	return out, nil
}

// updateVolumePhaseWithEvent is updateVolumePhase with an event when the
// phase changes.
func (c *Controller) updateVolumePhaseWithEvent(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase,
	eventType, reason, message string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase {
		return pv, nil
	}
	out, err := c.updateVolumePhase(ctx, pv, phase, message)
	if err != nil {
		return nil, err
	}
	c.recorder.Event(out, eventType, reason, message)
	return out, nil
}
