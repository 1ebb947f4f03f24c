package storage

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestStorageClass(t *testing.T) {
	s, ctx := StorageClassStrategy{}, context.Background()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "havre.io/local-path",
		Parameters: map[string]string{"path": "/var/lib/havre/volumes"}}
	s.Default(sc)
	if *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("defaults: %+v", sc)
	}
	if errs := s.Validate(ctx, sc); len(errs) > 0 {
		t.Errorf("valid class: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.StorageClass)
		field  string
		typ    field.ErrorType
	}{
		{"no provisioner", func(c *storagev1.StorageClass) { c.Provisioner = "" }, "provisioner", field.ErrorTypeRequired},
		{"bad provisioner", func(c *storagev1.StorageClass) { c.Provisioner = "a b" }, "provisioner", field.ErrorTypeInvalid},
		{"Recycle", func(c *storagev1.StorageClass) { c.ReclaimPolicy = new(corev1.PersistentVolumeReclaimRecycle) }, "reclaimPolicy", field.ErrorTypeNotSupported},
		{"binding mode", func(c *storagev1.StorageClass) { c.VolumeBindingMode = new(storagev1.VolumeBindingMode("Later")) },
			"volumeBindingMode", field.ErrorTypeNotSupported},
		{"empty parameter key", func(c *storagev1.StorageClass) { c.Parameters[""] = "x" }, "parameters", field.ErrorTypeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sc.DeepCopy()
			tc.mutate(c)
			errs := s.Validate(ctx, c)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("got %v, want %s %s", errs, tc.typ, tc.field)
			}
		})
	}
	upd := sc.DeepCopy()
	upd.Parameters["path"] = "/data"
	upd.AllowVolumeExpansion = new(true)
	if errs := s.ValidateUpdate(ctx, upd, sc); len(errs) != 1 || errs[0].Field != "parameters" || errs[0].Type != field.ErrorTypeForbidden {
		t.Errorf("parameters change: %v", errs)
	}
}
