package core

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

var validReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain}

// PersistentVolumeStrategy governs persistentvolumes.
type PersistentVolumeStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = PersistentVolumeStrategy{}

// Default applies the v1 defaults: reclaimPolicy Retain, volumeMode
// Filesystem, phase Pending.
func (PersistentVolumeStrategy) Default(obj runtime.Object) {
	pv := obj.(*corev1.PersistentVolume)
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
	if s := pv.Spec.HostPath; s != nil && s.Type == nil {
		s.Type = new(corev1.HostPathUnset)
	}
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
}

// PrepareForCreate resets the status: a new volume is Pending.
func (PersistentVolumeStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	now := metav1.Now()
	obj.(*corev1.PersistentVolume).Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending, LastPhaseTransitionTime: &now}
}

// Validate validates a new volume.
func (PersistentVolumeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*corev1.PersistentVolume).Spec, field.NewPath("spec")
	errs := validateAccessModes(spec.AccessModes, p.Child("accessModes"), "")
	capPath := p.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	}
	if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, name := range sortedKeys(spec.Capacity) {
		errs = append(errs, ValidatePositiveQuantity(spec.Capacity[name], capPath.Key(string(name)))...)
	}
	if !sets.New(validReclaimPolicies...).Has(spec.PersistentVolumeReclaimPolicy) {
		errs = append(errs, field.NotSupported(p.Child("persistentVolumeReclaimPolicy"), spec.PersistentVolumeReclaimPolicy, validReclaimPolicies))
	}
	if spec.StorageClassName != "" {
		errs = append(errs, ValidateDNS1123Subdomain(spec.StorageClassName, p.Child("storageClassName"))...)
	}
	errs = append(errs, validateVolumeMode(spec.VolumeMode, p.Child("volumeMode"))...)

	src := &spec.PersistentVolumeSource
	errs = append(errs, exactlyOne(*src, p, "must specify a volume type", "may not specify more than 1 volume type")...)
	if s := src.HostPath; s != nil {
		errs = append(errs, validateHostPath(s, p.Child("hostPath"))...)
	}
	if s := src.NFS; s != nil {
		errs = append(errs, validateNFS(s, p.Child("nfs"))...)
	}
	if s := src.Local; s != nil {
		if s.Path == "" {
			errs = append(errs, field.Required(p.Child("local", "path"), ""))
		}
		if spec.NodeAffinity == nil {
			errs = append(errs, field.Required(p.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	if s := src.CSI; s != nil {
		if s.Driver == "" {
			errs = append(errs, field.Required(p.Child("csi", "driver"), ""))
		}
		if s.VolumeHandle == "" {
			errs = append(errs, field.Required(p.Child("csi", "volumeHandle"), ""))
		}
	}
	return errs
}

// ValidateUpdate keeps the volume source, volume mode and (once set) node
// affinity immutable.
func (s PersistentVolumeStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	pv, oldPV := obj.(*corev1.PersistentVolume), old.(*corev1.PersistentVolume)
	errs := s.Validate(ctx, obj)
	if !equality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, oldPV.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	errs = append(errs, ValidateImmutable(pv.Spec.VolumeMode, oldPV.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if oldPV.Spec.NodeAffinity != nil {
		errs = append(errs, ValidateImmutable(pv.Spec.NodeAffinity, oldPV.Spec.NodeAffinity, field.NewPath("nodeAffinity"))...)
	}
	return errs
}

// ValidateStatusUpdate checks the phase.
func (PersistentVolumeStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	phase := obj.(*corev1.PersistentVolume).Status.Phase
	valid := []corev1.PersistentVolumePhase{corev1.VolumePending, corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased, corev1.VolumeFailed}
	if phase != "" && !sets.New(valid...).Has(phase) {
		return field.ErrorList{field.NotSupported(field.NewPath("status", "phase"), phase, valid)}
	}
	return nil
}
