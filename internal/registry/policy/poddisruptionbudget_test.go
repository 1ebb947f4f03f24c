package policy

import (
	"context"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestPodDisruptionBudget(t *testing.T) {
	s, ctx := PodDisruptionBudgetStrategy{}, context.Background()
	pdb := &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: new(intstr.FromString("50%")),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	if errs := s.Validate(ctx, pdb); len(errs) > 0 {
		t.Errorf("valid pdb: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*policyv1.PodDisruptionBudgetSpec)
		field  string
		typ    field.ErrorType
	}{
		{"both", func(s *policyv1.PodDisruptionBudgetSpec) { s.MaxUnavailable = new(intstr.FromInt32(1)) }, "spec", field.ErrorTypeInvalid},
		{"over 100%", func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = new(intstr.FromString("120%")) }, "spec.minAvailable", field.ErrorTypeInvalid},
		{"negative", func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = new(intstr.FromInt32(-1)) }, "spec.minAvailable", field.ErrorTypeInvalid},
		{"bad policy", func(s *policyv1.PodDisruptionBudgetSpec) {
			s.UnhealthyPodEvictionPolicy = new(policyv1.UnhealthyPodEvictionPolicyType("Never"))
		}, "spec.unhealthyPodEvictionPolicy", field.ErrorTypeNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pdb.DeepCopy()
			tc.mutate(&p.Spec)
			errs := s.ValidateUpdate(ctx, p, pdb)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("got %v, want %s %s", errs, tc.typ, tc.field)
			}
		})
	}
	st := pdb.DeepCopy()
	st.Status.ExpectedPods = -1
	if errs := s.ValidateStatusUpdate(ctx, st, pdb); len(errs) != 1 || errs[0].Field != "status.expectedPods" {
		t.Errorf("status: %v", errs)
	}
}
