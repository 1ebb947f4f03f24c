package rbac

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

func TestValidate(t *testing.T) {
	ctx := context.Background()
	podsRule := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	urlRule := rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}
	binding := func(kind string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: kind, Name: "r"}, Subjects: subjects}
	}
	crb := func(subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "r"}, Subjects: subjects}
	}
	user := rbacv1.Subject{Kind: "User", Name: "bob"}
	for _, tc := range []struct {
		name     string
		strategy registry.Strategy
		obj      runtime.Object
		want     []string // "type field"
	}{
		{"role", RoleStrategy{}, &rbacv1.Role{Rules: []rbacv1.PolicyRule{podsRule}}, nil},
		{"role without verbs", RoleStrategy{}, &rbacv1.Role{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}},
			[]string{"Required value rules[0].verbs"}},
		{"role without groups and resources", RoleStrategy{}, &rbacv1.Role{Rules: []rbacv1.PolicyRule{podsRule, {Verbs: []string{"get"}}}},
			[]string{"Required value rules[1].apiGroups", "Required value rules[1].resources"}},
		{"role with a URL", RoleStrategy{}, &rbacv1.Role{Rules: []rbacv1.PolicyRule{urlRule}},
			[]string{"Invalid value rules[0].nonResourceURLs"}},
		{"cluster role with a URL", ClusterRoleStrategy{}, &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{urlRule}}, nil},
		{"URL and resources", ClusterRoleStrategy{}, &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/x"}, Resources: []string{"pods"}}}},
			[]string{"Invalid value rules[0].nonResourceURLs"}},
		{"empty aggregation", ClusterRoleStrategy{}, &rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{}},
			[]string{"Required value aggregationRule.clusterRoleSelectors"}},
		{"bad selector", ClusterRoleStrategy{}, &rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{"a": "b"}}, {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bad"}}}}}},
			[]string{"Invalid value aggregationRule.clusterRoleSelectors[1].matchExpressions[0].operator", "Invalid value aggregationRule.clusterRoleSelectors[1]"}},
		{"binding", RoleBindingStrategy{}, binding("Role", user, rbacv1.Subject{Kind: "ServiceAccount", Name: "default"}), nil},
		{"binding to a cluster role", RoleBindingStrategy{}, binding("ClusterRole", rbacv1.Subject{Kind: "Group", Name: "g"}), nil},
		{"binding to a pod", RoleBindingStrategy{}, binding("Pod"), []string{"Unsupported value roleRef.kind"}},
		{"binding without role name", RoleBindingStrategy{}, &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role"}},
			[]string{"Required value roleRef.name"}},
		{"binding to a/b", RoleBindingStrategy{}, &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "a/b"}},
			[]string{"Invalid value roleRef.name"}},
		{"binding subjects", RoleBindingStrategy{}, binding("Role", rbacv1.Subject{Kind: "Robot", Name: "r2"}, rbacv1.Subject{Kind: "User"},
			rbacv1.Subject{Kind: "ServiceAccount", Name: "Bad_Name"}, rbacv1.Subject{Kind: "ServiceAccount", Name: "sa", APIGroup: "x"}, rbacv1.Subject{Kind: "Group", Name: "g", APIGroup: "x"}),
			[]string{"Unsupported value subjects[0].kind", "Required value subjects[1].name", "Invalid value subjects[2].name",
				"Unsupported value subjects[3].apiGroup", "Unsupported value subjects[4].apiGroup"}},
		{"cluster binding", ClusterRoleBindingStrategy{}, crb(user, rbacv1.Subject{Kind: "ServiceAccount", Name: "sa", Namespace: "ns"}), nil},
		{"cluster binding to a role", ClusterRoleBindingStrategy{}, &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}},
			[]string{"Unsupported value roleRef.kind"}},
		{"cluster binding to a namespaceless service account", ClusterRoleBindingStrategy{}, crb(rbacv1.Subject{Kind: "ServiceAccount", Name: "sa"}),
			[]string{"Required value subjects[0].namespace"}},
		{"other API group", ClusterRoleBindingStrategy{}, &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: "x", Kind: "ClusterRole", Name: "r"}},
			[]string{"Unsupported value roleRef.apiGroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.strategy.Default(tc.obj)
			assertErrors(t, tc.strategy.Validate(ctx, tc.obj), tc.want)
		})
	}
}

func assertErrors(t *testing.T, errs field.ErrorList, want []string) {
	t.Helper()
	var got []string
	for _, e := range errs {
		got = append(got, e.Type.String()+" "+e.Field)
	}
	if len(got) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("error %d: %q, want %q (%v)", i, got[i], want[i], errs)
		}
	}
}

func TestDefault(t *testing.T) {
	rb := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "r"}, Subjects: []rbacv1.Subject{
		{Kind: "User", Name: "u"}, {Kind: "Group", Name: "g"}, {Kind: "ServiceAccount", Name: "sa"}}}
	RoleBindingStrategy{}.Default(rb)
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName ||
		rb.Subjects[1].APIGroup != rbacv1.GroupName || rb.Subjects[2].APIGroup != "" {
		t.Errorf("defaulted %+v", rb)
	}
}

func TestRoleRefImmutable(t *testing.T) {
	ctx := context.Background()
	old := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "a"}}
	upd := old.DeepCopy()
	upd.RoleRef.Name = "b"
	assertErrors(t, RoleBindingStrategy{}.ValidateUpdate(ctx, upd, old), []string{"Invalid value roleRef"})
	oldc := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "a"}}
	updc := oldc.DeepCopy()
	updc.Subjects = []rbacv1.Subject{{Kind: "User", Name: "u", APIGroup: rbacv1.GroupName}}
	assertErrors(t, ClusterRoleBindingStrategy{}.ValidateUpdate(ctx, updc, oldc), nil)
	updc.RoleRef.Name = "b"
	assertErrors(t, ClusterRoleBindingStrategy{}.ValidateUpdate(ctx, updc, oldc), []string{"Invalid value roleRef"})
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{"system:node": true, "a.b-c_D": true, "a/b": false, "..": false, "a%b": false} {
		if got := len(ValidateName(name, false)) == 0; got != ok {
			t.Errorf("ValidateName(%q) ok = %v, want %v", name, got, ok)
		}
	}
}
