package autoscaling

import (
	"context"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validHPA() *autoscalingv2.HorizontalPodAutoscaler {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		MinReplicas:    new(int32(2)),
		MaxReplicas:    10,
		Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: new(int32(300))}},
	}}
	HorizontalPodAutoscalerStrategy{}.Default(hpa)
	return hpa
}

func TestHPADefaults(t *testing.T) {
	spec := validHPA().Spec
	m := spec.Metrics[0]
	if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource.Name != corev1.ResourceCPU || *m.Resource.Target.AverageUtilization != 80 {
		t.Errorf("default metric: %+v", m)
	}
	up, down := spec.Behavior.ScaleUp, spec.Behavior.ScaleDown
	if *up.StabilizationWindowSeconds != 0 || len(up.Policies) != 2 || up.Policies[0].Value != 4 || *up.SelectPolicy != autoscalingv2.MaxChangePolicySelect {
		t.Errorf("scaleUp defaults: %+v", up)
	}
	if *down.StabilizationWindowSeconds != 300 || len(down.Policies) != 1 || down.Policies[0].Value != 100 || down.Policies[0].PeriodSeconds != 15 {
		t.Errorf("scaleDown defaults: %+v", down)
	}
	bare := &autoscalingv2.HorizontalPodAutoscaler{}
	HorizontalPodAutoscalerStrategy{}.Default(bare)
	if *bare.Spec.MinReplicas != 1 || bare.Spec.Behavior != nil {
		t.Errorf("bare defaults: %+v", bare.Spec)
	}
}

func TestHPAValidate(t *testing.T) {
	s, ctx := HorizontalPodAutoscalerStrategy{}, context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*autoscalingv2.HorizontalPodAutoscalerSpec)
		field  string
		typ    field.ErrorType
	}{
		{"valid", func(*autoscalingv2.HorizontalPodAutoscalerSpec) {}, "", ""},
		{"min above max", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) { s.MaxReplicas = 1 }, "spec.maxReplicas", field.ErrorTypeInvalid},
		{"min zero", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) { s.MinReplicas = new(int32(0)) }, "spec.minReplicas", field.ErrorTypeInvalid},
		{"no target kind", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) { s.ScaleTargetRef.Kind = "" }, "spec.scaleTargetRef.kind", field.ErrorTypeRequired},
		{"no target name", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) { s.ScaleTargetRef.Name = "" }, "spec.scaleTargetRef.name", field.ErrorTypeRequired},
		{"bad utilization", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Metrics[0].Resource.Target.AverageUtilization = new(int32(0))
		},
			"spec.metrics[0].resource.target.averageUtilization", field.ErrorTypeInvalid},
		{"wrong source", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Metrics[0].Type = autoscalingv2.PodsMetricSourceType
		},
			"spec.metrics[0].pods", field.ErrorTypeRequired},
		{"pods metric without value", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Metrics[0] = autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType}}}
		}, "spec.metrics[0].pods.target.averageValue", field.ErrorTypeRequired},
		{"negative value", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Metrics[0].Resource.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("-1"))}
		}, "spec.metrics[0].resource.target.averageValue", field.ErrorTypeInvalid},
		{"long period", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Behavior.ScaleUp.Policies[0].PeriodSeconds = 3600
		},
			"spec.behavior.scaleUp.policies[0].periodSeconds", field.ErrorTypeInvalid},
		{"long window", func(s *autoscalingv2.HorizontalPodAutoscalerSpec) {
			s.Behavior.ScaleDown.StabilizationWindowSeconds = new(int32(7200))
		},
			"spec.behavior.scaleDown.stabilizationWindowSeconds", field.ErrorTypeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHPA()
			tc.mutate(&h.Spec)
			errs := s.ValidateUpdate(ctx, h, validHPA())
			if tc.field == "" && len(errs) > 0 || tc.field != "" && (len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ) {
				t.Errorf("got %v, want %s %q", errs, tc.typ, tc.field)
			}
		})
	}
	h := validHPA()
	h.Status.DesiredReplicas = -1
	if errs := s.ValidateStatusUpdate(ctx, h, validHPA()); len(errs) != 1 || errs[0].Field != "status.desiredReplicas" {
		t.Errorf("status: %v", errs)
	}
}
