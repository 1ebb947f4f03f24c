package scheduling

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestPriorityClass(t *testing.T) {
	s, ctx := PriorityClassStrategy{}, context.Background()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}
	s.Default(pc)
	if *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("preemptionPolicy = %v", *pc.PreemptionPolicy)
	}
	for _, tc := range []struct {
		name  string
		pc    schedulingv1.PriorityClass
		field string
		typ   field.ErrorType
	}{
		{"valid", *pc, "", ""},
		{"system class", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical"}, Value: 2000001000}, "", ""},
		{"too high", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "max"}, Value: 1000000001}, "value", field.ErrorTypeForbidden},
		{"reserved name", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 1}, "metadata.name", field.ErrorTypeForbidden},
		{"system value", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-cluster-critical"}, Value: 1}, "metadata.name", field.ErrorTypeForbidden},
		{"bad policy", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "p"}, PreemptionPolicy: new(corev1.PreemptionPolicy("Always"))},
			"preemptionPolicy", field.ErrorTypeNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := s.Validate(ctx, &tc.pc)
			if tc.field == "" && len(errs) > 0 || tc.field != "" && (len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ) {
				t.Errorf("got %v, want %s %q", errs, tc.typ, tc.field)
			}
		})
	}
	upd := pc.DeepCopy()
	upd.Value = 2000
	if errs := s.ValidateUpdate(ctx, upd, pc); len(errs) != 1 || errs[0].Field != "value" || errs[0].Type != field.ErrorTypeForbidden {
		t.Errorf("value change: %v", errs)
	}
}
