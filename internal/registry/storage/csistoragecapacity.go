package storage

import (
	"context"

	storagev1 "k8s.io/api/storage/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// CSIStorageCapacityStrategy governs csistoragecapacities: the capacity a
// storage driver publishes for a class in a topology segment (Havre's
// agents publish one per node and local class), which the scheduler's
// VolumeBinding plugin reads.
type CSIStorageCapacityStrategy struct{ registry.DefaultStrategy }

// Validate checks, as upstream: nodeTopology is a valid label selector,
// storageClassName a DNS-1123 subdomain,
// capacity and maximumVolumeSize not negative.
func (CSIStorageCapacityStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	c := obj.(*storagev1.CSIStorageCapacity)
	var errs field.ErrorList
	errs = append(errs, metav1validation.ValidateLabelSelector(c.NodeTopology,
		metav1validation.LabelSelectorValidationOptions{}, field.NewPath("nodeTopology"))...)
	errs = append(errs, core.ValidateDNS1123Subdomain(c.StorageClassName, field.NewPath("storageClassName"))...)
	if c.Capacity != nil {
		errs = append(errs, core.ValidateNonnegativeQuantity(*c.Capacity, field.NewPath("capacity"))...)
	}
	if c.MaximumVolumeSize != nil {
		errs = append(errs, core.ValidateNonnegativeQuantity(*c.MaximumVolumeSize, field.NewPath("maximumVolumeSize"))...)
	}
	return errs
}

// ValidateUpdate keeps nodeTopology and storageClassName immutable; the
// capacities may change.
func (s CSIStorageCapacityStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	c, oldC := obj.(*storagev1.CSIStorageCapacity), old.(*storagev1.CSIStorageCapacity)
	errs := s.Validate(ctx, obj)
	errs = append(errs, core.ValidateImmutable(c.NodeTopology, oldC.NodeTopology, field.NewPath("nodeTopology"))...)
	return append(errs, core.ValidateImmutable(c.StorageClassName, oldC.StorageClassName, field.NewPath("storageClassName"))...)
}
