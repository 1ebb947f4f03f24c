package persistentvolume

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/volume"
)

func (c *Controller) syncVolumeKey(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.syncVolume(ctx, pv)
}

// syncVolume is upstream's syncVolume: an unbound volume is Available; a
// volume whose claim is gone is Released and reclaimed; a volume whose
// claim went to another volume is unbound (or, provisioned for it and
// Delete, released).
func (c *Controller) syncVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Unbound, or pre-bound to a claim not bound yet (the claim's sync
		// binds it).
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
		return err
	}
	pvc, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		// The cache may lag behind a claim just created: ask the API.
		pvc, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		pvc = nil
	case err != nil:
		return err
	case pvc.UID != ref.UID:
		// Deleted and created again: not this volume's claim.
		pvc = nil
	}
	switch {
	case pvc == nil:
		return c.release(ctx, pv)
	case pvc.Spec.VolumeName == "":
		if storagehelpers.CheckVolumeModeMismatches(&pvc.Spec, &pv.Spec) {
			c.recorder.Event(pv, corev1.EventTypeWarning, VolumeMismatch, fmt.Sprintf(
				"Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", pvc.Name))
			c.recorder.Event(pvc, corev1.EventTypeWarning, VolumeMismatch, fmt.Sprintf(
				"Cannot bind PersistentVolume %q to requested PersistentVolumeClaim due to incompatible volumeMode.", pv.Name))
			return nil
		}
		// Binding under way (or a provisioned volume): the claim's sync
		// completes it.
		c.claimQueue.Add(claimKey(pvc.Namespace, pvc.Name))
		return nil
	case pvc.Spec.VolumeName == pv.Name:
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeBound, "")
		return err
	case metav1.HasAnnotation(pv.ObjectMeta, volume.AnnProvisionedBy) && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that was bound elsewhere: not needed.
		return c.release(ctx, pv)
	default:
		return c.unbindVolume(ctx, pv)
	}
}

// release marks the volume Released (a Failed one stays Failed) and
// applies its reclaim policy.
func (c *Controller) release(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
		var err error
		if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
			return err
		}
	}
	return c.reclaim(ctx, pv)
}

// reclaim applies a released volume's reclaim policy. Retain keeps it
// Released. No recycler runs here: Recycle fails the volume. Delete leaves
// a volume of an external provisioner to that provisioner; no in-tree
// deleter runs here either, so other volumes fail.
func (c *Controller) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	var err error
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
	case corev1.PersistentVolumeReclaimRecycle:
		_, err = c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, corev1.EventTypeWarning, VolumeFailedRecycle,
			"No recycler plugin found for the volume!")
	case corev1.PersistentVolumeReclaimDelete:
		if by := pv.Annotations[volume.AnnProvisionedBy]; by != "" && !strings.HasPrefix(by, "kubernetes.io/") {
			return nil
		}
		_, err = c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, corev1.EventTypeWarning, VolumeFailedDelete,
			fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name))
	default:
		_, err = c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, corev1.EventTypeWarning, "VolumeUnknownReclaimPolicy",
			"Volume has unrecognized PersistentVolumeReclaimPolicy")
	}
	return err
}
