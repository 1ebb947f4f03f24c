package review

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac"
)

func TestReviews(t *testing.T) {
	x := rbac.NewIndex()
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
	}})
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "b"},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "reader"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}})
	r := &Reviewer{Authorizer: auth.Chain{auth.PrivilegedGroups{auth.GroupMasters}, rbac.Authorizer{Index: x}}, Rules: x}
	h := r.Handlers()
	alice := &auth.User{Name: "alice", UID: "u1", Groups: []string{auth.GroupAuthenticated}, Extra: map[string][]string{"k": {"v"}}}
	ctx := auth.WithUser(context.Background(), alice)

	pods := func(verb, ns string) *authorizationv1.ResourceAttributes {
		return &authorizationv1.ResourceAttributes{Verb: verb, Resource: "pods", Namespace: ns}
	}
	self := func(ra *authorizationv1.ResourceAttributes) bool {
		out, err := h[SelfSubjectAccessReviews](ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra}})
		if err != nil {
			t.Fatal(err)
		}
		return out.(*authorizationv1.SelfSubjectAccessReview).Status.Allowed
	}
	if !self(pods("list", "ns1")) || self(pods("delete", "ns1")) || self(pods("list", "ns2")) {
		t.Errorf("SelfSubjectAccessReview answers wrong")
	}
	out, err := h[SubjectAccessReviews](ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "bob", Groups: []string{auth.GroupMasters}, ResourceAttributes: pods("delete", "")}})
	if err != nil || !out.(*authorizationv1.SubjectAccessReview).Status.Allowed {
		t.Errorf("SubjectAccessReview of a master: %v %v", out, err)
	}
	out, err = h[LocalSubjectAccessReviews](ctx, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1"},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: pods("get", "ns1")}})
	if st := out.(*authorizationv1.LocalSubjectAccessReview).Status; err != nil || !st.Allowed ||
		st.Reason != `RBAC: allowed by RoleBinding "b/ns1" of ClusterRole "reader" to User "alice"` {
		t.Errorf("LocalSubjectAccessReview: %+v %v", st, err)
	}
	out, err = h[SelfSubjectRulesReviews](ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "ns1"}})
	if st := out.(*authorizationv1.SelfSubjectRulesReview).Status; err != nil || len(st.ResourceRules) != 1 || len(st.NonResourceRules) != 1 ||
		st.ResourceRules[0].Resources[0] != "pods" || st.NonResourceRules[0].NonResourceURLs[0] != "/healthz" {
		t.Errorf("SelfSubjectRulesReview: %+v %v", st, err)
	}
	if st := out.(*authorizationv1.SelfSubjectRulesReview).Status; st.Incomplete || st.EvaluationError != "" {
		t.Errorf("SelfSubjectRulesReview with every role present: incomplete %v %q", st.Incomplete, st.EvaluationError)
	}
	// A binding to a role that does not exist: the rules are incomplete.
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "dangling"},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "gone"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}})
	out, err = h[SelfSubjectRulesReviews](ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "ns1"}})
	if st := out.(*authorizationv1.SelfSubjectRulesReview).Status; err != nil || !st.Incomplete || !strings.Contains(st.EvaluationError, "gone") || len(st.ResourceRules) != 1 {
		t.Errorf("SelfSubjectRulesReview with a dangling binding: %+v %v", st, err)
	}
	out, err = h[SelfSubjectReviews](ctx, &authenticationv1.SelfSubjectReview{})
	if ui := out.(*authenticationv1.SelfSubjectReview).Status.UserInfo; err != nil || ui.Username != "alice" || ui.UID != "u1" ||
		len(ui.Groups) != 1 || ui.Extra["k"][0] != "v" {
		t.Errorf("SelfSubjectReview: %+v %v", ui, err)
	}
	if _, err := h[SelfSubjectReviews](context.Background(), &authenticationv1.SelfSubjectReview{}); err == nil {
		t.Errorf("SelfSubjectReview without a user: no error")
	}
}
