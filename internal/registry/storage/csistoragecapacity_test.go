package storage

import (
	"context"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestCSIStorageCapacity(t *testing.T) {
	s, ctx := CSIStorageCapacityStrategy{}, context.Background()
	c := &storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: "havre-local-n1", Namespace: "kube-system"},
		NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "n1"}},
		StorageClassName: "local", Capacity: resource.NewQuantity(10<<30, resource.BinarySI)}
	if errs := s.Validate(ctx, c); len(errs) > 0 {
		t.Errorf("valid capacity: %v", errs)
	}
	neg := resource.MustParse("-1")
	for _, tc := range []struct {
		name   string
		mutate func(*storagev1.CSIStorageCapacity)
		field  string
		typ    field.ErrorType
	}{
		{"no class", func(c *storagev1.CSIStorageCapacity) { c.StorageClassName = "" }, "storageClassName", field.ErrorTypeInvalid},
		{"bad class", func(c *storagev1.CSIStorageCapacity) { c.StorageClassName = "Fast_Disks" }, "storageClassName", field.ErrorTypeInvalid},
		{"negative capacity", func(c *storagev1.CSIStorageCapacity) { c.Capacity = &neg }, "capacity", field.ErrorTypeInvalid},
		{"negative maximum", func(c *storagev1.CSIStorageCapacity) { c.MaximumVolumeSize = &neg }, "maximumVolumeSize", field.ErrorTypeInvalid},
		{"bad selector", func(c *storagev1.CSIStorageCapacity) {
			c.NodeTopology = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "In"}}}
		}, "nodeTopology.matchExpressions[0].values", field.ErrorTypeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := c.DeepCopy()
			tc.mutate(x)
			errs := s.Validate(ctx, x)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("errors %v, want one %s on %s", errs, tc.typ, tc.field)
			}
		})
	}

	// The capacities change; the class and the topology do not.
	upd := c.DeepCopy()
	upd.Capacity = resource.NewQuantity(1<<30, resource.BinarySI)
	upd.MaximumVolumeSize = resource.NewQuantity(1<<30, resource.BinarySI)
	if errs := s.ValidateUpdate(ctx, upd, c); len(errs) > 0 {
		t.Errorf("capacity update: %v", errs)
	}
	upd.StorageClassName = "other"
	upd.NodeTopology = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/hostname": "n2"}}
	errs := s.ValidateUpdate(ctx, upd, c)
	if len(errs) != 2 || errs[0].Field != "nodeTopology" || errs[1].Field != "storageClassName" {
		t.Errorf("class and topology update: %v, want both immutable", errs)
	}
}
