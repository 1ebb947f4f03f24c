// Package coordination holds the strategy for coordination.k8s.io/v1
// Leases, used for leader election and node heartbeats.
package coordination

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// LeaseStrategy governs leases.
type LeaseStrategy struct{ registry.DefaultStrategy }

// Validate checks the duration, transitions and election strategy.
func (LeaseStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*coordinationv1.Lease).Spec, field.NewPath("spec")
	errs := core.ValidatePositive(spec.LeaseDurationSeconds, p.Child("leaseDurationSeconds"))
	errs = append(errs, core.ValidateNonnegative(spec.LeaseTransitions, p.Child("leaseTransitions"))...)
	if s := spec.Strategy; s != nil {
		errs = append(errs, core.ValidateQualifiedName(string(*s), p.Child("strategy"))...)
	}
	if ph := spec.PreferredHolder; ph != nil && *ph != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s LeaseStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
