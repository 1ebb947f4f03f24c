package persistentvolume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/volume"
)

func (c *Controller) syncClaimKey(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pvc, err := c.claims.PersistentVolumeClaims(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.syncClaim(ctx, pvc)
}

// syncClaim is upstream's syncClaim: a claim whose binding was never
// completed is matched; a bound one is checked against its volume.
func (c *Controller) syncClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if !metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBindCompleted) {
		return c.syncUnboundClaim(ctx, pvc)
	}
	return c.syncBoundClaim(ctx, pvc)
}

func (c *Controller) syncUnboundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName != "" {
		return c.syncPreboundClaim(ctx, pvc)
	}
	delayBinding, err := storagehelpers.IsDelayBindingMode(pvc, c.classes)
	if err != nil {
		return err
	}
	volumes, err := c.volumes.List(labels.Everything())
	if err != nil {
		return err
	}
	pv, err := findBestMatch(pvc, volumes, delayBinding)
	if err != nil {
		return err
	}
	if pv != nil {
		_, err := c.bind(ctx, pv, pvc)
		return err
	}
	// No volume: the default class (retroactively), provisioning, or wait.
	if updated, err := c.assignDefaultClass(ctx, pvc); err != nil || updated {
		return err
	}
	switch {
	case delayBinding && !storagehelpers.IsDelayBindingProvisioning(pvc):
		c.eventForDelayBinding(pvc)
	case storagehelpers.GetPersistentVolumeClaimClass(pvc) != "":
		return c.provisionClaim(ctx, pvc)
	default:
		c.recorder.Event(pvc, corev1.EventTypeNormal, FailedBinding, "no persistent volumes available for this claim and no storage class is set")
	}
	_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
	return err
}

// findBestMatch is upstream's findBestMatchForClaim: volumes are grouped
// by their access modes; among the groups offering every mode the claim
// asks, those with fewer modes are tried first, and within a group the
// smallest matching volume wins (or the one pre-bound to the claim).
func findBestMatch(pvc *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, delayBinding bool) (*corev1.PersistentVolume, error) {
	groups := map[string][]*corev1.PersistentVolume{}
	sizes := map[string]int{}
	for _, pv := range volumes {
		if !storagehelpers.CheckAccessModes(pvc, pv) {
			continue
		}
		modes := make([]string, 0, len(pv.Spec.AccessModes))
		for _, m := range pv.Spec.AccessModes {
			modes = append(modes, string(m))
		}
		slices.Sort(modes)
		modes = slices.Compact(modes)
		key := strings.Join(modes, ",")
		groups[key] = append(groups[key], pv)
		sizes[key] = len(modes)
	}
	keys := slices.Collect(maps.Keys(groups))
	slices.SortFunc(keys, func(a, b string) int {
		if sizes[a] != sizes[b] {
			return sizes[a] - sizes[b]
		}
		return strings.Compare(a, b)
	})
	for _, key := range keys {
		pv, err := storagehelpers.FindMatchingVolume(pvc, groups[key], nil, nil, delayBinding, true)
		if err != nil || pv != nil {
			return pv, err
		}
	}
	return nil, nil
}

// syncPreboundClaim handles a claim naming its volume (spec.volumeName).
func (c *Controller) syncPreboundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// The volume may yet be created: Pending, retried on resync.
		_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
		return err
	}
	if err != nil {
		return err
	}
	switch {
	case pv.Spec.ClaimRef == nil:
		if err := checkVolumeSatisfyClaim(pv, pvc); err != nil {
			c.recorder.Event(pvc, corev1.EventTypeWarning, VolumeMismatch,
				fmt.Sprintf("Cannot bind to requested volume %q: %s", pvc.Spec.VolumeName, err))
			_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
			return err
		}
		_, err := c.bind(ctx, pv, pvc)
		return err
	case storagehelpers.IsVolumeBoundToClaim(pv, pvc):
		_, err := c.bind(ctx, pv, pvc)
		return err
	case !metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBoundByController):
		// The user pre-bound the claim to a volume bound elsewhere: it waits.
		_, err = c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
		return err
	default:
		return fmt.Errorf("invalid binding of claim %s/%s: volume %s is bound to claim %s/%s; the volume's or the claim's binding must be fixed by hand",
			pvc.Namespace, pvc.Name, pv.Name, pv.Spec.ClaimRef.Namespace, pv.Spec.ClaimRef.Name)
	}
}

// checkVolumeSatisfyClaim is what a volume named by a claim must offer,
// with upstream's messages.
func checkVolumeSatisfyClaim(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) error {
	if pv.DeletionTimestamp != nil {
		return fmt.Errorf("the volume is marked for deletion %q", pv.Name)
	}
	requested := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	if capacity.Value() < requested.Value() {
		return errors.New("requested PV is too small")
	}
	if storagehelpers.GetPersistentVolumeClass(pv) != storagehelpers.GetPersistentVolumeClaimClass(pvc) {
		return errors.New("storageClassName does not match")
	}
	if storagehelpers.CheckVolumeModeMismatches(&pvc.Spec, &pv.Spec) {
		return errors.New("incompatible volumeMode")
	}
	if !storagehelpers.CheckAccessModes(pvc, pv) {
		return errors.New("incompatible accessMode")
	}
	return nil
}

func (c *Controller) syncBoundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName == "" {
		_, err := c.updateClaimStatusWithEvent(ctx, pvc, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimLost,
			"Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
		return err
	}
	pv, err := c.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		_, err = c.updateClaimStatusWithEvent(ctx, pvc, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimLost,
			"Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		return err
	}
	if err != nil {
		return err
	}
	switch {
	case pv.Spec.ClaimRef == nil, storagehelpers.IsVolumeBoundToClaim(pv, pvc):
		// Unbound volume (bound again) or a binding to confirm.
		pvc, err := c.bind(ctx, pv, pvc)
		if err != nil {
			return err
		}
		return c.expand(ctx, pv, pvc)
	default:
		_, err = c.updateClaimStatusWithEvent(ctx, pvc, corev1.ClaimLost, nil, corev1.EventTypeWarning, ClaimMisbound,
			"Two claims are bound to the same volume, this one is bound incorrectly")
		return err
	}
}

// assignDefaultClass gives a claim created without a class the default
// class, once there is one (upstream's retroactive default StorageClass).
func (c *Controller) assignDefaultClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (bool, error) {
	if storagehelpers.PersistentVolumeClaimHasClass(pvc) {
		return false, nil
	}
	classes, err := c.classes.List(labels.Everything())
	if err != nil {
		return false, err
	}
	def := DefaultClass(classes)
	if def == nil {
		return false, nil
	}
	pvc = pvc.DeepCopy()
	pvc.Spec.StorageClassName = &def.Name
	if _, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("can't update PersistentVolumeClaim[%s/%s]: %w", pvc.Namespace, pvc.Name, err)
	}
	slog.Info("assigned the default StorageClass", logClaim(pvc), "class", def.Name)
	return true, nil
}

// DefaultClass is the default StorageClass among classes (the
// is-default-class annotation, or its beta name, "true"): the newest, then
// the first by name; nil if none is.
func DefaultClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, sc := range classes {
		if sc.Annotations[volume.AnnDefaultClass] != "true" && sc.Annotations["storageclass.beta.kubernetes.io/is-default-class"] != "true" {
			continue
		}
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}

// eventForDelayBinding says what a WaitForFirstConsumer claim waits for:
// its first pod, or the pods using it to be scheduled.
func (c *Controller) eventForDelayBinding(pvc *corev1.PersistentVolumeClaim) {
	reason, message := WaitForFirstConsumer, "waiting for first consumer to be created before binding"
	var names []string
	pods, _ := c.pods.Pods(pvc.Namespace).List(labels.Everything())
	for _, pod := range pods {
		if pod.Spec.NodeName == "" && podUsesClaim(pod, pvc.Name) {
			names = append(names, pod.Name)
		}
	}
	slices.Sort(names)
	switch len(names) {
	case 0:
	case 1:
		reason, message = WaitForPodScheduled, fmt.Sprintf("waiting for pod %s to be scheduled", names[0])
	default:
		reason, message = WaitForPodScheduled, fmt.Sprintf("waiting for pods %s to be scheduled", strings.Join(names, ","))
	}
	c.recorder.Event(pvc, corev1.EventTypeNormal, reason, message)
}

// podUsesClaim reports whether a pod mounts the claim, directly or as a
// generic ephemeral volume (claim "<pod>-<volume>").
func podUsesClaim(pod *corev1.Pod, claim string) bool {
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim:
			return true
		case v.Ephemeral != nil && pod.Name+"-"+v.Name == claim:
			return true
		}
	}
	return false
}

// provisionClaim hands the claim to its class's provisioner: every
// provisioner is external here, so the claim is annotated with it and a
// volume pre-bound to the claim is awaited.
func (c *Controller) provisionClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	class, err := c.classes.Get(storagehelpers.GetPersistentVolumeClaimClass(pvc))
	if err != nil {
		c.recorder.Event(pvc, corev1.EventTypeWarning, ProvisioningFailed, err.Error())
		return err
	}
	if strings.HasPrefix(class.Provisioner, "kubernetes.io/") {
		// In-tree plugins (kubernetes.io/no-provisioner included) do not
		// run here.
		err := fmt.Errorf("no volume plugin matched name: %s", class.Provisioner)
		c.recorder.Event(pvc, corev1.EventTypeWarning, ProvisioningFailed, err.Error())
		_, uerr := c.updateClaimStatus(ctx, pvc, corev1.ClaimPending, nil)
		return uerr
	}
	if pvc.Annotations[volume.AnnStorageProvisioner] != class.Provisioner || pvc.Annotations[volume.AnnBetaStorageProvisioner] != class.Provisioner {
		next := pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, volume.AnnStorageProvisioner, class.Provisioner)
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, volume.AnnBetaStorageProvisioner, class.Provisioner)
		updated, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			c.recorder.Event(pvc, corev1.EventTypeWarning, ProvisioningFailed, fmt.Sprintf("Error saving claim: %v", err))
			return err
		}
		pvc = updated
	}
	c.recorder.Event(pvc, corev1.EventTypeNormal, ExternalProvisioning, fmt.Sprintf(
		"Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. "+
			"If volume creation is delayed, please verify that the provisioner is running and correctly registered.", class.Provisioner))
	return nil
}

// expand hands a bound claim asking for more than its volume holds to the
// resizer, when its class allows expansion.
func (c *Controller) expand(ctx context.Context, pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) error {
	requested := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	if requested.Cmp(capacity) <= 0 {
		return nil
	}
	class, err := c.classes.Get(storagehelpers.GetPersistentVolumeClaimClass(pvc))
	if err != nil || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
		return nil
	}
	resizer := class.Provisioner
	if by := pv.Annotations[volume.AnnProvisionedBy]; by != "" {
		resizer = by
	}
	if pvc.Annotations[AnnStorageResizer] == resizer {
		return nil
	}
	cur := pvc.DeepCopy()
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, AnnStorageResizer, resizer)
	if _, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.recorder.Event(pvc, corev1.EventTypeNormal, ExternalExpanding, "waiting for an external controller to expand this PVC")
	return nil
}

// updateClaimStatus sets the claim's phase and, from the volume, its
// access modes and (when it becomes bound) capacity; nil clears them.
func (c *Controller) updateClaimStatus(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase,
	pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	next := pvc.DeepCopy()
	next.Status.Phase = phase
	if pv == nil {
		next.Status.AccessModes = nil
		next.Status.Capacity = nil
	} else {
		next.Status.AccessModes = pv.Spec.AccessModes
		// The capacity is taken when the claim becomes bound only: a
		// difference later is the resizer's to settle.
		if pvc.Status.Phase != phase {
			if capacity, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok {
				have, ok := pvc.Status.Capacity[corev1.ResourceStorage]
				if !ok || have.Cmp(capacity) != 0 {
					next.Status.Capacity = pv.Spec.Capacity
				}
			}
		}
	}
	if equality.Semantic.DeepEqual(next.Status, pvc.Status) {
		return pvc, nil
	}
	return c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
}

// updateClaimStatusWithEvent is updateClaimStatus with an event when the
// phase changes.
func (c *Controller) updateClaimStatusWithEvent(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase,
	pv *corev1.PersistentVolume, eventType, reason, message string) (*corev1.PersistentVolumeClaim, error) {
	if pvc.Status.Phase == phase {
		return pvc, nil
	}
	out, err := c.updateClaimStatus(ctx, pvc, phase, pv)
	if err != nil {
		return nil, err
	}
	c.recorder.Event(out, eventType, reason, message)
	return out, nil
}
