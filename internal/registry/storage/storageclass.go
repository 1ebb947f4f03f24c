// Package storage holds the strategies of storage.k8s.io/v1, every kind
// kube-apiserver serves there: StorageClasses, CSIStorageCapacities,
// CSIDrivers, CSINodes, VolumeAttachments and VolumeAttributesClasses. It
// defaults and validates objects as upstream does; it never acts on them
// (no attaching, no provisioning).
package storage

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's limits on provisioner parameters.
const (
	maxParameters     = 512
	maxParametersSize = 256 * (1 << 10)
)

var (
	validReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}
	validBindingModes    = []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}
)

// StorageClassStrategy governs storageclasses.
type StorageClassStrategy struct{ registry.DefaultStrategy }

// Default sets reclaimPolicy Delete and volumeBindingMode Immediate.
func (StorageClassStrategy) Default(obj runtime.Object) {
	sc := obj.(*storagev1.StorageClass)
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = new(corev1.PersistentVolumeReclaimDelete)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = new(storagev1.VolumeBindingImmediate)
	}
}

// Validate checks the provisioner, parameters, reclaim policy, binding mode
// and allowed topologies.
func (StorageClassStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	sc := obj.(*storagev1.StorageClass)
	var errs field.ErrorList
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(field.NewPath("provisioner"), ""))
	} else {
		errs = append(errs, core.ValidateQualifiedName(strings.ToLower(sc.Provisioner), field.NewPath("provisioner"))...)
	}
	pp := field.NewPath("parameters")
	if len(sc.Parameters) > maxParameters {
		errs = append(errs, field.TooMany(pp, len(sc.Parameters), maxParameters))
	}
	size := 0
	for k, v := range sc.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(pp, k, "field can not be empty."))
		}
		size += len(k) + len(v)
	}
	if size > maxParametersSize {
		errs = append(errs, field.TooLong(pp, "", maxParametersSize))
	}
	if rp := sc.ReclaimPolicy; rp != nil && *rp != "" && !sets.New(validReclaimPolicies...).Has(*rp) {
		errs = append(errs, field.NotSupported(field.NewPath("reclaimPolicy"), *rp, validReclaimPolicies))
	}
	switch m := sc.VolumeBindingMode; {
	case m == nil:
		errs = append(errs, field.Required(field.NewPath("volumeBindingMode"), ""))
	case !sets.New(validBindingModes...).Has(*m):
		errs = append(errs, field.NotSupported(field.NewPath("volumeBindingMode"), *m, validBindingModes))
	}
	for i, term := range sc.AllowedTopologies {
		tp := field.NewPath("allowedTopologies").Index(i).Child("matchLabelExpressions")
		if len(term.MatchLabelExpressions) == 0 {
			errs = append(errs, field.Required(tp, "must contain at least one requirement"))
		}
		for j, req := range term.MatchLabelExpressions {
			rp := tp.Index(j)
			errs = append(errs, core.ValidateQualifiedName(req.Key, rp.Child("key"))...)
			if len(req.Values) == 0 {
				errs = append(errs, field.Required(rp.Child("values"), "must specify as least one value"))
			}
		}
	}
	return errs
}

// ValidateUpdate keeps provisioner, parameters, reclaimPolicy and
// volumeBindingMode immutable.
func (s StorageClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	sc, oldSC := obj.(*storagev1.StorageClass), old.(*storagev1.StorageClass)
	errs := s.Validate(ctx, obj)
	if !equalMaps(sc.Parameters, oldSC.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != oldSC.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if deref(sc.ReclaimPolicy) != deref(oldSC.ReclaimPolicy) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	return append(errs, core.ValidateImmutable(sc.VolumeBindingMode, oldSC.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
