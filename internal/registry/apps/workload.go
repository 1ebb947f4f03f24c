package apps

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry/core"
)

// Default revision history kept by the apps controllers.
const defaultRevisionHistoryLimit = int32(10)

// validateSelector checks a workload's selector: required, valid, not
// empty, and matching the pod template's labels.
func validateSelector(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, kind string, spec *field.Path) field.ErrorList {
	p := spec.Child("selector")
	if sel == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, p)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return append(errs, field.Invalid(p, sel, "empty selector is invalid for "+kind))
	}
	if len(errs) > 0 {
		return errs
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(p, sel, "invalid label selector"))
	}
	if !selector.Matches(labels.Set(tmpl.Labels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateTemplate validates a pod template whose pods always restart, as
// every apps workload's must, and which may not set activeDeadlineSeconds.
// kind names the workload in the activeDeadlineSeconds message.
func validateTemplate(tmpl *corev1.PodTemplateSpec, kind string, spec *field.Path) field.ErrorList {
	p := spec.Child("template")
	errs := core.ValidatePodTemplateSpec(tmpl, p)
	if rp := tmpl.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(p.Child("spec", "restartPolicy"), rp, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if ads := tmpl.Spec.ActiveDeadlineSeconds; ads != nil {
		errs = append(errs, field.Invalid(p.Child("spec", "activeDeadlineSeconds"), *ads, "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

// counter is one replica count in a workload status.
type counter struct {
	name  string
	value int32
}

// validateCounts checks status counts are non-negative.
func validateCounts(p *field.Path, counts ...counter) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, core.ValidateNonnegative(&c.value, p.Child(c.name))...)
	}
	return errs
}

// validateAtMost reports a count that exceeds a bound.
func validateAtMost(p *field.Path, c counter, bound int32, msg string) field.ErrorList {
	if c.value > bound {
		return field.ErrorList{field.Invalid(p.Child(c.name), c.value, msg)}
	}
	return nil
}

// validateCollisionCount checks a collision count is non-negative and does
// not go down.
func validateCollisionCount(count, old *int32, p *field.Path) field.ErrorList {
	errs := core.ValidateNonnegative(count, p)
	if count != nil && old != nil && *count < *old {
		errs = append(errs, field.Invalid(p, *count, "cannot be decremented"))
	}
	return errs
}
