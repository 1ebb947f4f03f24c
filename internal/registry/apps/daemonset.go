package apps

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

var validDaemonSetStrategies = []appsv1.DaemonSetUpdateStrategyType{appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType}

// DaemonSetStrategy governs daemonsets.
type DaemonSetStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = DaemonSetStrategy{}

// Default applies the apps/v1 defaults: RollingUpdate with maxUnavailable
// 1 and maxSurge 0, 10 revisions, and the pod template defaults.
func (DaemonSetStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.DaemonSet).Spec
	us := &spec.UpdateStrategy
	if us.Type == "" {
		us.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if us.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if us.RollingUpdate == nil {
			us.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if us.RollingUpdate.MaxUnavailable == nil {
			us.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(1))
		}
		if us.RollingUpdate.MaxSurge == nil {
			us.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(defaultRevisionHistoryLimit)
	}
	core.DefaultPodTemplateSpec(&spec.Template)
}

// PrepareForCreate clears the status.
func (DaemonSetStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*appsv1.DaemonSet).Status = appsv1.DaemonSetStatus{}
}

// Validate validates the daemonset spec.
func (DaemonSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*appsv1.DaemonSet).Spec, field.NewPath("spec")
	errs := validateSelector(spec.Selector, &spec.Template, "daemonset", p)
	errs = append(errs, validateTemplate(&spec.Template, "DaemonSet", p)...)
	errs = append(errs, core.ValidateNonnegative(&spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	errs = append(errs, core.ValidateNonnegative(spec.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	return append(errs, validateDaemonSetUpdateStrategy(&spec.UpdateStrategy, p.Child("updateStrategy"))...)
}

func validateDaemonSetUpdateStrategy(s *appsv1.DaemonSetUpdateStrategy, p *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		return nil
	case appsv1.RollingUpdateDaemonSetStrategyType:
	default:
		return field.ErrorList{field.NotSupported(p.Child("type"), s.Type, validDaemonSetStrategies)}
	}
	ru := s.RollingUpdate
	if ru == nil {
		return field.ErrorList{field.Required(p.Child("rollingUpdate"), "")}
	}
	rp := p.Child("rollingUpdate")
	errs := core.ValidateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))
	errs = append(errs, core.ValidateIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
	errs = append(errs, core.ValidateNotMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
	errs = append(errs, core.ValidateNotMoreThan100Percent(ru.MaxSurge, rp.Child("maxSurge"))...)
	hasUnavailable, hasSurge := core.IntOrPercentValue(ru.MaxUnavailable) != 0, core.IntOrPercentValue(ru.MaxSurge) != 0
	switch {
	case hasUnavailable && hasSurge:
		errs = append(errs, field.Invalid(rp.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case !hasUnavailable && !hasSurge:
		errs = append(errs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

// ValidateUpdate also keeps the selector immutable.
func (s DaemonSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*appsv1.DaemonSet).Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector,
		field.NewPath("spec", "selector"))...)
}

// ValidateStatusUpdate checks the scheduling counts.
func (DaemonSetStrategy) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	st, p := &obj.(*appsv1.DaemonSet).Status, field.NewPath("status")
	errs := validateCounts(p,
		counter{"currentNumberScheduled", st.CurrentNumberScheduled}, counter{"numberMisscheduled", st.NumberMisscheduled},
		counter{"desiredNumberScheduled", st.DesiredNumberScheduled}, counter{"numberReady", st.NumberReady},
		counter{"updatedNumberScheduled", st.UpdatedNumberScheduled}, counter{"numberAvailable", st.NumberAvailable},
		counter{"numberUnavailable", st.NumberUnavailable})
	errs = append(errs, core.ValidateNonnegative(&st.ObservedGeneration, p.Child("observedGeneration"))...)
	return append(errs, validateCollisionCount(st.CollisionCount, old.(*appsv1.DaemonSet).Status.CollisionCount, p.Child("collisionCount"))...)
}
