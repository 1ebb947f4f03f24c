// Package autoscaling holds the strategy for autoscaling/v2
// HorizontalPodAutoscalers.
package autoscaling

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's defaults and limits.
const (
	defaultCPUUtilization         = int32(80)
	scaleUpLimitPods              = int32(4)
	scaleUpLimitPercent           = int32(100)
	scaleDownLimitPercent         = int32(100)
	scalingPeriodSeconds          = int32(15)
	maxStabilizationWindowSeconds = int32(3600)
	maxPeriodSeconds              = int32(1800)
)

var (
	validMetricSources = []autoscalingv2.MetricSourceType{autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType,
		autoscalingv2.ResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType}
	validSelectPolicies = []autoscalingv2.ScalingPolicySelect{autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect}
	validPolicyTypes    = []autoscalingv2.HPAScalingPolicyType{autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy}
)

// HorizontalPodAutoscalerStrategy governs horizontalpodautoscalers.
type HorizontalPodAutoscalerStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = HorizontalPodAutoscalerStrategy{}

// Default applies the autoscaling/v2 defaults: minReplicas 1, an 80% CPU
// utilization metric when none is given, and, when behavior is set, the
// default scale-up (4 pods or 100% per 15s, no stabilization) and
// scale-down (100% per 15s) rules for the parts left out.
func (HorizontalPodAutoscalerStrategy) Default(obj runtime.Object) {
	spec := &obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec
	if spec.MinReplicas == nil {
		spec.MinReplicas = new(int32(1))
	}
	if len(spec.Metrics) == 0 {
		spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(defaultCPUUtilization)},
		}}}
	}
	if b := spec.Behavior; b != nil {
		b.ScaleUp = mergeRules(b.ScaleUp, autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: new(int32(0)),
			SelectPolicy:               new(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: scaleUpLimitPods, PeriodSeconds: scalingPeriodSeconds},
				{Type: autoscalingv2.PercentScalingPolicy, Value: scaleUpLimitPercent, PeriodSeconds: scalingPeriodSeconds},
			},
		})
		b.ScaleDown = mergeRules(b.ScaleDown, autoscalingv2.HPAScalingRules{
			SelectPolicy: new(autoscalingv2.MaxChangePolicySelect),
			Policies:     []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: scaleDownLimitPercent, PeriodSeconds: scalingPeriodSeconds}},
		})
	}
}

// mergeRules fills the parts of rules left unset from defaults.
func mergeRules(rules *autoscalingv2.HPAScalingRules, defaults autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if rules == nil {
		return &defaults
	}
	if rules.SelectPolicy != nil {
		defaults.SelectPolicy = rules.SelectPolicy
	}
	if rules.StabilizationWindowSeconds != nil {
		defaults.StabilizationWindowSeconds = rules.StabilizationWindowSeconds
	}
	if rules.Policies != nil {
		defaults.Policies = rules.Policies
	}
	if rules.Tolerance != nil {
		defaults.Tolerance = rules.Tolerance
	}
	return &defaults
}

// PrepareForCreate clears the status.
func (HorizontalPodAutoscalerStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*autoscalingv2.HorizontalPodAutoscaler).Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
}

// Validate checks replica bounds, the scale target, metrics and behavior.
func (HorizontalPodAutoscalerStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	ref := spec.ScaleTargetRef
	if refErrs := validateReference(ref.Kind, ref.Name, ref.APIVersion, p.Child("scaleTargetRef")); len(refErrs) > 0 {
		return append(errs, refErrs...)
	}
	for i, m := range spec.Metrics {
		errs = append(errs, validateMetric(&m, p.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		errs = append(errs, validateRules(b.ScaleUp, p.Child("behavior", "scaleUp"))...)
		errs = append(errs, validateRules(b.ScaleDown, p.Child("behavior", "scaleDown"))...)
	}
	return errs
}

// validateReference checks an object reference: kind and name are valid
// path segments, apiVersion parses.
func validateReference(kind, name, apiVersion string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct{ name, value string }{{"kind", kind}, {"name", name}} {
		if f.value == "" {
			errs = append(errs, field.Required(p.Child(f.name), ""))
			continue
		}
		for _, msg := range content.IsPathSegmentName(f.value) {
			errs = append(errs, field.Invalid(p.Child(f.name), f.value, msg))
		}
	}
	if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), apiVersion, err.Error()))
	}
	return errs
}

func validateMetric(m *autoscalingv2.MetricSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	sources := map[autoscalingv2.MetricSourceType]struct {
		name string
		set  bool
	}{
		autoscalingv2.ObjectMetricSourceType:            {"object", m.Object != nil},
		autoscalingv2.PodsMetricSourceType:              {"pods", m.Pods != nil},
		autoscalingv2.ResourceMetricSourceType:          {"resource", m.Resource != nil},
		autoscalingv2.ContainerResourceMetricSourceType: {"containerResource", m.ContainerResource != nil},
		autoscalingv2.ExternalMetricSourceType:          {"external", m.External != nil},
	}
	switch src, ok := sources[m.Type]; {
	case m.Type == "":
		errs = append(errs, field.Required(p.Child("type"), "must specify a metric source type"))
	case !ok:
		errs = append(errs, field.NotSupported(p.Child("type"), m.Type, validMetricSources))
	case !src.set:
		errs = append(errs, field.Required(p.Child(src.name), "must populate information for the given metric source"))
	}
	set := 0
	for _, src := range sources {
		if src.set {
			set++
		}
	}
	for _, t := range validMetricSources {
		if src := sources[t]; set > 1 && src.set && t != m.Type {
			errs = append(errs, field.Forbidden(p.Child(src.name), "must populate the given metric source only"))
		}
	}
	if s := m.Resource; s != nil {
		errs = append(errs, validateResourceMetric(s.Name, s.Target, p.Child("resource"))...)
	}
	if s := m.ContainerResource; s != nil {
		if s.Container == "" {
			errs = append(errs, field.Required(p.Child("containerResource", "container"), "must specify a container"))
		}
		errs = append(errs, validateResourceMetric(s.Name, s.Target, p.Child("containerResource"))...)
	}
	if s := m.Pods; s != nil {
		errs = append(errs, validateMetricName(s.Metric, p.Child("pods"))...)
		errs = append(errs, validateTarget(s.Target, p.Child("pods", "target"))...)
		if s.Target.AverageValue == nil {
			errs = append(errs, field.Required(p.Child("pods", "target", "averageValue"), "must specify a positive target averageValue"))
		}
	}
	if s := m.Object; s != nil {
		errs = append(errs, validateReference(s.DescribedObject.Kind, s.DescribedObject.Name, s.DescribedObject.APIVersion, p.Child("object", "describedObject"))...)
		errs = append(errs, validateMetricName(s.Metric, p.Child("object"))...)
		errs = append(errs, validateValueTarget(s.Target, p.Child("object", "target"))...)
	}
	if s := m.External; s != nil {
		errs = append(errs, validateMetricName(s.Metric, p.Child("external"))...)
		errs = append(errs, validateValueTarget(s.Target, p.Child("external", "target"))...)
	}
	return errs
}

func validateResourceMetric(name corev1.ResourceName, t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must specify a resource name"))
	} else {
		errs = append(errs, core.ValidateResourceName(name, p.Child("name"))...)
	}
	errs = append(errs, validateTarget(t, p.Child("target"))...)
	switch {
	case t.AverageUtilization == nil && t.AverageValue == nil:
		errs = append(errs, field.Required(p.Child("target", "averageUtilization"), "must set either a target raw value or a target utilization"))
	case t.AverageUtilization != nil && t.AverageValue != nil:
		errs = append(errs, field.Forbidden(p.Child("target", "averageValue"), "may not set both a target raw value and a target utilization"))
	}
	return errs
}

func validateValueTarget(t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	errs := validateTarget(t, p)
	if t.Value == nil && t.AverageValue == nil {
		errs = append(errs, field.Required(p.Child("averageValue"), "must set either a target value or averageValue"))
	}
	return errs
}

func validateMetricName(m autoscalingv2.MetricIdentifier, p *field.Path) field.ErrorList {
	if m.Name == "" {
		return field.ErrorList{field.Required(p.Child("metric", "name"), "must specify a metric name")}
	}
	var errs field.ErrorList
	for _, msg := range content.IsPathSegmentName(m.Name) {
		errs = append(errs, field.Invalid(p.Child("metric", "name"), m.Name, msg))
	}
	return errs
}

func validateTarget(t autoscalingv2.MetricTarget, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.Type {
	case "":
		errs = append(errs, field.Required(p.Child("type"), "must specify a metric target type"))
	case autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType:
	default:
		errs = append(errs, field.Invalid(p.Child("type"), t.Type, "must be either Utilization, Value, or AverageValue"))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("value"), t.Value.String(), "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		errs = append(errs, field.Invalid(p.Child("averageValue"), t.AverageValue.String(), "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		errs = append(errs, field.Invalid(p.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return errs
}

func validateRules(r *autoscalingv2.HPAScalingRules, p *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && *w < 0 {
		errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, "must be greater than or equal to zero"))
	} else if w != nil && *w > maxStabilizationWindowSeconds {
		errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, fmt.Sprintf("must be less than or equal to %v", maxStabilizationWindowSeconds)))
	}
	if sp := r.SelectPolicy; sp != nil && !sets.New(validSelectPolicies...).Has(*sp) {
		errs = append(errs, field.NotSupported(p.Child("selectPolicy"), *sp, validSelectPolicies))
	}
	if len(r.Policies) == 0 {
		errs = append(errs, field.Required(p.Child("policies"), "must specify at least one Policy"))
	}
	for i, pol := range r.Policies {
		pp := p.Child("policies").Index(i)
		if !sets.New(validPolicyTypes...).Has(pol.Type) {
			errs = append(errs, field.NotSupported(pp.Child("type"), pol.Type, validPolicyTypes))
		}
		if pol.Value <= 0 {
			errs = append(errs, field.Invalid(pp.Child("value"), pol.Value, "must be greater than zero"))
		}
		switch {
		case pol.PeriodSeconds <= 0:
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, "must be greater than zero"))
		case pol.PeriodSeconds > maxPeriodSeconds:
			errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, fmt.Sprintf("must be less than or equal to %v", maxPeriodSeconds)))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s HorizontalPodAutoscalerStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ValidateStatusUpdate checks the replica counts.
func (HorizontalPodAutoscalerStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := &obj.(*autoscalingv2.HorizontalPodAutoscaler).Status, field.NewPath("status")
	errs := core.ValidateNonnegative(&st.CurrentReplicas, p.Child("currentReplicas"))
	return append(errs, core.ValidateNonnegative(&st.DesiredReplicas, p.Child("desiredReplicas"))...)
}
