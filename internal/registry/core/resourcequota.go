package core

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

var validQuotaScopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
	corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass,
	corev1.ResourceQuotaScopeCrossNamespacePodAffinity, corev1.ResourceQuotaScopeVolumeAttributesClass}

// ResourceQuotaStrategy governs resourcequotas.
type ResourceQuotaStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = ResourceQuotaStrategy{}

// PrepareForCreate clears the status.
func (ResourceQuotaStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*corev1.ResourceQuota).Status = corev1.ResourceQuotaStatus{}
}

// Validate checks hard limits and scopes.
func (ResourceQuotaStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := obj.(*corev1.ResourceQuota).Spec, field.NewPath("spec")
	errs := ValidateResourceList(spec.Hard, p.Child("hard"))
	scopes := spec.Scopes
	if spec.ScopeSelector != nil {
		for i, req := range spec.ScopeSelector.MatchExpressions {
			rp := p.Child("scopeSelector", "matchExpressions").Index(i)
			if !sets.New(validQuotaScopes...).Has(req.ScopeName) {
				errs = append(errs, field.NotSupported(rp.Child("scopeName"), req.ScopeName, validQuotaScopes))
			}
			valid := []corev1.ScopeSelectorOperator{corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn, corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist}
			if !sets.New(valid...).Has(req.Operator) {
				errs = append(errs, field.NotSupported(rp.Child("operator"), req.Operator, valid))
			}
		}
	}
	for i, s := range scopes {
		if !sets.New(validQuotaScopes...).Has(s) {
			errs = append(errs, field.NotSupported(p.Child("scopes").Index(i), s, validQuotaScopes))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s ResourceQuotaStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ValidateStatusUpdate checks the hard and used quantities.
func (ResourceQuotaStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := obj.(*corev1.ResourceQuota).Status, field.NewPath("status")
	return append(ValidateResourceList(st.Hard, p.Child("hard")), ValidateResourceList(st.Used, p.Child("used"))...)
}
