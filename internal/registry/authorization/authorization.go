// Package authorization holds the strategies for the review kinds of
// authorization.k8s.io/v1 (SubjectAccessReview, SelfSubjectAccessReview,
// LocalSubjectAccessReview, SelfSubjectRulesReview) and of
// authentication.k8s.io/v1 (SelfSubjectReview): created, answered, never
// stored. Their answers come from internal/auth/review.
package authorization

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// SubjectAccessReviewStrategy governs SubjectAccessReviews.
type SubjectAccessReviewStrategy struct{ registry.DefaultStrategy }

// Validate checks the spec as upstream's ValidateSubjectAccessReviewSpec.
func (SubjectAccessReviewStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validateSpec(obj.(*authorizationv1.SubjectAccessReview).Spec)
}

// LocalSubjectAccessReviewStrategy governs LocalSubjectAccessReviews.
type LocalSubjectAccessReviewStrategy struct{ registry.DefaultStrategy }

// Validate also requires the namespace of the resource to be the review's.
func (LocalSubjectAccessReviewStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	sar := obj.(*authorizationv1.LocalSubjectAccessReview)
	errs := validateSpec(sar.Spec)
	if ra := sar.Spec.ResourceAttributes; ra != nil && ra.Namespace != sar.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("spec.resourceAttributes.namespace"), ra.Namespace, `must match metadata.namespace`))
	}
	if sar.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec.nonResourceAttributes"), sar.Spec.NonResourceAttributes, `disallowed on this kind of request`))
	}
	return errs
}

// SelfSubjectAccessReviewStrategy governs SelfSubjectAccessReviews.
type SelfSubjectAccessReviewStrategy struct{ registry.DefaultStrategy }

// Validate checks that exactly one kind of attributes is given.
func (SelfSubjectAccessReviewStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := obj.(*authorizationv1.SelfSubjectAccessReview).Spec
	return validateAttributes(spec.ResourceAttributes, spec.NonResourceAttributes)
}

func validateSpec(spec authorizationv1.SubjectAccessReviewSpec) field.ErrorList {
	errs := validateAttributes(spec.ResourceAttributes, spec.NonResourceAttributes)
	if spec.User == "" && len(spec.Groups) == 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "user"), spec.User, `at least one of user or group must be specified`))
	}
	return errs
}

func validateAttributes(ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) field.ErrorList {
	if (ra == nil) == (nra == nil) {
		return field.ErrorList{field.Invalid(field.NewPath("spec"), nra, `exactly one of nonResourceAttributes or resourceAttributes must be specified`)}
	}
	return nil
}
