package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's limits on a CSINode.
const (
	csiNodeIDMaxLength         = 256
	maxStorageHealthConditions = 16
)

var (
	validHealthStatuses    = []storagev1.StorageHealthStatusType{storagev1.StorageDegraded, storagev1.StorageUnreachable}
	validHealthAccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany,
		corev1.ReadWriteOnce, corev1.ReadWriteOncePod}
	validHealthVolumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeBlock}
)

// CSINodeStrategy governs csinodes: the CSI drivers registered on a node
// (name, node ID, topology keys, volume limit), named after the node.
type CSINodeStrategy struct{ registry.DefaultStrategy }

// PrepareForCreate clears the status, which only the status subresource
// writes.
func (CSINodeStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*storagev1.CSINode).Status = storagev1.CSINodeStatus{}
}

// Validate checks each driver as upstream: a valid, unique driver name, a
// node ID of at most 256 characters, a non-negative volume count and
// unique qualified-name topology keys.
func (CSINodeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, d := range obj.(*storagev1.CSINode).Spec.Drivers {
		p := field.NewPath("spec", "drivers").Index(i)
		errs = append(errs, validateCSIDriverName(d.Name, p.Child("name"))...)
		if d.NodeID == "" {
			errs = append(errs, field.Required(p.Child("nodeID"), ""))
		}
		if len(d.NodeID) > csiNodeIDMaxLength {
			errs = append(errs, field.Invalid(p.Child("nodeID"), d.NodeID, fmt.Sprintf("must be %d characters or less", csiNodeIDMaxLength)))
		}
		if d.Allocatable != nil {
			errs = append(errs, core.ValidateNonnegative(d.Allocatable.Count, p.Child("allocatable", "count"))...)
		}
		if names.Has(d.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), d.Name))
		}
		names.Insert(d.Name)
		keys := sets.New[string]()
		for _, k := range d.TopologyKeys {
			if k == "" {
				errs = append(errs, field.Required(p, k))
			}
			if keys.Has(k) {
				errs = append(errs, field.Duplicate(p, k))
			}
			keys.Insert(k)
			errs = append(errs, core.ValidateQualifiedName(k, p)...)
		}
	}
	return errs
}

// ValidateUpdate keeps a registered driver's entry immutable, except its
// allocatable count (MutableCSINodeAllocatableCount is on in v1.37);
// drivers may be added and removed.
func (s CSINodeStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	n, oldN := obj.(*storagev1.CSINode), old.(*storagev1.CSINode)
	errs := s.Validate(ctx, obj)
	for _, od := range oldN.Spec.Drivers {
		for _, nd := range n.Spec.Drivers {
			if od.Name != nd.Name {
				continue
			}
			od, nd := od, nd
			od.Allocatable, nd.Allocatable = nil, nil
			errs = append(errs, core.ValidateImmutable(&nd, &od, field.NewPath("spec", "drivers"))...)
		}
	}
	return errs
}

// ValidateStatusUpdate checks status.storageHealth as upstream: one entry
// per driver, each with valid conditions.
func (CSINodeStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, h := range obj.(*storagev1.CSINode).Status.StorageHealth {
		p := field.NewPath("status", "storageHealth").Index(i)
		if seen.Has(h.Name) {
			errs = append(errs, field.Duplicate(p, h.Name))
		}
		seen.Insert(h.Name)
		if h.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			errs = append(errs, validateCSIDriverName(h.Name, p.Child("name"))...)
		}
		if len(h.HealthConditions) > maxStorageHealthConditions {
			errs = append(errs, field.TooMany(p.Child("healthConditions"), len(h.HealthConditions), maxStorageHealthConditions))
			continue
		}
		for j, c := range h.HealthConditions {
			errs = append(errs, validateHealthCondition(c, p.Child("healthConditions").Index(j))...)
		}
	}
	return errs
}

func validateHealthCondition(c storagev1.StorageHealthCondition, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !slices.Contains(validHealthStatuses, c.Status) {
		errs = append(errs, field.NotSupported(p.Child("status"), c.Status, validHealthStatuses))
	}
	switch {
	case c.Reason == "":
		errs = append(errs, field.Required(p.Child("reason"), ""))
	default:
		for _, msg := range metav1validation.IsValidConditionReason(c.Reason) {
			errs = append(errs, field.Invalid(p.Child("reason"), c.Reason, msg))
		}
		if len(c.Reason) > 256 {
			errs = append(errs, field.TooLong(p.Child("reason"), c.Reason, 256))
		}
	}
	if len(c.Message) > 1024 {
		errs = append(errs, field.TooLong(p.Child("message"), c.Message, 1024))
	}
	if c.AccessMode != nil && !slices.Contains(validHealthAccessModes, *c.AccessMode) {
		errs = append(errs, field.NotSupported(p.Child("accessMode"), *c.AccessMode, validHealthAccessModes))
	}
	if c.VolumeMode != nil && !slices.Contains(validHealthVolumeModes, *c.VolumeMode) {
		errs = append(errs, field.NotSupported(p.Child("volumeMode"), *c.VolumeMode, validHealthVolumeModes))
	}
	return errs
}

// validateCSIDriverName checks a driver name as upstream: required, at most
// 63 characters, a DNS-1123 subdomain once lower-cased.
func validateCSIDriverName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if len(name) > 63 {
		errs = append(errs, field.TooLong(p, "", 63))
	}
	for _, e := range core.ValidateDNS1123Subdomain(strings.ToLower(name), p) {
		e.BadValue = name
		errs = append(errs, e)
	}
	return errs
}
