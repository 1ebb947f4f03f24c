package storage

import (
	"context"
	"slices"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Bounds on a CSIDriver's token requests, as upstream's.
const (
	minTokenExpirationSeconds  = 10 * 60
	maxTokenExpirationSeconds  = 1 << 32
	minAllocatableUpdatePeriod = 10
)

var validLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}

var validFSGroupPolicies = []storagev1.FSGroupPolicy{storagev1.FileFSGroupPolicy, storagev1.NoneFSGroupPolicy,
	storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy}

// CSIDriverStrategy governs csidrivers: how a CSI driver wants to be
// called (attach, pod info on mount, capacity tracking, tokens). The
// kube-apiserver defaults and gates of v1.37 apply: seLinuxMount
// (SELinuxMountReadWriteOncePod) and preventPodSchedulingIfMissing
// (VolumeLimitScaling) are on, so both are defaulted and required.
type CSIDriverStrategy struct{ registry.DefaultStrategy }

// Default fills upstream's defaults: attachRequired true, podInfoOnMount,
// storageCapacity, requiresRepublish, seLinuxMount and
// preventPodSchedulingIfMissing false, fsGroupPolicy
// ReadWriteOnceWithFSType and volumeLifecycleModes [Persistent].
func (CSIDriverStrategy) Default(obj runtime.Object) {
	spec := &obj.(*storagev1.CSIDriver).Spec
	setDefault(&spec.AttachRequired, true)
	setDefault(&spec.PodInfoOnMount, false)
	setDefault(&spec.StorageCapacity, false)
	setDefault(&spec.FSGroupPolicy, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	if len(spec.VolumeLifecycleModes) == 0 {
		spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
	}
	setDefault(&spec.RequiresRepublish, false)
	setDefault(&spec.SELinuxMount, false)
	setDefault(&spec.PreventPodSchedulingIfMissing, false)
}

// Validate checks the spec as upstream's validateCSIDriverSpec, with its
// field paths (including its "attachedRequired" for attachRequired).
func (CSIDriverStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*storagev1.CSIDriver).Spec, field.NewPath("spec")
	var errs field.ErrorList
	for _, req := range []struct {
		set  bool
		name string
	}{
		{spec.AttachRequired != nil, "attachedRequired"},
		{spec.PodInfoOnMount != nil, "podInfoOnMount"},
		{spec.StorageCapacity != nil, "storageCapacity"},
	} {
		if !req.set {
			errs = append(errs, field.Required(p.Child(req.name), ""))
		}
	}
	if fp := spec.FSGroupPolicy; fp != nil && !slices.Contains(validFSGroupPolicies, *fp) {
		errs = append(errs, field.NotSupported(p.Child("fsGroupPolicy"), *fp, validFSGroupPolicies))
	}
	errs = append(errs, validateTokenRequests(spec.TokenRequests, p.Child("tokenRequests"))...)
	for _, m := range spec.VolumeLifecycleModes {
		if !slices.Contains(validLifecycleModes, m) {
			errs = append(errs, field.NotSupported(p.Child("volumeLifecycleModes"), m, validLifecycleModes))
		}
	}
	if spec.SELinuxMount == nil {
		errs = append(errs, field.Required(p.Child("seLinuxMount"), ""))
	}
	if s := spec.NodeAllocatableUpdatePeriodSeconds; s != nil && *s < minAllocatableUpdatePeriod {
		errs = append(errs, field.Invalid(p.Child("nodeAllocatableUpdatePeriodSeconds"), *s, "must be greater than or equal to 10 seconds"))
	}
	if spec.ServiceAccountTokenInSecrets != nil && len(spec.TokenRequests) == 0 {
		errs = append(errs, field.Invalid(p.Child("serviceAccountTokenInSecrets"), *spec.ServiceAccountTokenInSecrets,
			"serviceAccountTokenInSecrets is set but no tokenRequests are specified"))
	}
	if spec.PreventPodSchedulingIfMissing == nil {
		errs = append(errs, field.Required(p.Child("preventPodSchedulingIfMissing"), ""))
	}
	return errs
}

// validateTokenRequests allows each audience once (the empty one too) and
// expirations between 10 minutes and 2^32 seconds.
func validateTokenRequests(reqs []storagev1.TokenRequest, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, r := range reqs {
		p := fldPath.Index(i)
		if seen[r.Audience] {
			errs = append(errs, field.Duplicate(p.Child("audience"), r.Audience))
			continue
		}
		seen[r.Audience] = true
		if s := r.ExpirationSeconds; s != nil {
			if *s < minTokenExpirationSeconds {
				errs = append(errs, field.Invalid(p.Child("expirationSeconds"), *s, "may not specify a duration less than 10 minutes"))
			}
			if *s > maxTokenExpirationSeconds {
				errs = append(errs, field.Invalid(p.Child("expirationSeconds"), *s, "may not specify a duration larger than 2^32 seconds"))
			}
		}
	}
	return errs
}

// ValidateUpdate keeps attachRequired and volumeLifecycleModes immutable;
// the rest of the spec may change.
func (s CSIDriverStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	d, oldD := obj.(*storagev1.CSIDriver), old.(*storagev1.CSIDriver)
	errs := s.Validate(ctx, obj)
	errs = append(errs, core.ValidateImmutable(d.Spec.AttachRequired, oldD.Spec.AttachRequired, field.NewPath("spec", "attachedRequired"))...)
	return append(errs, core.ValidateImmutable(d.Spec.VolumeLifecycleModes, oldD.Spec.VolumeLifecycleModes,
		field.NewPath("spec", "volumeLifecycleModes"))...)
}

func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
