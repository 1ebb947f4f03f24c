package storage

import (
	"context"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// expectOne fails t unless errs is exactly one error of typ on path.
func expectOne(t *testing.T, errs field.ErrorList, path string, typ field.ErrorType) {
	t.Helper()
	if len(errs) != 1 || errs[0].Field != path || errs[0].Type != typ {
		t.Errorf("errors %v, want one %s on %s", errs, typ, path)
	}
}

func TestCSIDriverDefault(t *testing.T) {
	d := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}}
	CSIDriverStrategy{}.Default(d)
	want := storagev1.CSIDriverSpec{AttachRequired: ptr.To(true), PodInfoOnMount: ptr.To(false), StorageCapacity: ptr.To(false),
		FSGroupPolicy:        ptr.To(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		RequiresRepublish:    ptr.To(false), SELinuxMount: ptr.To(false), PreventPodSchedulingIfMissing: ptr.To(false)}
	if !equality.Semantic.DeepEqual(d.Spec, want) {
		t.Errorf("defaulted spec %+v, want %+v", d.Spec, want)
	}
	// Set fields are kept.
	d = &storagev1.CSIDriver{Spec: storagev1.CSIDriverSpec{AttachRequired: ptr.To(false), FSGroupPolicy: ptr.To(storagev1.FileFSGroupPolicy),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}}}
	CSIDriverStrategy{}.Default(d)
	if *d.Spec.AttachRequired || *d.Spec.FSGroupPolicy != storagev1.FileFSGroupPolicy ||
		len(d.Spec.VolumeLifecycleModes) != 1 || d.Spec.VolumeLifecycleModes[0] != storagev1.VolumeLifecycleEphemeral {
		t.Errorf("defaulting overwrote set fields: %+v", d.Spec)
	}
}

func TestCSIDriverValidate(t *testing.T) {
	s, ctx := CSIDriverStrategy{}, context.Background()
	valid := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}}
	s.Default(valid)
	if errs := s.Validate(ctx, valid); len(errs) > 0 {
		t.Fatalf("defaulted driver: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.CSIDriverSpec)
		field  string
		typ    field.ErrorType
	}{
		{"no attachRequired", func(s *storagev1.CSIDriverSpec) { s.AttachRequired = nil }, "spec.attachedRequired", field.ErrorTypeRequired},
		{"no podInfoOnMount", func(s *storagev1.CSIDriverSpec) { s.PodInfoOnMount = nil }, "spec.podInfoOnMount", field.ErrorTypeRequired},
		{"no storageCapacity", func(s *storagev1.CSIDriverSpec) { s.StorageCapacity = nil }, "spec.storageCapacity", field.ErrorTypeRequired},
		{"no seLinuxMount", func(s *storagev1.CSIDriverSpec) { s.SELinuxMount = nil }, "spec.seLinuxMount", field.ErrorTypeRequired},
		{"no preventPodSchedulingIfMissing", func(s *storagev1.CSIDriverSpec) { s.PreventPodSchedulingIfMissing = nil },
			"spec.preventPodSchedulingIfMissing", field.ErrorTypeRequired},
		{"bad fsGroupPolicy", func(s *storagev1.CSIDriverSpec) { s.FSGroupPolicy = ptr.To(storagev1.FSGroupPolicy("Always")) },
			"spec.fsGroupPolicy", field.ErrorTypeNotSupported},
		{"bad mode", func(s *storagev1.CSIDriverSpec) {
			s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"Sometimes"}
		}, "spec.volumeLifecycleModes", field.ErrorTypeNotSupported},
		{"duplicate audience", func(s *storagev1.CSIDriverSpec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a"}, {Audience: "a"}}
		}, "spec.tokenRequests[1].audience", field.ErrorTypeDuplicate},
		{"short token", func(s *storagev1.CSIDriverSpec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr.To[int64](599)}}
		}, "spec.tokenRequests[0].expirationSeconds", field.ErrorTypeInvalid},
		{"long token", func(s *storagev1.CSIDriverSpec) {
			s.TokenRequests = []storagev1.TokenRequest{{Audience: "a", ExpirationSeconds: ptr.To[int64](1<<32 + 1)}}
		}, "spec.tokenRequests[0].expirationSeconds", field.ErrorTypeInvalid},
		{"tokens in secrets without tokens", func(s *storagev1.CSIDriverSpec) { s.ServiceAccountTokenInSecrets = ptr.To(true) },
			"spec.serviceAccountTokenInSecrets", field.ErrorTypeInvalid},
		{"short update period", func(s *storagev1.CSIDriverSpec) { s.NodeAllocatableUpdatePeriodSeconds = ptr.To[int64](9) },
			"spec.nodeAllocatableUpdatePeriodSeconds", field.ErrorTypeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := valid.DeepCopy()
			tc.mutate(&d.Spec)
			expectOne(t, s.Validate(ctx, d), tc.field, tc.typ)
		})
	}
}

func TestCSIDriverValidateUpdate(t *testing.T) {
	s, ctx := CSIDriverStrategy{}, context.Background()
	old := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}}
	s.Default(old)
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.CSIDriverSpec)
		field  string // "" when the update is valid
	}{
		{"podInfoOnMount", func(s *storagev1.CSIDriverSpec) { s.PodInfoOnMount = ptr.To(true) }, ""},
		{"storageCapacity", func(s *storagev1.CSIDriverSpec) { s.StorageCapacity = ptr.To(true) }, ""},
		{"fsGroupPolicy", func(s *storagev1.CSIDriverSpec) { s.FSGroupPolicy = ptr.To(storagev1.NoneFSGroupPolicy) }, ""},
		{"tokenRequests", func(s *storagev1.CSIDriverSpec) { s.TokenRequests = []storagev1.TokenRequest{{Audience: "a"}} }, ""},
		{"attachRequired", func(s *storagev1.CSIDriverSpec) { s.AttachRequired = ptr.To(false) }, "spec.attachedRequired"},
		{"volumeLifecycleModes", func(s *storagev1.CSIDriverSpec) {
			s.VolumeLifecycleModes = append(s.VolumeLifecycleModes, storagev1.VolumeLifecycleEphemeral)
		}, "spec.volumeLifecycleModes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := old.DeepCopy()
			tc.mutate(&d.Spec)
			errs := s.ValidateUpdate(ctx, d, old)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Errorf("valid update: %v", errs)
				}
				return
			}
			expectOne(t, errs, tc.field, field.ErrorTypeInvalid)
		})
	}
}
