package provisioner

import (
	"context"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// syncVolume deletes a released volume of this node whose reclaim policy
// is Delete: its backing, then the PersistentVolume. A volume whose
// policy is not Delete loses the finalizer (its data stays).
func (p *Provisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.ours(pv) {
		return nil
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return p.removeFinalizer(ctx, pv.Name)
	}
	released := pv.Status.Phase == corev1.VolumeReleased
	// Deleted by hand while not bound: its data goes too.
	deleted := pv.DeletionTimestamp != nil && pv.Status.Phase != corev1.VolumeBound
	if !released && !deleted {
		return nil
	}
	if err := p.o.Backing.Delete(ctx, pv.Name); err != nil {
		p.recorder.Eventf(pv, corev1.EventTypeWarning, "VolumeFailedDelete", "%v", err)
		return err
	}
	slog.Info("deleted a released local volume", "volume", pv.Name)
	p.kickCapacity()
	if pv.DeletionTimestamp == nil {
		err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return p.removeFinalizer(ctx, pv.Name)
}

// removeFinalizer removes Finalizer from a volume that has it.
func (p *Provisioner) removeFinalizer(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := p.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		i := slices.Index(pv.Finalizers, Finalizer)
		if i < 0 {
			return nil
		}
		pv.Finalizers = slices.Delete(slices.Clone(pv.Finalizers), i, i+1)
		_, err = p.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}
