package provisioner

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/havre/havre/internal/volume"
)

// syncResize grows the volume of a bound claim that asks for more, as
// external-resizer (the volume) and the kubelet's online expansion (the
// filesystem, here part of the backing's Expand) leave it: the volume's
// capacity and the claim's status.capacity the new size, no Resizing or
// FileSystemResizePending condition left.
func (p *Provisioner) syncResize(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Annotations[AnnStorageResizer] != volume.Provisioner || claim.Status.Phase != corev1.ClaimBound {
		return nil
	}
	pv, err := p.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.ours(pv) || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return nil
	}
	want, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil
	}
	pvSize := pv.Spec.Capacity[corev1.ResourceStorage]
	if want.Cmp(pvSize) > 0 {
		if err := p.expandVolume(ctx, claim, pv.Name, want); err != nil {
			return err
		}
		pvSize = want
	}
	if have := claim.Status.Capacity[corev1.ResourceStorage]; have.Cmp(pvSize) < 0 {
		if err := p.finishResize(ctx, claim, pvSize); err != nil {
			return err
		}
		p.recorder.Eventf(claim, corev1.EventTypeNormal, "FileSystemResizeSuccessful", "MountVolume.NodeExpandVolume succeeded for volume %q %s", pv.Name, p.o.NodeName)
		slog.Info("grew a local volume", "claim", claim.Namespace+"/"+claim.Name, "volume", pv.Name, "size", pvSize.String())
		p.kickCapacity()
	}
	return nil
}

// expandVolume grows the backing and the PersistentVolume's capacity.
func (p *Provisioner) expandVolume(ctx context.Context, claim *corev1.PersistentVolumeClaim, pvName string, want resource.Quantity) error {
	if err := p.updateClaimStatus(ctx, claim, func(c *corev1.PersistentVolumeClaim) {
		setCondition(c, corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue})
		if c.Status.AllocatedResources == nil {
			c.Status.AllocatedResources = corev1.ResourceList{}
		}
		c.Status.AllocatedResources[corev1.ResourceStorage] = want
		if c.Status.AllocatedResourceStatuses == nil {
			c.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{}
		}
		c.Status.AllocatedResourceStatuses[corev1.ResourceStorage] = corev1.PersistentVolumeClaimControllerResizeInProgress
	}); err != nil {
		return err
	}
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "Resizing", "External resizer is resizing volume %s", pvName)
	if err := p.o.Backing.Expand(ctx, pvName, want.Value()); err != nil {
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "VolumeResizeFailed", "resize volume %q by resizer %q failed: %v", pvName, volume.Provisioner, err)
		return err
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := p.client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := pv.Spec.Capacity[corev1.ResourceStorage]; c.Cmp(want) >= 0 {
			return nil
		}
		pv.Spec.Capacity[corev1.ResourceStorage] = want
		_, err = p.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("updating the capacity of PersistentVolume %s: %w", pvName, err)
	}
	p.recorder.Event(claim, corev1.EventTypeNormal, "VolumeResizeSuccessful", "Resize volume succeeded")
	return nil
}

// finishResize leaves the claim as an online expansion that finished does.
func (p *Provisioner) finishResize(ctx context.Context, claim *corev1.PersistentVolumeClaim, size resource.Quantity) error {
	return p.updateClaimStatus(ctx, claim, func(c *corev1.PersistentVolumeClaim) {
		if c.Status.Capacity == nil {
			c.Status.Capacity = corev1.ResourceList{}
		}
		c.Status.Capacity[corev1.ResourceStorage] = size
		var conditions []corev1.PersistentVolumeClaimCondition
		for _, cond := range c.Status.Conditions {
			if cond.Type != corev1.PersistentVolumeClaimResizing && cond.Type != corev1.PersistentVolumeClaimFileSystemResizePending {
				conditions = append(conditions, cond)
			}
		}
		c.Status.Conditions = conditions
		delete(c.Status.AllocatedResourceStatuses, corev1.ResourceStorage)
		if len(c.Status.AllocatedResourceStatuses) == 0 {
			c.Status.AllocatedResourceStatuses = nil
		}
		if a, ok := c.Status.AllocatedResources[corev1.ResourceStorage]; !ok || a.Cmp(size) < 0 {
			if c.Status.AllocatedResources == nil {
				c.Status.AllocatedResources = corev1.ResourceList{}
			}
			c.Status.AllocatedResources[corev1.ResourceStorage] = size
		}
	})
}

func (p *Provisioner) updateClaimStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim, change func(*corev1.PersistentVolumeClaim)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := p.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.UID != claim.UID {
			return nil
		}
		change(c)
		_, err = p.client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err
	})
}

// setCondition sets a claim's condition, keeping its transition time when
// it does not change.
func setCondition(c *corev1.PersistentVolumeClaim, cond corev1.PersistentVolumeClaimCondition) {
	now := metav1.Now()
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == cond.Type {
			if c.Status.Conditions[i].Status != cond.Status {
				c.Status.Conditions[i].LastTransitionTime = now
			}
			c.Status.Conditions[i].Status = cond.Status
			c.Status.Conditions[i].LastProbeTime = now
			return
		}
	}
	cond.LastTransitionTime, cond.LastProbeTime = now, now
	c.Status.Conditions = append(c.Status.Conditions, cond)
}
