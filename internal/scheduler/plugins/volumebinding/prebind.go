package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	volumehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/volume"
)

// PreBind carries out the node's choices: volumes are pre-bound to their
// claims (the PersistentVolume controller completes the binding) and
// claims to provision get volume.kubernetes.io/selected-node (the
// PersistentVolume controller adds the storage-provisioner annotation,
// and the provisioner of the node creates the volume). Then it waits
// until every claim of the pod is bound, at most BindTimeout; a failure
// unreserves the pod and requeues it.
func (pl *VolumeBinding) PreBind(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	s, st := readState(state)
	if st != nil || s.reserved == nil {
		return nil // no unbound claims
	}
	defer pl.assumed.forget(pod)
	if err := pl.writeChoices(ctx, s.reserved, nodeName); err != nil {
		return framework.AsStatus(fmt.Errorf("binding volumes: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, pl.BindTimeout)
	defer cancel()
	var lastErr error
	seen := map[string]bool{}
	err := pl.waitBound(ctx, func() (bool, error) {
		done, err := pl.checkBindings(s.reserved, nodeName, seen)
		lastErr = err
		return done, err
	})
	if err != nil {
		if lastErr != nil {
			err = lastErr
		} else if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the claims of the pod were not bound within %v: see the events of its PersistentVolumeClaims", pl.BindTimeout)
		}
		return framework.AsStatus(fmt.Errorf("binding volumes: %w", err))
	}
	return nil
}

func (pl *VolumeBinding) writeChoices(ctx context.Context, vols *podVolumes, nodeName string) error {
	for _, b := range vols.staticBindings {
		pv, err := pl.volumes.Get(b.pv.Name)
		if err != nil {
			return err
		}
		bound, dirty, err := volumehelpers.GetBindVolumeToClaim(pv, b.pvc)
		if err != nil {
			return err
		}
		if !dirty {
			continue
		}
		if _, err := pl.client.CoreV1().PersistentVolumes().Update(ctx, bound, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pre-binding persistentvolume %q to claim %s/%s: %w", pv.Name, b.pvc.Namespace, b.pvc.Name, err)
		}
		slog.Info("scheduler: volume pre-bound to claim", "pv", pv.Name, "pvc", b.pvc.Namespace+"/"+b.pvc.Name, "node", nodeName)
	}
	for _, ci := range vols.provisions {
		pvc, err := pl.claims.PersistentVolumeClaims(ci.pvc.Namespace).Get(ci.pvc.Name)
		if err != nil {
			return err
		}
		if pvc.Annotations[volume.AnnSelectedNode] == nodeName {
			continue
		}
		pvc = pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, volume.AnnSelectedNode, nodeName)
		if _, err := pl.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("selecting node %q for persistentvolumeclaim %s/%s: %w", nodeName, pvc.Namespace, pvc.Name, err)
		}
		slog.Info("scheduler: node selected for claim", "pvc", pvc.Namespace+"/"+pvc.Name, "node", nodeName)
	}
	return nil
}

// checkBindings reports whether every claim is bound; an error (a claim
// deleted, a volume taken by another, provisioning given up) stops the
// wait. seen records the claims to provision whose selected-node the
// informer has shown: only these can have had it taken away (the
// informer may lag behind PreBind's own write).
func (pl *VolumeBinding) checkBindings(vols *podVolumes, nodeName string, seen map[string]bool) (bool, error) {
	done := true
	check := func(namespace, name string, provision bool) error {
		pvc, err := pl.claims.PersistentVolumeClaims(namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("persistentvolumeclaim %s/%s was deleted", namespace, name)
		}
		if err != nil {
			return err
		}
		key := namespace + "/" + name
		if provision && pvc.Annotations[volume.AnnSelectedNode] == nodeName {
			seen[key] = true
		}
		if provision && seen[key] && pvc.Spec.VolumeName == "" && pvc.Annotations[volume.AnnSelectedNode] != nodeName {
			return fmt.Errorf("selectedNode annotation reset for PVC %q: its provisioning failed on node %q, the pod is retried", name, nodeName)
		}
		if pvc.Spec.VolumeName == "" || !metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBindCompleted) {
			done = false
			return nil
		}
		pv, err := pl.volumes.Get(pvc.Spec.VolumeName)
		if err != nil || !volumehelpers.IsVolumeBoundToClaim(pv, pvc) {
			done = false
			return nil
		}
		return nil
	}
	for _, b := range vols.staticBindings {
		pv, err := pl.volumes.Get(b.pv.Name)
		if err == nil && pv.Spec.ClaimRef != nil && !volumehelpers.IsVolumeBoundToClaim(pv, b.pvc) {
			return false, fmt.Errorf("persistentvolume %q was bound to another claim, the pod is retried", pv.Name)
		}
		if err := check(b.pvc.Namespace, b.pvc.Name, false); err != nil {
			return false, err
		}
	}
	for _, ci := range vols.provisions {
		if err := check(ci.pvc.Namespace, ci.pvc.Name, true); err != nil {
			return false, err
		}
	}
	return done, nil
}

// waitBound calls check at once, then at every claim or volume event (or
// PollInterval without one) until it is done, fails or ctx ends.
func (pl *VolumeBinding) waitBound(ctx context.Context, check func() (bool, error)) error {
	poll := time.NewTicker(pl.PollInterval)
	defer poll.Stop()
	for {
		var changed <-chan struct{}
		if pl.changed != nil {
			// Taken before the check: an event during it is not missed.
			changed = pl.changed.wait()
		}
		if done, err := check(); err != nil || done {
			return err
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
