package core

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

var (
	validAccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}
	validVolumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
)

// PersistentVolumeClaimStrategy governs persistentvolumeclaims.
type PersistentVolumeClaimStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = PersistentVolumeClaimStrategy{}

// Default applies the v1 defaults: volumeMode Filesystem, phase Pending.
func (PersistentVolumeClaimStrategy) Default(obj runtime.Object) {
	DefaultPersistentVolumeClaim(obj.(*corev1.PersistentVolumeClaim))
}

// DefaultPersistentVolumeClaim applies the v1 PVC defaults; StatefulSet
// volume claim templates get them too.
func DefaultPersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) {
	defaultPVCSpec(&pvc.Spec)
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
}

func defaultPVCSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
}

// PrepareForCreate resets the status: a new claim is Pending.
func (PersistentVolumeClaimStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*corev1.PersistentVolumeClaim).Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
}

// Validate validates a new claim.
func (PersistentVolumeClaimStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidatePersistentVolumeClaimSpec(&obj.(*corev1.PersistentVolumeClaim).Spec, field.NewPath("spec"))
}

// ValidatePersistentVolumeClaimSpec validates a claim spec: access modes,
// a positive storage request, volume mode, class name and selector.
func ValidatePersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"), "at least 1 access mode is required")...)
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	storagePath := fldPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else {
		errs = append(errs, ValidatePositiveQuantity(q, storagePath)...)
	}
	if c := spec.StorageClassName; c != nil && *c != "" {
		errs = append(errs, ValidateDNS1123Subdomain(*c, fldPath.Child("storageClassName"))...)
	}
	errs = append(errs, validateVolumeMode(spec.VolumeMode, fldPath.Child("volumeMode"))...)
	if ds := spec.DataSource; ds != nil {
		if ds.Kind == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSource", "kind"), ""))
		}
		if ds.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSource", "name"), ""))
		}
	}
	return errs
}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path, requiredMsg string) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(fldPath, requiredMsg)}
	}
	var errs field.ErrorList
	rwop, other := false, false
	for _, m := range modes {
		switch {
		case !sets.New(validAccessModes...).Has(m):
			errs = append(errs, field.NotSupported(fldPath, m, validAccessModes))
		case m == corev1.ReadWriteOncePod:
			rwop = true
		default:
			other = true
		}
	}
	if rwop && other {
		errs = append(errs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validateVolumeMode(m *corev1.PersistentVolumeMode, fldPath *field.Path) field.ErrorList {
	if m != nil && !sets.New(validVolumeModes...).Has(*m) {
		return field.ErrorList{field.NotSupported(fldPath, *m, validVolumeModes)}
	}
	return nil
}

// ValidateUpdate allows setting volumeName once, a class on a claim that
// has none and, for bound claims, changing the storage request; the rest of the spec is immutable.
func (s PersistentVolumeClaimStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	pvc, oldPVC := obj.(*corev1.PersistentVolumeClaim), old.(*corev1.PersistentVolumeClaim)
	errs := s.Validate(ctx, obj)
	newSpec, oldSpec := pvc.Spec.DeepCopy(), oldPVC.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	// A claim created without a class may get one later (the retroactive
	// default StorageClass), unless it has the beta class annotation.
	if _, beta := oldPVC.Annotations[corev1.BetaStorageClassAnnotation]; !beta &&
		oldSpec.StorageClassName == nil && newSpec.StorageClassName != nil && *newSpec.StorageClassName != "" {
		oldSpec.StorageClassName = newSpec.StorageClassName
	}
	if oldPVC.Status.Phase == corev1.ClaimBound {
		if newSpec.Resources.Requests != nil {
			newSpec.Resources.Requests[corev1.ResourceStorage] = oldSpec.Resources.Requests[corev1.ResourceStorage]
		}
		newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	}
	if !equality.Semantic.DeepEqual(newSpec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	newSize, oldSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage], oldPVC.Spec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 {
		if capacity := oldPVC.Status.Capacity[corev1.ResourceStorage]; newSize.Cmp(capacity) <= 0 {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
		}
	}
	return errs
}

// ValidateStatusUpdate checks the phase and capacity a binder reports.
func (PersistentVolumeClaimStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := obj.(*corev1.PersistentVolumeClaim).Status, field.NewPath("status")
	var errs field.ErrorList
	valid := []corev1.PersistentVolumeClaimPhase{corev1.ClaimPending, corev1.ClaimBound, corev1.ClaimLost}
	if st.Phase != "" && !sets.New(valid...).Has(st.Phase) {
		errs = append(errs, field.NotSupported(p.Child("phase"), st.Phase, valid))
	}
	return append(errs, ValidateResourceList(st.Capacity, p.Child("capacity"))...)
}
