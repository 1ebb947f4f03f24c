package storage

import (
	"context"
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestCSINodeValidate(t *testing.T) {
	s, ctx := CSINodeStrategy{}, context.Background()
	valid := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
		{Name: "a.example.com", NodeID: "n1", TopologyKeys: []string{"topology.example.com/zone"},
			Allocatable: &storagev1.VolumeNodeResources{Count: ptr.To[int32](8)}},
		{Name: "b.example.com", NodeID: "n1"},
	}}}
	if errs := s.Validate(ctx, valid); len(errs) > 0 {
		t.Fatalf("valid node: %v", errs)
	}
	d0 := "spec.drivers[0]"
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.CSINodeDriver)
		field  string
		typ    field.ErrorType
	}{
		{"no name", func(d *storagev1.CSINodeDriver) { d.Name = "" }, d0 + ".name", field.ErrorTypeRequired},
		{"bad name", func(d *storagev1.CSINodeDriver) { d.Name = "a_b" }, d0 + ".name", field.ErrorTypeInvalid},
		{"long name", func(d *storagev1.CSINodeDriver) { d.Name = strings.Repeat("a", 64) }, d0 + ".name", field.ErrorTypeTooLong},
		{"duplicate name", func(d *storagev1.CSINodeDriver) { d.Name = "b.example.com" }, "spec.drivers[1].name", field.ErrorTypeDuplicate},
		{"no node ID", func(d *storagev1.CSINodeDriver) { d.NodeID = "" }, d0 + ".nodeID", field.ErrorTypeRequired},
		{"long node ID", func(d *storagev1.CSINodeDriver) { d.NodeID = strings.Repeat("n", 257) }, d0 + ".nodeID", field.ErrorTypeInvalid},
		{"negative count", func(d *storagev1.CSINodeDriver) { d.Allocatable.Count = ptr.To[int32](-1) }, d0 + ".allocatable.count",
			field.ErrorTypeInvalid},
		{"duplicate key", func(d *storagev1.CSINodeDriver) { d.TopologyKeys = []string{"zone", "zone"} }, d0, field.ErrorTypeDuplicate},
		{"bad key", func(d *storagev1.CSINodeDriver) { d.TopologyKeys = []string{"a/b/c"} }, d0, field.ErrorTypeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := valid.DeepCopy()
			tc.mutate(&n.Spec.Drivers[0])
			expectOne(t, s.Validate(ctx, n), tc.field, tc.typ)
		})
	}

	// Drivers come and go and their count changes; the rest of an entry
	// stays.
	upd := valid.DeepCopy()
	upd.Spec.Drivers[0].Allocatable.Count = ptr.To[int32](16)
	upd.Spec.Drivers = append(upd.Spec.Drivers[:1], storagev1.CSINodeDriver{Name: "c.example.com", NodeID: "n1"})
	if errs := s.ValidateUpdate(ctx, upd, valid); len(errs) > 0 {
		t.Errorf("count change, driver swap: %v", errs)
	}
	upd.Spec.Drivers[0].NodeID = "other"
	expectOne(t, s.ValidateUpdate(ctx, upd, valid), "spec.drivers", field.ErrorTypeInvalid)

	// Create clears the status.
	withStatus := valid.DeepCopy()
	withStatus.Status.StorageHealth = []storagev1.StorageHealth{{Name: "a.example.com"}}
	s.PrepareForCreate(ctx, withStatus)
	if withStatus.Status.StorageHealth != nil {
		t.Errorf("status kept on create: %+v", withStatus.Status)
	}
}

func TestCSINodeValidateStatusUpdate(t *testing.T) {
	s, ctx := CSINodeStrategy{}, context.Background()
	good := storagev1.StorageHealthCondition{Status: storagev1.StorageDegraded, Reason: "PoolFull"}
	for _, tc := range []struct {
		name   string
		health []storagev1.StorageHealth
		field  string
		typ    field.ErrorType
	}{
		{"valid", []storagev1.StorageHealth{{Name: "a.example.com", HealthConditions: []storagev1.StorageHealthCondition{good}}}, "", ""},
		{"duplicate", []storagev1.StorageHealth{{Name: "a.example.com"}, {Name: "a.example.com"}},
			"status.storageHealth[1]", field.ErrorTypeDuplicate},
		{"no name", []storagev1.StorageHealth{{}}, "status.storageHealth[0].name", field.ErrorTypeRequired},
		{"bad status", []storagev1.StorageHealth{{Name: "a.example.com", HealthConditions: []storagev1.StorageHealthCondition{
			{Status: "Fine", Reason: "Ok"}}}}, "status.storageHealth[0].healthConditions[0].status", field.ErrorTypeNotSupported},
		{"no reason", []storagev1.StorageHealth{{Name: "a.example.com", HealthConditions: []storagev1.StorageHealthCondition{
			{Status: storagev1.StorageUnreachable}}}}, "status.storageHealth[0].healthConditions[0].reason", field.ErrorTypeRequired},
		{"too many", []storagev1.StorageHealth{{Name: "a.example.com", HealthConditions: make([]storagev1.StorageHealthCondition, 17)}},
			"status.storageHealth[0].healthConditions", field.ErrorTypeTooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: storagev1.CSINodeStatus{StorageHealth: tc.health}}
			errs := s.ValidateStatusUpdate(ctx, n, n)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Errorf("valid status: %v", errs)
				}
				return
			}
			expectOne(t, errs, tc.field, tc.typ)
		})
	}
}
