// Package policy holds the strategy for policy/v1 PodDisruptionBudgets.
package policy

import (
	"context"

	policyv1 "k8s.io/api/policy/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

var validEvictionPolicies = []policyv1.UnhealthyPodEvictionPolicyType{policyv1.IfHealthyBudget, policyv1.AlwaysAllow}

// PodDisruptionBudgetStrategy governs poddisruptionbudgets.
type PodDisruptionBudgetStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = PodDisruptionBudgetStrategy{}

// PrepareForCreate clears the status.
func (PodDisruptionBudgetStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*policyv1.PodDisruptionBudget).Status = policyv1.PodDisruptionBudgetStatus{}
}

// Validate checks that at most one of minAvailable and maxUnavailable is
// set, each a non-negative count or a percentage up to 100%, and the
// selector.
func (PodDisruptionBudgetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*policyv1.PodDisruptionBudget).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(p, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	errs = append(errs, core.ValidateIntOrPercent(spec.MinAvailable, p.Child("minAvailable"))...)
	errs = append(errs, core.ValidateNotMoreThan100Percent(spec.MinAvailable, p.Child("minAvailable"))...)
	errs = append(errs, core.ValidateIntOrPercent(spec.MaxUnavailable, p.Child("maxUnavailable"))...)
	errs = append(errs, core.ValidateNotMoreThan100Percent(spec.MaxUnavailable, p.Child("maxUnavailable"))...)
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	if pol := spec.UnhealthyPodEvictionPolicy; pol != nil && !sets.New(validEvictionPolicies...).Has(*pol) {
		errs = append(errs, field.NotSupported(p.Child("unhealthyPodEvictionPolicy"), *pol, validEvictionPolicies))
	}
	return errs
}

// ValidateUpdate validates like Validate; policy/v1 budgets are mutable.
func (s PodDisruptionBudgetStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ValidateStatusUpdate checks the counts and conditions.
func (PodDisruptionBudgetStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := &obj.(*policyv1.PodDisruptionBudget).Status, field.NewPath("status")
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    int32
	}{{"disruptionsAllowed", st.DisruptionsAllowed}, {"currentHealthy", st.CurrentHealthy}, {"desiredHealthy", st.DesiredHealthy}, {"expectedPods", st.ExpectedPods}} {
		errs = append(errs, core.ValidateNonnegative(&f.v, p.Child(f.name))...)
	}
	return append(errs, metav1validation.ValidateConditions(st.Conditions, p.Child("conditions"))...)
}
