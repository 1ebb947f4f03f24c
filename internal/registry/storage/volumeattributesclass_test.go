package storage

import (
	"context"
	"fmt"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestVolumeAttributesClass(t *testing.T) {
	s, ctx := VolumeAttributesClassStrategy{}, context.Background()
	valid := &storagev1.VolumeAttributesClass{ObjectMeta: metav1.ObjectMeta{Name: "gold"}, DriverName: "csi.example.com/Fast",
		Parameters: map[string]string{"iops": "3000"}}
	if errs := s.Validate(ctx, valid); len(errs) > 0 {
		t.Fatalf("valid class: %v", errs)
	}
	many := map[string]string{}
	for i := range 513 {
		many[fmt.Sprint(i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.VolumeAttributesClass)
		field  string
		typ    field.ErrorType
	}{
		{"no driver", func(c *storagev1.VolumeAttributesClass) { c.DriverName = "" }, "driverName", field.ErrorTypeRequired},
		{"bad driver", func(c *storagev1.VolumeAttributesClass) { c.DriverName = "a/b/c" }, "driverName", field.ErrorTypeInvalid},
		{"no parameters", func(c *storagev1.VolumeAttributesClass) { c.Parameters = nil }, "parameters", field.ErrorTypeRequired},
		{"empty key", func(c *storagev1.VolumeAttributesClass) { c.Parameters = map[string]string{"": "v"} }, "parameters",
			field.ErrorTypeInvalid},
		{"too many", func(c *storagev1.VolumeAttributesClass) { c.Parameters = many }, "parameters", field.ErrorTypeTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid.DeepCopy()
			tc.mutate(c)
			expectOne(t, s.Validate(ctx, c), tc.field, tc.typ)
		})
	}

	upd := valid.DeepCopy()
	upd.Labels = map[string]string{"tier": "gold"}
	if errs := s.ValidateUpdate(ctx, upd, valid); len(errs) > 0 {
		t.Errorf("label update: %v", errs)
	}
	upd.DriverName = "other.example.com"
	upd.Parameters = map[string]string{"iops": "6000"}
	errs := s.ValidateUpdate(ctx, upd, valid)
	if len(errs) != 2 || errs[0].Field != "driverName" || errs[1].Field != "parameters" ||
		errs[0].Type != field.ErrorTypeForbidden || errs[1].Type != field.ErrorTypeForbidden {
		t.Errorf("driver and parameters update: %v, want both forbidden", errs)
	}
}
