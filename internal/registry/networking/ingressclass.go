package networking

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

const maxControllerLength = 250

// IngressClassStrategy governs ingressclasses.
type IngressClassStrategy struct{ registry.DefaultStrategy }

// Default sets parameters.scope to Cluster.
func (IngressClassStrategy) Default(obj runtime.Object) {
	if p := obj.(*networkingv1.IngressClass).Spec.Parameters; p != nil && p.Scope == nil {
		p.Scope = new(networkingv1.IngressClassParametersReferenceScopeCluster)
	}
}

// Validate checks the controller name and the parameters reference.
func (IngressClassStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*networkingv1.IngressClass).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.Controller) > maxControllerLength {
		errs = append(errs, field.TooLong(p.Child("controller"), spec.Controller, maxControllerLength))
	}
	errs = append(errs, validation.IsDomainPrefixedPath(p.Child("controller"), spec.Controller)...)
	params := spec.Parameters
	if params == nil {
		return errs
	}
	pp := p.Child("parameters")
	errs = append(errs, validateTypedReference(params.APIGroup, params.Kind, params.Name, pp)...)
	switch {
	case params.Scope == nil:
		errs = append(errs, field.Required(pp.Child("scope"), ""))
	case *params.Scope == networkingv1.IngressClassParametersReferenceScopeNamespace:
		if params.Namespace == nil {
			errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			errs = append(errs, core.ValidateDNS1123Label(*params.Namespace, pp.Child("namespace"))...)
		}
	case *params.Scope == networkingv1.IngressClassParametersReferenceScopeCluster:
		if params.Namespace != nil {
			errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	default:
		errs = append(errs, field.NotSupported(pp.Child("scope"), *params.Scope, []string{"Cluster", "Namespace"}))
	}
	return errs
}

// ValidateUpdate also keeps the controller immutable.
func (s IngressClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*networkingv1.IngressClass).Spec.Controller, old.(*networkingv1.IngressClass).Spec.Controller,
		field.NewPath("spec", "controller"))...)
}
