package storage

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestVolumeAttachmentValidate(t *testing.T) {
	s, ctx := VolumeAttachmentStrategy{}, context.Background()
	valid := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "csi-123"}, Spec: storagev1.VolumeAttachmentSpec{
		Attacher: "csi.example.com", NodeName: "n1", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("pv-1")}}}
	if errs := s.Validate(ctx, valid); len(errs) > 0 {
		t.Fatalf("valid attachment: %v", errs)
	}
	inline := &corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: "v"}}}
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.VolumeAttachment)
		field  string // "" when valid
		typ    field.ErrorType
	}{
		{"inline", func(va *storagev1.VolumeAttachment) {
			va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: inline.DeepCopy()}
		}, "", ""},
		{"no attacher", func(va *storagev1.VolumeAttachment) { va.Spec.Attacher = "" }, "spec.attacher", field.ErrorTypeRequired},
		{"bad attacher", func(va *storagev1.VolumeAttachment) { va.Spec.Attacher = "csi_example" }, "spec.attacher", field.ErrorTypeInvalid},
		{"no source", func(va *storagev1.VolumeAttachment) { va.Spec.Source = storagev1.VolumeAttachmentSource{} },
			"spec.source", field.ErrorTypeRequired},
		{"two sources", func(va *storagev1.VolumeAttachment) { va.Spec.Source.InlineVolumeSpec = inline.DeepCopy() },
			"spec.source", field.ErrorTypeForbidden},
		{"empty volume name", func(va *storagev1.VolumeAttachment) { va.Spec.Source.PersistentVolumeName = ptr.To("") },
			"spec.source.persistentVolumeName", field.ErrorTypeRequired},
		{"bad volume name", func(va *storagev1.VolumeAttachment) { va.Spec.Source.PersistentVolumeName = ptr.To("PV_1") },
			"spec.source.persistentVolumeName", field.ErrorTypeInvalid},
		{"inline with capacity", func(va *storagev1.VolumeAttachment) {
			spec := inline.DeepCopy()
			spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
			va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: spec}
		}, "spec.source.inlineVolumeSpec.capacity", field.ErrorTypeForbidden},
		{"inline without csi", func(va *storagev1.VolumeAttachment) {
			spec := inline.DeepCopy()
			spec.CSI = nil
			va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: spec}
		}, "spec.source.inlineVolumeSpec.csi", field.ErrorTypeRequired},
		{"no node", func(va *storagev1.VolumeAttachment) { va.Spec.NodeName = "" }, "spec.nodeName", field.ErrorTypeInvalid},
		{"long error", func(va *storagev1.VolumeAttachment) {
			va.Status.AttachError = &storagev1.VolumeError{Message: strings.Repeat("x", 1025)}
		}, "status.attachError.message", field.ErrorTypeTooLong},
		{"negative code", func(va *storagev1.VolumeAttachment) {
			va.Status.DetachError = &storagev1.VolumeError{ErrorCode: ptr.To[int32](-1)}
		}, "status.detachError.errorCode", field.ErrorTypeInvalid},
		{"big metadata", func(va *storagev1.VolumeAttachment) {
			va.Status.AttachmentMetadata = map[string]string{"k": strings.Repeat("x", 256<<10)}
		}, "status.attachmentMetadata", field.ErrorTypeTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			va := valid.DeepCopy()
			tc.mutate(va)
			errs := s.Validate(ctx, va)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Errorf("valid: %v", errs)
				}
				return
			}
			expectOne(t, errs, tc.field, tc.typ)
		})
	}

	// Create clears the status; updates may not touch the spec.
	withStatus := valid.DeepCopy()
	withStatus.Status.Attached = true
	s.PrepareForCreate(ctx, withStatus)
	if withStatus.Status.Attached {
		t.Error("status kept on create")
	}
	upd := valid.DeepCopy()
	upd.Labels = map[string]string{"a": "b"}
	if errs := s.ValidateUpdate(ctx, upd, valid); len(errs) > 0 {
		t.Errorf("label update: %v", errs)
	}
	upd.Spec.NodeName = "n2"
	expectOne(t, s.ValidateUpdate(ctx, upd, valid), "spec", field.ErrorTypeInvalid)
	// The status subresource validates the status.
	st := valid.DeepCopy()
	st.Status.AttachError = &storagev1.VolumeError{ErrorCode: ptr.To[int32](-2)}
	expectOne(t, s.ValidateStatusUpdate(ctx, st, valid), "status.attachError.errorCode", field.ErrorTypeInvalid)
}
