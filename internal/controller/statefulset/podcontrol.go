package statefulset

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/util/retry"
)

// createPod creates the pod's claims, then the pod, then points the claims'
// owner references at what the retention policy asks.
func (c *Controller) createPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	if err := c.createClaims(ctx, set, pod); err != nil {
		c.recordPodEvent("create", set, pod, err)
		return err
	}
	_, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return err
	}
	if err == nil {
		if err := c.updateClaimsForRetention(ctx, set, pod); err != nil {
			c.recordPodEvent("update", set, pod, err)
			return err
		}
	}
	c.recordPodEvent("create", set, pod, err)
	return err
}

// createClaims creates the pod's missing claims. A claim being deleted is
// an error: the pod must wait for it to go.
func (c *Controller) createClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	var errs []error
	for _, claim := range claimsFor(set, pod) {
		existing, err := c.claims.PersistentVolumeClaims(claim.Namespace).Get(claim.Name)
		switch {
		case apierrors.IsNotFound(err):
			_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, &claim, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // our cache is behind
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", claim.Name, err))
			}
			c.recordClaimEvent("create", set, pod, &claim, err)
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to retrieve PVC %s: %w", claim.Name, err))
			c.recordClaimEvent("create", set, pod, &claim, err)
		case existing.DeletionTimestamp != nil:
			errs = append(errs, fmt.Errorf("pvc %s is being deleted", claim.Name))
		}
	}
	return utilerrors.NewAggregate(errs)
}

// deletePod deletes a pod of the set.
func (c *Controller) deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	c.recordPodEvent("delete", set, pod, err)
	return err
}

// updatePod restores the pod's identity, storage and claim ownership where
// they drifted from set.
func (c *Controller) updatePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	attempted := false
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		consistent := true
		if !identityMatches(set, pod) {
			updateIdentity(set, pod)
			consistent = false
		}
		if !storageMatches(set, pod) {
			updateStorage(set, pod)
			consistent = false
			if err := c.createClaims(ctx, set, pod); err != nil {
				c.recordPodEvent("update", set, pod, err)
				return err
			}
		}
		match, err := c.claimsMatchRetention(set, pod)
		if err != nil {
			c.recordPodEvent("update", set, pod, err)
			return err
		}
		if !match {
			if err := c.updateClaimsForRetention(ctx, set, pod); err != nil {
				c.recordPodEvent("update", set, pod, err)
				return err
			}
		}
		if consistent {
			return nil
		}
		attempted = true
		_, err = c.client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if fresh, getErr := c.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); getErr == nil {
			pod = fresh
		}
		return err
	})
	if attempted {
		c.recordPodEvent("update", set, pod, err)
	}
	return err
}

// recordPodEvent records upstream's Successful<Verb>/Failed<Verb> event on
// the set.
func (c *Controller) recordPodEvent(verb string, set *appsv1.StatefulSet, pod *corev1.Pod, err error) {
	title := strings.ToUpper(verb[:1]) + verb[1:]
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+title, "%s Pod %s in StatefulSet %s successful", verb, pod.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+title, "%s Pod %s in StatefulSet %s failed error: %s", verb, pod.Name, set.Name, err)
}

// recordClaimEvent records upstream's claim events on the set.
func (c *Controller) recordClaimEvent(verb string, set *appsv1.StatefulSet, pod *corev1.Pod, claim *corev1.PersistentVolumeClaim, err error) {
	title := strings.ToUpper(verb[:1]) + verb[1:]
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+title, "%s Claim %s Pod %s in StatefulSet %s success", verb, claim.Name, pod.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+title, "%s Claim %s for Pod %s in StatefulSet %s failed error: %s", verb, claim.Name, pod.Name, set.Name, err)
}

// claimsMatchRetention reports whether the owner references of the pod's
// existing claims are what the retention policy asks.
func (c *Controller) claimsMatchRetention(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	for _, want := range claimsFor(set, pod) {
		claim, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(want.Name)
		switch {
		case apierrors.IsNotFound(err):
			// Picked up once it exists.
		case err != nil:
			return false, fmt.Errorf("could not retrieve claim %s for %s when checking PVC deletion policy: %w", want.Name, pod.Name, err)
		default:
			if !claimOwnerUpToDate(claim, set, pod) {
				return false, nil
			}
		}
	}
	return true, nil
}

// updateClaimsForRetention rewrites the owner references of the pod's
// existing claims as the retention policy asks.
func (c *Controller) updateClaimsForRetention(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) error {
	for _, want := range claimsFor(set, pod) {
		claim, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(want.Name)
		switch {
		case apierrors.IsNotFound(err):
			// Picked up once it exists.
		case err != nil:
			return fmt.Errorf("could not retrieve claim %s not found for %s when checking PVC deletion policy: %w", want.Name, pod.Name, err)
		default:
			if hasUnexpectedController(claim, set, pod) {
				c.recordClaimEvent("update", set, pod, claim, errors.New("PersistentVolumeClaim "+claim.Name+
					" has a conflicting OwnerReference that acts as a managing controller, the retention policy is ignored for this claim"))
			}
			if claimOwnerUpToDate(claim, set, pod) {
				continue
			}
			claim = claim.DeepCopy()
			setClaimOwners(claim, set, pod)
			if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("could not update claim %s for delete policy ownerRefs: %w", claim.Name, err)
			}
		}
	}
	return nil
}

// claimIsStale reports whether one of the pod's claims, under a scale-down
// Delete policy, still belongs to an earlier pod of that name: the new pod
// must wait for the garbage collector to delete it.
func (c *Controller) claimIsStale(set *appsv1.StatefulSet, pod *corev1.Pod) (bool, error) {
	if retentionPolicy(set).WhenScaled == appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		return false, nil
	}
	for _, want := range claimsFor(set, pod) {
		claim, err := c.claims.PersistentVolumeClaims(want.Namespace).Get(want.Name)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return false, err
		case hasStaleOwnerRef(claim, pod, podKind):
			return true, nil
		}
	}
	return false, nil
}
