package statefulset

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The persistentVolumeClaimRetentionPolicy is carried out through owner
// references, which the garbage collector acts on:
//
//	whenScaled Retain, whenDeleted Retain: no reference to the set or pod
//	whenScaled Retain, whenDeleted Delete: the set controls the claim
//	whenScaled Delete, whenDeleted Retain: the pod controls the claim once scaled down
//	whenScaled Delete, whenDeleted Delete: the set controls the claim, the pod once scaled down

var podKind = corev1.SchemeGroupVersion.WithKind("Pod")

const (
	retain = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	del    = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
)

// retentionPolicy is the set's policy, Retain/Retain when unset.
func retentionPolicy(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	p := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: retain, WhenScaled: retain}
	if rp := set.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		if rp.WhenDeleted != "" {
			p.WhenDeleted = rp.WhenDeleted
		}
		if rp.WhenScaled != "" {
			p.WhenScaled = rp.WhenScaled
		}
	}
	return p
}

// matchesRef reports whether ref names obj (kind and name, any UID).
func matchesRef(ref *metav1.OwnerReference, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	return ref.APIVersion == gvk.GroupVersion().String() && ref.Kind == gvk.Kind && ref.Name == obj.GetName()
}

// hasOwnerRef reports whether target has a reference to owner's UID.
func hasOwnerRef(target, owner metav1.Object) bool {
	for _, ref := range target.GetOwnerReferences() {
		if ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// hasStaleOwnerRef reports whether target refers to an object of obj's
// kind and name but another UID (an earlier object of that name).
func hasStaleOwnerRef(target metav1.Object, obj metav1.Object, gvk schema.GroupVersionKind) bool {
	for _, ref := range target.GetOwnerReferences() {
		if matchesRef(&ref, obj, gvk) {
			return ref.UID != obj.GetUID()
		}
	}
	return false
}

// hasUnexpectedController reports, under a policy that deletes something,
// whether a controller other than the set or pod controls the claim (or a
// reference to them has a stale UID).
func hasUnexpectedController(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	if p := retentionPolicy(set); p.WhenScaled == retain && p.WhenDeleted == retain {
		return false
	}
	for _, ref := range claim.OwnerReferences {
		switch {
		case matchesRef(&ref, set, controllerKind):
			if ref.UID != set.UID {
				return true
			}
		case matchesRef(&ref, pod, podKind):
			if ref.UID != pod.UID {
				return true
			}
		case ref.Controller != nil && *ref.Controller:
			return true
		}
	}
	return false
}

// hasNonControllerOwner reports whether the set or pod owns the claim
// without being its controller.
func hasNonControllerOwner(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	for _, ref := range claim.OwnerReferences {
		if (ref.UID == set.UID || ref.UID == pod.UID) && (ref.Controller == nil || !*ref.Controller) {
			return true
		}
	}
	return false
}

// claimOwnerUpToDate reports whether the claim's references follow the
// policy. Claims held by earlier objects or by other controllers are left
// alone (reported up to date), unless they also refer to the set or pod.
func claimOwnerUpToDate(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	if hasStaleOwnerRef(claim, set, controllerKind) || hasStaleOwnerRef(claim, pod, podKind) {
		return true
	}
	if hasUnexpectedController(claim, set, pod) {
		return !hasOwnerRef(claim, set) && !hasOwnerRef(claim, pod)
	}
	if hasNonControllerOwner(claim, set, pod) {
		return false
	}
	wantSet, wantPod := wantedOwners(set, pod)
	return hasOwnerRef(claim, set) == wantSet && hasOwnerRef(claim, pod) == wantPod
}

// wantedOwners says whether the policy wants the set, and the pod, to
// control a claim of pod.
func wantedOwners(set *appsv1.StatefulSet, pod *corev1.Pod) (wantSet, wantPod bool) {
	p := retentionPolicy(set)
	scaledDown := !inOrdinalRange(pod, set)
	switch {
	case p.WhenScaled == retain && p.WhenDeleted == del:
		return true, false
	case p.WhenScaled == del && p.WhenDeleted == retain:
		return false, scaledDown
	case p.WhenScaled == del && p.WhenDeleted == del:
		return !scaledDown, scaledDown
	}
	return false, false
}

// setClaimOwners rewrites the claim's references to the set and pod as
// the policy asks; under an unexpected controller it only removes them.
func setClaimOwners(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod) {
	unexpected := hasUnexpectedController(claim, set, pod)
	refs := make([]metav1.OwnerReference, 0, len(claim.OwnerReferences)+1)
	for _, ref := range claim.OwnerReferences {
		if !matchesRef(&ref, set, controllerKind) && !matchesRef(&ref, pod, podKind) {
			refs = append(refs, ref)
		}
	}
	if !unexpected {
		wantSet, wantPod := wantedOwners(set, pod)
		if wantSet {
			refs = append(refs, *metav1.NewControllerRef(set, controllerKind))
		}
		if wantPod {
			refs = append(refs, *metav1.NewControllerRef(pod, podKind))
		}
	}
	claim.OwnerReferences = refs
}
