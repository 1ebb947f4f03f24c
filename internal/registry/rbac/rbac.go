package rbac

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// ValidateName validates the name of a role or binding, and of a role a
// binding refers to: any path segment, as upstream's ValidateRBACName
// ("system:node" is valid, "a/b" is not).
func ValidateName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// RoleStrategy governs Roles.
type RoleStrategy struct{ registry.DefaultStrategy }

// Validate checks the rules.
func (RoleStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validateRules(obj.(*rbacv1.Role).Rules, true)
}

// ValidateUpdate validates like Validate.
func (s RoleStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ClusterRoleStrategy governs ClusterRoles.
type ClusterRoleStrategy struct{ registry.DefaultStrategy }

// Validate checks the rules and the aggregation rule.
func (ClusterRoleStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	role := obj.(*rbacv1.ClusterRole)
	errs := validateRules(role.Rules, false)
	if ar := role.AggregationRule; ar != nil {
		p := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(ar.ClusterRoleSelectors) == 0 {
			errs = append(errs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range ar.ClusterRoleSelectors {
			sel := &ar.ClusterRoleSelectors[i]
			errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, p.Index(i))...)
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				errs = append(errs, field.Invalid(p.Index(i), sel, "invalid label selector."))
			}
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s ClusterRoleStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func validateRules(rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	for i, rule := range rules {
		errs = append(errs, ValidatePolicyRule(rule, namespaced, field.NewPath("rules").Index(i))...)
	}
	return errs
}

// ValidatePolicyRule checks one rule as upstream does: verbs are required;
// a rule is about either non-resource URLs (in ClusterRoles only) or API
// groups and resources, never both.
func ValidatePolicyRule(rule rbacv1.PolicyRule, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(rule.Verbs) == 0 {
		errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
	}
	if len(rule.NonResourceURLs) > 0 {
		if namespaced {
			errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
		}
		if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
			errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		return errs
	}
	if len(rule.APIGroups) == 0 {
		errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
	}
	if len(rule.Resources) == 0 {
		errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
	}
	return errs
}

// RoleBindingStrategy governs RoleBindings.
type RoleBindingStrategy struct{ registry.DefaultStrategy }

// Default fills the roleRef's and subjects' API groups.
func (RoleBindingStrategy) Default(obj runtime.Object) {
	rb := obj.(*rbacv1.RoleBinding)
	defaultBinding(&rb.RoleRef, rb.Subjects)
}

// Validate checks the roleRef (a Role or ClusterRole) and the subjects.
func (RoleBindingStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	rb := obj.(*rbacv1.RoleBinding)
	return validateBinding(rb.RoleRef, rb.Subjects, true)
}

// ValidateUpdate also keeps the roleRef immutable.
func (s RoleBindingStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	rb := obj.(*rbacv1.RoleBinding)
	return append(s.Validate(ctx, obj), validateRoleRefUpdate(rb.RoleRef, old.(*rbacv1.RoleBinding).RoleRef)...)
}

// ClusterRoleBindingStrategy governs ClusterRoleBindings.
type ClusterRoleBindingStrategy struct{ registry.DefaultStrategy }

// Default fills the roleRef's and subjects' API groups.
func (ClusterRoleBindingStrategy) Default(obj runtime.Object) {
	crb := obj.(*rbacv1.ClusterRoleBinding)
	defaultBinding(&crb.RoleRef, crb.Subjects)
}

// Validate checks the roleRef (a ClusterRole) and the subjects.
func (ClusterRoleBindingStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	crb := obj.(*rbacv1.ClusterRoleBinding)
	return validateBinding(crb.RoleRef, crb.Subjects, false)
}

// ValidateUpdate also keeps the roleRef immutable.
func (s ClusterRoleBindingStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	crb := obj.(*rbacv1.ClusterRoleBinding)
	return append(s.Validate(ctx, obj), validateRoleRefUpdate(crb.RoleRef, old.(*rbacv1.ClusterRoleBinding).RoleRef)...)
}

// defaultBinding is upstream's SetDefaults_RoleBinding and _Subject.
func defaultBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup == "" && (s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind) {
			s.APIGroup = rbacv1.GroupName
		}
	}
}

func validateBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(p.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"Role", "ClusterRole"}
	}
	if ref.Kind != "ClusterRole" && (!namespaced || ref.Kind != "Role") {
		errs = append(errs, field.NotSupported(p.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		for _, msg := range ValidateName(ref.Name, false) {
			errs = append(errs, field.Invalid(p.Child("name"), ref.Name, msg))
		}
	}
	for i, s := range subjects {
		errs = append(errs, ValidateSubject(s, namespaced, field.NewPath("subjects").Index(i))...)
	}
	return errs
}

// ValidateSubject checks one subject as upstream's
// ValidateRoleBindingSubject: a ServiceAccount has a DNS subdomain name, no
// API group and, in a ClusterRoleBinding, a namespace; a User or Group is
// in the rbac.authorization.k8s.io API group.
func ValidateSubject(s rbacv1.Subject, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(s.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), s.Name, msg))
			}
		}
		if s.APIGroup != "" {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != rbacv1.GroupName {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return errs
}

// validateRoleRefUpdate keeps the roleRef immutable ("field is immutable").
func validateRoleRefUpdate(ref, old rbacv1.RoleRef) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(ref, old, field.NewPath("roleRef"))
}
