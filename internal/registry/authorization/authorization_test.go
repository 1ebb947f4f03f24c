package authorization

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/registry"
)

func TestValidate(t *testing.T) {
	ra := &authorizationv1.ResourceAttributes{Namespace: "ns", Verb: "get", Resource: "pods"}
	nra := &authorizationv1.NonResourceAttributes{Path: "/healthz", Verb: "get"}
	for _, tc := range []struct {
		name     string
		strategy registry.Strategy
		obj      runtime.Object
		want     []string
	}{
		{"self", SelfSubjectAccessReviewStrategy{}, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra}}, nil},
		{"self neither", SelfSubjectAccessReviewStrategy{}, &authorizationv1.SelfSubjectAccessReview{}, []string{"spec"}},
		{"self both", SelfSubjectAccessReviewStrategy{}, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra, NonResourceAttributes: nra}}, []string{"spec"}},
		{"sar", SubjectAccessReviewStrategy{}, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{NonResourceAttributes: nra, Groups: []string{"g"}}}, nil},
		{"sar without user", SubjectAccessReviewStrategy{}, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: ra}}, []string{"spec.user"}},
		{"local", LocalSubjectAccessReviewStrategy{}, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
			Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: ra, User: "u"}}, nil},
		{"local other namespace", LocalSubjectAccessReviewStrategy{}, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: "other"},
			Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: ra, User: "u"}}, []string{"spec.resourceAttributes.namespace"}},
		{"local non-resource", LocalSubjectAccessReviewStrategy{}, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
			Spec: authorizationv1.SubjectAccessReviewSpec{NonResourceAttributes: nra, User: "u"}}, []string{"spec.nonResourceAttributes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.strategy.Validate(context.Background(), tc.obj)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want fields %v", errs, tc.want)
			}
			for i, e := range errs {
				if e.Field != tc.want[i] {
					t.Errorf("error %d on %s, want %s", i, e.Field, tc.want[i])
				}
			}
		})
	}
}
