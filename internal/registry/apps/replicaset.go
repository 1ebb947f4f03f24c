package apps

import (
	"context"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// ReplicaSetStrategy governs replicasets.
type ReplicaSetStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = ReplicaSetStrategy{}

// Default sets one replica and the pod template defaults.
func (ReplicaSetStrategy) Default(obj runtime.Object) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = new(int32(1))
	}
	core.DefaultPodTemplateSpec(&rs.Spec.Template)
}

// PrepareForCreate clears the status.
func (ReplicaSetStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{}
}

// Validate validates the replicaset spec.
func (ReplicaSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*appsv1.ReplicaSet).Spec, field.NewPath("spec")
	errs := core.ValidateNonnegative(spec.Replicas, p.Child("replicas"))
	errs = append(errs, core.ValidateNonnegative(&spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	// Upstream's message says "deployment" for replicasets too.
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, "deployment", p)...)
	return append(errs, validateTemplate(&spec.Template, "ReplicaSet", p)...)
}

// ValidateUpdate also keeps the selector immutable.
func (s ReplicaSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector,
		field.NewPath("spec", "selector"))...)
}

// ValidateStatusUpdate checks the replica counts.
func (ReplicaSetStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := &obj.(*appsv1.ReplicaSet).Status, field.NewPath("status")
	labeled, ready := counter{"fullyLabeledReplicas", st.FullyLabeledReplicas}, counter{"readyReplicas", st.ReadyReplicas}
	available := counter{"availableReplicas", st.AvailableReplicas}
	errs := validateCounts(p, counter{"replicas", st.Replicas}, labeled, ready, available)
	errs = append(errs, core.ValidateNonnegative(&st.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, core.ValidateNonnegative(st.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	const msg = "cannot be greater than the number of replicas"
	errs = append(errs, validateAtMost(p, labeled, st.Replicas, msg)...)
	errs = append(errs, validateAtMost(p, ready, st.Replicas, msg)...)
	errs = append(errs, validateAtMost(p, available, st.Replicas, msg)...)
	return append(errs, validateAtMost(p, available, st.ReadyReplicas, "cannot be greater than readyReplicas")...)
}

// SelectableFields returns status.replicas.
func (ReplicaSetStrategy) SelectableFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
}
