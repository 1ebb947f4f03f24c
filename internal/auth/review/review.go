// Package review answers the review kinds, which are evaluated, never
// stored: authorization.k8s.io/v1 SubjectAccessReviews,
// SelfSubjectAccessReviews, LocalSubjectAccessReviews and
// SelfSubjectRulesReviews ("may this user do this?", "what may I do?"),
// and authentication.k8s.io/v1 SelfSubjectReviews ("who am I?"), as
// kube-apiserver does. kubectl auth can-i and kubectl auth whoami use them.
package review

import (
	"context"
	"errors"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/auth"
)

// RulesResolver lists the rules granted to a user in a namespace.
type RulesResolver interface {
	RulesFor(u *auth.User, namespace string) ([]rbacv1.PolicyRule, error)
}

// Reviewer evaluates reviews against the server's authorizer.
type Reviewer struct {
	Authorizer auth.Authorizer
	Rules      RulesResolver
}

// Group resources of the review kinds.
var (
	SubjectAccessReviews      = schema.GroupResource{Group: authorizationv1.GroupName, Resource: "subjectaccessreviews"}
	SelfSubjectAccessReviews  = schema.GroupResource{Group: authorizationv1.GroupName, Resource: "selfsubjectaccessreviews"}
	LocalSubjectAccessReviews = schema.GroupResource{Group: authorizationv1.GroupName, Resource: "localsubjectaccessreviews"}
	SelfSubjectRulesReviews   = schema.GroupResource{Group: authorizationv1.GroupName, Resource: "selfsubjectrulesreviews"}
	SelfSubjectReviews        = schema.GroupResource{Group: authenticationv1.GroupName, Resource: "selfsubjectreviews"}
)

// Handlers returns the create handler of each review kind.
func (r *Reviewer) Handlers() map[schema.GroupResource]func(context.Context, runtime.Object) (runtime.Object, error) {
	return map[schema.GroupResource]func(context.Context, runtime.Object) (runtime.Object, error){
		SubjectAccessReviews:      r.review,
		SelfSubjectAccessReviews:  r.review,
		LocalSubjectAccessReviews: r.review,
		SelfSubjectRulesReviews:   r.rules,
		SelfSubjectReviews:        whoAmI,
	}
}

func requestUser(ctx context.Context) (*auth.User, error) {
	u, ok := auth.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	return u, nil
}

// Attributes turns a review's resource or non-resource attributes into an
// authorization request of u.
func Attributes(u *auth.User, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) auth.Attributes {
	if ra != nil {
		return auth.Attributes{User: u, Verb: ra.Verb, APIGroup: ra.Group, APIVersion: ra.Version, Resource: ra.Resource,
			Subresource: ra.Subresource, Namespace: ra.Namespace, Name: ra.Name, ResourceRequest: true}
	}
	a := auth.Attributes{User: u}
	if nra != nil {
		a.Verb, a.Path = nra.Verb, nra.Path
	}
	return a
}

// specUser is the user a SubjectAccessReview asks about.
func specUser(spec *authorizationv1.SubjectAccessReviewSpec) *auth.User {
	u := &auth.User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return u
}

func (r *Reviewer) review(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	var (
		a      auth.Attributes
		status *authorizationv1.SubjectAccessReviewStatus
	)
	switch o := obj.(type) {
	case *authorizationv1.SelfSubjectAccessReview:
		u, err := requestUser(ctx)
		if err != nil {
			return nil, err
		}
		a, status = Attributes(u, o.Spec.ResourceAttributes, o.Spec.NonResourceAttributes), &o.Status
	case *authorizationv1.SubjectAccessReview:
		a, status = Attributes(specUser(&o.Spec), o.Spec.ResourceAttributes, o.Spec.NonResourceAttributes), &o.Status
	case *authorizationv1.LocalSubjectAccessReview:
		a, status = Attributes(specUser(&o.Spec), o.Spec.ResourceAttributes, o.Spec.NonResourceAttributes), &o.Status
	default:
		return nil, fmt.Errorf("review: unexpected %T", obj)
	}
	d, reason, err := r.Authorizer.Authorize(ctx, a)
	*status = authorizationv1.SubjectAccessReviewStatus{
		Allowed: d == auth.DecisionAllow, Denied: d == auth.DecisionDeny, Reason: reason}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	return obj, nil
}

func (r *Reviewer) rules(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	o, ok := obj.(*authorizationv1.SelfSubjectRulesReview)
	if !ok {
		return nil, fmt.Errorf("review: unexpected %T", obj)
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := r.Rules.RulesFor(u, o.Spec.Namespace)
	o.Status = authorizationv1.SubjectRulesReviewStatus{
		ResourceRules: []authorizationv1.ResourceRule{}, NonResourceRules: []authorizationv1.NonResourceRule{}}
	for _, rule := range rules {
		if len(rule.Resources) > 0 {
			o.Status.ResourceRules = append(o.Status.ResourceRules, authorizationv1.ResourceRule{
				Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames})
		}
		if len(rule.NonResourceURLs) > 0 {
			o.Status.NonResourceRules = append(o.Status.NonResourceRules, authorizationv1.NonResourceRule{
				Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs})
		}
	}
	if err != nil {
		// As upstream's RBAC rule resolver: a binding whose role is
		// missing leaves the list incomplete, and says why.
		o.Status.Incomplete = true
		o.Status.EvaluationError = err.Error()
	}
	return o, nil
}

func whoAmI(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	o, ok := obj.(*authenticationv1.SelfSubjectReview)
	if !ok {
		return nil, errors.New("review: not a SelfSubjectReview")
	}
	u, err := requestUser(ctx)
	if err != nil {
		return nil, err
	}
	o.Status.UserInfo = authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		o.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			o.Status.UserInfo.Extra[k] = v
		}
	}
	return o, nil
}
