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

var validDeploymentStrategies = []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}

// DeploymentStrategy governs deployments.
type DeploymentStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = DeploymentStrategy{}

// Default applies the apps/v1 defaults: one replica, RollingUpdate with
// 25% maxUnavailable and maxSurge, 10 revisions, a 600s progress deadline,
// and the pod template defaults.
func (DeploymentStrategy) Default(obj runtime.Object) {
	d := obj.(*appsv1.Deployment)
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if spec.Strategy.RollingUpdate.MaxUnavailable == nil {
			spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("25%"))
		}
		if spec.Strategy.RollingUpdate.MaxSurge == nil {
			spec.Strategy.RollingUpdate.MaxSurge = new(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(defaultRevisionHistoryLimit)
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = new(int32(600))
	}
	core.DefaultPodTemplateSpec(&spec.Template)
}

// PrepareForCreate clears the status.
func (DeploymentStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{}
}

// Validate validates the deployment spec.
func (DeploymentStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*appsv1.Deployment).Spec, field.NewPath("spec")
	errs := core.ValidateNonnegative(spec.Replicas, p.Child("replicas"))
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, "deployment", p)...)
	errs = append(errs, validateTemplate(&spec.Template, "ReplicaSet", p)...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, p.Child("strategy"))...)
	errs = append(errs, core.ValidateNonnegative(spec.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	errs = append(errs, core.ValidateNonnegative(&spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	if pds := spec.ProgressDeadlineSeconds; pds != nil {
		errs = append(errs, core.ValidateNonnegative(pds, p.Child("progressDeadlineSeconds"))...)
		if *pds <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(p.Child("progressDeadlineSeconds"), *pds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, p *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := s.RollingUpdate
		if ru == nil {
			return field.ErrorList{field.Required(p.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		rp := p.Child("rollingUpdate")
		errs := core.ValidateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))
		errs = append(errs, core.ValidateIntOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
		if core.IntOrPercentValue(ru.MaxUnavailable) == 0 && core.IntOrPercentValue(ru.MaxSurge) == 0 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		return append(errs, core.ValidateNotMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
	default:
		return field.ErrorList{field.NotSupported(p.Child("type"), s.Type, validDeploymentStrategies)}
	}
	return nil
}

// ValidateUpdate also keeps the selector immutable.
func (s DeploymentStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector,
		field.NewPath("spec", "selector"))...)
}

// ValidateStatusUpdate checks the replica counts.
func (DeploymentStrategy) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	st, p := &obj.(*appsv1.Deployment).Status, field.NewPath("status")
	replicas, updated := counter{"replicas", st.Replicas}, counter{"updatedReplicas", st.UpdatedReplicas}
	ready, available := counter{"readyReplicas", st.ReadyReplicas}, counter{"availableReplicas", st.AvailableReplicas}
	errs := validateCounts(p, replicas, updated, ready, available, counter{"unavailableReplicas", st.UnavailableReplicas})
	errs = append(errs, core.ValidateNonnegative(&st.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, core.ValidateNonnegative(st.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	const msg = "cannot be greater than status.replicas"
	errs = append(errs, validateAtMost(p, updated, st.Replicas, msg)...)
	errs = append(errs, validateAtMost(p, ready, st.Replicas, msg)...)
	errs = append(errs, validateAtMost(p, available, st.Replicas, msg)...)
	errs = append(errs, validateAtMost(p, available, st.ReadyReplicas, "cannot be greater than readyReplicas")...)
	return append(errs, validateCollisionCount(st.CollisionCount, old.(*appsv1.Deployment).Status.CollisionCount, p.Child("collisionCount"))...)
}
