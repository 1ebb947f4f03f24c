package rbac

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/auth"
)

func TestEscalation(t *testing.T) {
	x := NewIndex()
	podsRead := rule(s("get", "list"), s(""), s("pods"))
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "pod-reader"), Rules: []rbacv1.PolicyRule{podsRead}})
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "secret-reader"), Rules: []rbacv1.PolicyRule{rule(s("get"), s(""), s("secrets"))}})
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "rbac-writer"), Rules: []rbacv1.PolicyRule{
		rule(s("create", "update"), s("rbac.authorization.k8s.io"), s("roles", "rolebindings", "clusterroles"))}})
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "escalator"), Rules: []rbacv1.PolicyRule{
		rule(s("escalate"), s("rbac.authorization.k8s.io"), s("roles"))}})
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "binder"), Rules: []rbacv1.PolicyRule{
		rule(s("bind"), s("rbac.authorization.k8s.io"), s("clusterroles"), "secret-reader")}})
	bindUser := func(name, ns, role string) {
		x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta(ns, name+"-"+role), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: name}}})
	}
	for _, role := range []string{"pod-reader", "rbac-writer"} {
		bindUser("bob", "ns1", role)
		bindUser("eve", "ns1", role)
		bindUser("bea", "ns1", role)
	}
	bindUser("eve", "ns1", "escalator")
	bindUser("bea", "ns1", "binder")
	e := &Escalation{Authorizer: auth.Chain{auth.PrivilegedGroups{auth.GroupMasters}, Authorizer{Index: x}}, Index: x}

	role := func(rules ...rbacv1.PolicyRule) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "r"}, Rules: rules}
	}
	rb := func(kind, name string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: kind, Name: name}}
	}
	secrets := rule(s("get"), s(""), s("secrets"))
	for _, tc := range []struct {
		name     string
		user     *auth.User
		obj, old runtime.Object
		want     string // "" allowed, else a substring of the error
		notFound bool
	}{
		{"role within the user's rules", user("bob"), role(rule(s("get"), s(""), s("pods"))), nil, "", false},
		{"role beyond", user("bob"), role(podsRead, secrets), nil,
			`roles.rbac.authorization.k8s.io "r" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`, false},
		{"role beyond, with escalate", user("eve"), role(secrets), nil, "", false},
		{"masters", user("root", auth.GroupMasters), role(secrets), nil, "", false},
		{"update beyond", user("bob"), role(secrets), role(podsRead), "is attempting to grant RBAC permissions not currently held", false},
		{"update of GC fields only", user("bob"), func() runtime.Object {
			r := role(secrets)
			r.Finalizers = s("x")
			return r
		}(), role(secrets), "", false},
		{"binding to held role", user("bob"), rb("ClusterRole", "pod-reader"), nil, "", false},
		{"binding to unheld role", user("bob"), rb("ClusterRole", "secret-reader"), nil,
			`rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`, false},
		{"binding with bind", user("bea"), rb("ClusterRole", "secret-reader"), nil, "", false},
		{"binding to missing role", user("bob"), rb("Role", "nope"), nil, `roles.rbac.authorization.k8s.io "nope" not found`, true},
		{"aggregation rule", user("eve"), &rbacv1.ClusterRole{ObjectMeta: objMeta("", "agg"),
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{}}}}, nil,
			`clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Check(auth.WithUser(context.Background(), tc.user), tc.obj, tc.old)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			case tc.want != "" && tc.notFound != apierrors.IsNotFound(err):
				t.Errorf("got %v, not found %v", err, tc.notFound)
			case tc.want != "" && !tc.notFound && !apierrors.IsForbidden(err):
				t.Errorf("got %v, want a 403", err)
			}
		})
	}
}

func TestCompactString(t *testing.T) {
	got := CompactString(rbacv1.PolicyRule{Verbs: s("get"), APIGroups: s(""), Resources: s("pods"), ResourceNames: s("a")})
	if want := `{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}`; got != want {
		t.Errorf("CompactString = %s, want %s", got, want)
	}
	rules := compactRules([]rbacv1.PolicyRule{rule(s("get"), s(""), s("pods")), rule(s("list"), s(""), s("pods")), {Verbs: s("get"), NonResourceURLs: s("/x")}})
	if len(rules) != 2 || CompactString(rules[1]) != `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}` {
		t.Errorf("compactRules = %v", rules)
	}
}

// storeRoles is a RoleReader over fixed roles: the store, which a binding
// written right after its role reads before the Index has caught up.
type storeRoles map[string][]rbacv1.PolicyRule

func (r storeRoles) RoleRules(_ context.Context, ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	rules, ok := r[ref.Kind+"/"+namespace+"/"+ref.Name]
	if !ok {
		return nil, apierrors.NewNotFound(roleResource, ref.Name)
	}
	return rules, nil
}

// TestEscalationReadsRolesFromStore: with a RoleReader, a binding's role
// comes from it, not from the Index (an informer's, which may lag).
func TestEscalationReadsRolesFromStore(t *testing.T) {
	x := NewIndex()
	podsRead := rule(s("get", "list"), s(""), s("pods"))
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "pod-reader"), Rules: []rbacv1.PolicyRule{podsRead}})
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta("ns1", "bob"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "bob"}}})
	// "fresh" is in the store only; "stale" has fewer rules in the store
	// than in the Index.
	x.SetRole(&rbacv1.Role{ObjectMeta: objMeta("ns1", "stale"), Rules: []rbacv1.PolicyRule{podsRead}})
	roles := storeRoles{
		"Role/ns1/fresh": {rule(s("get"), s(""), s("pods"))},
		"Role/ns1/stale": {rule(s("get"), s(""), s("secrets"))},
	}
	e := &Escalation{Authorizer: Authorizer{Index: x}, Index: x, Roles: roles}
	rb := func(name string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "b"}, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: name}}
	}
	ctx := auth.WithUser(context.Background(), user("bob"))
	for _, tc := range []struct {
		role      string
		forbidden bool
		notFound  bool
	}{
		{role: "fresh"},
		{role: "stale", forbidden: true},
		{role: "missing", notFound: true},
	} {
		t.Run(tc.role, func(t *testing.T) {
			err := e.Check(ctx, rb(tc.role), nil)
			if apierrors.IsForbidden(err) != tc.forbidden || apierrors.IsNotFound(err) != tc.notFound || (err != nil) != (tc.forbidden || tc.notFound) {
				t.Errorf("Check = %v, want forbidden %v, not found %v", err, tc.forbidden, tc.notFound)
			}
		})
	}
}
