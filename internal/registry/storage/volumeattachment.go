package storage

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's limits on a VolumeAttachment's status.
const (
	maxAttachmentMetadataSize = 256 * (1 << 10)
	maxVolumeErrorMessageSize = 1024
)

// sourceExactlyOne is upstream's message for a source naming no volume or two.
const sourceExactlyOne = "must specify exactly one of inlineVolumeSpec and persistentVolumeName"

// VolumeAttachmentStrategy governs volumeattachments: the request that an
// attacher attach a volume to a node, and (in its status subresource) the
// attacher's answer. The spec is immutable.
type VolumeAttachmentStrategy struct{ registry.DefaultStrategy }

// PrepareForCreate clears the status, which only the attacher writes.
func (VolumeAttachmentStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*storagev1.VolumeAttachment).Status = storagev1.VolumeAttachmentStatus{}
}

// Validate checks the attacher (a CSI driver name), the source (exactly
// one of a PersistentVolume's name and an inline CSI volume), the node
// name and the status, as upstream.
func (VolumeAttachmentStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	va := obj.(*storagev1.VolumeAttachment)
	p := field.NewPath("spec")
	errs := validateCSIDriverName(va.Spec.Attacher, p.Child("attacher"))
	src, sp := va.Spec.Source, p.Child("source")
	switch {
	case src.InlineVolumeSpec == nil && src.PersistentVolumeName == nil:
		errs = append(errs, field.Required(sp, sourceExactlyOne))
	case src.InlineVolumeSpec != nil && src.PersistentVolumeName != nil:
		errs = append(errs, field.Forbidden(sp, sourceExactlyOne))
	case src.PersistentVolumeName != nil && *src.PersistentVolumeName == "":
		errs = append(errs, field.Required(sp.Child("persistentVolumeName"), "must specify non empty persistentVolumeName"))
	case src.InlineVolumeSpec != nil:
		errs = append(errs, validateInlineVolumeSpec(src.InlineVolumeSpec, sp.Child("inlineVolumeSpec"))...)
	}
	errs = append(errs, core.ValidateDNS1123Subdomain(va.Spec.NodeName, p.Child("nodeName"))...)
	errs = append(errs, validateVolumeAttachmentStatus(&va.Status)...)
	if name := src.PersistentVolumeName; name != nil && *name != "" {
		errs = append(errs, core.ValidateDNS1123Subdomain(*name, sp.Child("persistentVolumeName"))...)
	}
	return errs
}

// validateInlineVolumeSpec checks the rules upstream has for a volume
// spec carried in an attachment: a CSI source, access modes, and none of
// what only a PersistentVolume has. (Upstream also checks the CSI source
// itself; Havre does not yet.)
func validateInlineVolumeSpec(spec *corev1.PersistentVolumeSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ClaimRef != nil {
		errs = append(errs, field.Forbidden(p.Child("claimRef"), "may not be specified in the context of inline volumes"))
	}
	if len(spec.Capacity) != 0 {
		errs = append(errs, field.Forbidden(p.Child("capacity"), "may not be specified in the context of inline volumes"))
	}
	if spec.CSI == nil {
		errs = append(errs, field.Required(p.Child("csi"), "has to be specified in the context of inline volumes"))
	}
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(p.Child("accessModes"), ""))
	}
	if rp := spec.PersistentVolumeReclaimPolicy; rp != "" && rp != corev1.PersistentVolumeReclaimRetain {
		errs = append(errs, field.Forbidden(p.Child("persistentVolumeReclaimPolicy"), "may only be Retain in the context of inline volumes"))
	}
	if spec.NodeAffinity != nil {
		errs = append(errs, field.Forbidden(p.Child("nodeAffinity"), "may not be specified in the context of inline volumes"))
	}
	return errs
}

func validateVolumeAttachmentStatus(st *storagev1.VolumeAttachmentStatus) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status")
	size := 0
	for k, v := range st.AttachmentMetadata {
		size += len(k) + len(v)
	}
	if size > maxAttachmentMetadataSize {
		errs = append(errs, field.TooLong(p.Child("attachmentMetadata"), "", maxAttachmentMetadataSize))
	}
	for _, ve := range []struct {
		err  *storagev1.VolumeError
		name string
	}{{st.AttachError, "attachError"}, {st.DetachError, "detachError"}} {
		if ve.err == nil {
			continue
		}
		if len(ve.err.Message) > maxVolumeErrorMessageSize {
			errs = append(errs, field.TooLong(p.Child(ve.name, "message"), "", maxVolumeErrorMessageSize))
		}
		if c := ve.err.ErrorCode; c != nil && *c < 0 {
			errs = append(errs, field.Invalid(p.Child(ve.name, "errorCode"), *c, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
	}
	return errs
}

// ValidateUpdate keeps the spec immutable.
func (s VolumeAttachmentStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	va, oldVA := obj.(*storagev1.VolumeAttachment), old.(*storagev1.VolumeAttachment)
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(va.Spec, oldVA.Spec, field.NewPath("spec"))...)
}

// ValidateStatusUpdate checks the status as on create: attachment metadata
// within 256 KiB, error messages within 1024 bytes, error codes not
// negative.
func (s VolumeAttachmentStrategy) ValidateStatusUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
