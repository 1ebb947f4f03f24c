// Package scheduling holds the strategy for scheduling.k8s.io/v1
// PriorityClasses.
package scheduling

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's limits: user classes may not exceed 1e9; names with the
// system- prefix are reserved for the built-in classes.
const (
	HighestUserDefinablePriority = int32(1000000000)
	systemPriorityClassPrefix    = "system-"
)

// PriorityClassStrategy governs priorityclasses. That only one class is
// globalDefault needs a lookup the API server must do.
type PriorityClassStrategy struct{ registry.DefaultStrategy }

// Default sets preemptionPolicy PreemptLowerPriority.
func (PriorityClassStrategy) Default(obj runtime.Object) {
	if pc := obj.(*schedulingv1.PriorityClass); pc.PreemptionPolicy == nil {
		pc.PreemptionPolicy = new(corev1.PreemptLowerPriority)
	}
}

// Validate keeps user classes at or below 1e9 and system- names for the
// built-in classes, with their values.
func (PriorityClassStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	pc := obj.(*schedulingv1.PriorityClass)
	var errs field.ErrorList
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		if err := knownSystemClass(pc); err != "" {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err))
		}
	} else if pc.Value > HighestUserDefinablePriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", HighestUserDefinablePriority)))
	}
	if p := pc.PreemptionPolicy; p != nil && *p != corev1.PreemptLowerPriority && *p != corev1.PreemptNever {
		errs = append(errs, field.NotSupported(field.NewPath("preemptionPolicy"), *p, []corev1.PreemptionPolicy{corev1.PreemptLowerPriority, corev1.PreemptNever}))
	}
	return errs
}

// knownSystemClass explains why pc is not a built-in class, or returns "".
func knownSystemClass(pc *schedulingv1.PriorityClass) string {
	value, ok := core.SystemPriorityClasses[pc.Name]
	switch {
	case !ok:
		return fmt.Sprintf("%v is not a known system priority class", pc.Name)
	case pc.Value != value:
		return fmt.Sprintf("value of %v PriorityClass must be %v", pc.Name, value)
	case pc.GlobalDefault:
		return fmt.Sprintf("globalDefault of %v PriorityClass must be false", pc.Name)
	}
	return ""
}

// ValidateUpdate keeps value and preemptionPolicy immutable.
func (s PriorityClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	pc, oldPC := obj.(*schedulingv1.PriorityClass), old.(*schedulingv1.PriorityClass)
	errs := s.Validate(ctx, obj)
	if pc.Value != oldPC.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(errs, core.ValidateImmutable(pc.PreemptionPolicy, oldPC.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
}
