package apiserver

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRoleRules: the rules of a binding's role are read from the store,
// for both kinds, and a missing role is a NotFound naming its resource.
func TestRoleRules(t *testing.T) {
	s := newStoreServer(t)
	ctx := context.Background()
	pods := []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}
	secrets := []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}
	if _, err := s.handler(rbacv1.GroupName, "v1", "roles").create(ctx,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "r"}, Rules: pods}, writeOptions{manager: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.handler(rbacv1.GroupName, "v1", "clusterroles").create(ctx,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Rules: secrets}, writeOptions{manager: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref       rbacv1.RoleRef
		namespace string
		want      []rbacv1.PolicyRule
		notFound  string
	}{
		{ref: rbacv1.RoleRef{Kind: "Role", Name: "r"}, namespace: "default", want: pods},
		{ref: rbacv1.RoleRef{Kind: "ClusterRole", Name: "c"}, namespace: "default", want: secrets},
		{ref: rbacv1.RoleRef{Kind: "Role", Name: "r"}, namespace: "other", notFound: `roles.rbac.authorization.k8s.io "r" not found`},
		{ref: rbacv1.RoleRef{Kind: "ClusterRole", Name: "r"}, notFound: `clusterroles.rbac.authorization.k8s.io "r" not found`},
	} {
		got, err := s.RoleRules(ctx, tc.ref, tc.namespace)
		switch {
		case tc.notFound != "":
			if !apierrors.IsNotFound(err) || err.Error() != tc.notFound {
				t.Errorf("%v in %q: %v, want %s", tc.ref, tc.namespace, err, tc.notFound)
			}
		case err != nil:
			t.Errorf("%v in %q: %v", tc.ref, tc.namespace, err)
		case !apiequality.Semantic.DeepEqual(got, tc.want):
			t.Errorf("%v in %q: rules %v, want %v", tc.ref, tc.namespace, got, tc.want)
		}
	}
}
