package coordination

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestLease(t *testing.T) {
	s, ctx := LeaseStrategy{}, context.Background()
	lease := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: new("node-1"), LeaseDurationSeconds: new(int32(40))}}
	if errs := s.Validate(ctx, lease); len(errs) > 0 {
		t.Errorf("valid lease: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*coordinationv1.LeaseSpec)
		field  string
		typ    field.ErrorType
	}{
		{"zero duration", func(s *coordinationv1.LeaseSpec) { s.LeaseDurationSeconds = new(int32(0)) }, "spec.leaseDurationSeconds", field.ErrorTypeInvalid},
		{"negative transitions", func(s *coordinationv1.LeaseSpec) { s.LeaseTransitions = new(int32(-1)) }, "spec.leaseTransitions", field.ErrorTypeInvalid},
		{"preferred holder without strategy", func(s *coordinationv1.LeaseSpec) { s.PreferredHolder = new("node-2") }, "spec.preferredHolder", field.ErrorTypeForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lease.DeepCopy()
			tc.mutate(&l.Spec)
			errs := s.ValidateUpdate(ctx, l, lease)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("got %v, want %s %s", errs, tc.typ, tc.field)
			}
		})
	}
}
