package rbac

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/auth"
)

func rule(verbs, groups, resources []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
}

func s(v ...string) []string { return v }

func TestRuleAllows(t *testing.T) {
	res := func(verb, group, resource, sub, name string) auth.Attributes {
		return auth.Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name}
	}
	url := func(verb, path string) auth.Attributes { return auth.Attributes{Verb: verb, Path: path} }
	urls := func(verbs []string, u ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: u}
	}
	for _, tc := range []struct {
		name string
		rule rbacv1.PolicyRule
		a    auth.Attributes
		want bool
	}{
		{"exact", rule(s("get"), s(""), s("pods")), res("get", "", "pods", "", "p"), true},
		{"other verb", rule(s("get"), s(""), s("pods")), res("list", "", "pods", "", ""), false},
		{"verb *", rule(s("*"), s(""), s("pods")), res("delete", "", "pods", "", ""), true},
		{"other group", rule(s("get"), s(""), s("deployments")), res("get", "apps", "deployments", "", ""), false},
		{"group *", rule(s("get"), s("*"), s("deployments")), res("get", "apps", "deployments", "", ""), true},
		{"resource *", rule(s("get"), s(""), s("*")), res("get", "", "secrets", "", ""), true},
		{"resource * covers subresources", rule(s("get"), s(""), s("*")), res("get", "", "pods", "log", ""), true},
		{"resource does not cover subresource", rule(s("get"), s(""), s("pods")), res("get", "", "pods", "log", ""), false},
		{"resource/subresource", rule(s("get"), s(""), s("pods/log")), res("get", "", "pods", "log", ""), true},
		{"resource/subresource is not the resource", rule(s("get"), s(""), s("pods/log")), res("get", "", "pods", "", ""), false},
		{"*/subresource", rule(s("update"), s("*"), s("*/scale")), res("update", "apps", "deployments", "scale", ""), true},
		{"*/subresource other", rule(s("update"), s("*"), s("*/scale")), res("update", "apps", "deployments", "status", ""), false},
		{"*/subresource not the resource", rule(s("update"), s("*"), s("*/scale")), res("update", "apps", "deployments", "", ""), false},
		{"resource name", rule(s("get"), s(""), s("configmaps"), "a"), res("get", "", "configmaps", "", "a"), true},
		{"other resource name", rule(s("get"), s(""), s("configmaps"), "a"), res("get", "", "configmaps", "", "b"), false},
		{"resource name and list", rule(s("list"), s(""), s("configmaps"), "a"), res("list", "", "configmaps", "", ""), false},
		{"url", urls(s("get"), "/healthz"), url("get", "/healthz"), true},
		{"url other", urls(s("get"), "/healthz"), url("get", "/livez"), false},
		{"url *", urls(s("get"), "*"), url("get", "/anything"), true},
		{"url prefix", urls(s("get"), "/api/*"), url("get", "/api/v1"), true},
		{"url prefix without slash", urls(s("get"), "/api*"), url("get", "/apis"), true},
		{"url prefix other", urls(s("get"), "/api/*"), url("get", "/apis/apps"), false},
		{"url verb", urls(s("get"), "/healthz"), url("post", "/healthz"), false},
		{"url rule on a resource", urls(s("get"), "*"), res("get", "", "pods", "", ""), false},
		{"resource rule on a url", rule(s("get"), s("*"), s("*")), url("get", "/healthz"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RuleAllows(&tc.a, &tc.rule); got != tc.want {
				t.Errorf("RuleAllows = %v, want %v", got, tc.want)
			}
		})
	}
}

func objMeta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

func user(name string, groups ...string) *auth.User {
	return &auth.User{Name: name, Groups: append(groups, auth.GroupAuthenticated)}
}

func TestAuthorize(t *testing.T) {
	x := NewIndex()
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "view"), Rules: []rbacv1.PolicyRule{rule(s("get", "list"), s(""), s("pods"))}})
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "health"), Rules: []rbacv1.PolicyRule{{Verbs: s("get"), NonResourceURLs: s("/healthz")}}})
	x.SetRole(&rbacv1.Role{ObjectMeta: objMeta("ns1", "cm-writer"), Rules: []rbacv1.PolicyRule{rule(s("create"), s(""), s("configmaps"))}})
	x.SetClusterRoleBinding(&rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("", "health"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "health"},
		Subjects: []rbacv1.Subject{{Kind: "Group", Name: auth.GroupAuthenticated}}})
	x.SetClusterRoleBinding(&rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("", "sa-view"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "ns2", Name: "robot"}}})
	// A RoleBinding to a ClusterRole grants it in its namespace only.
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta("ns1", "alice-view"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}})
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta("ns1", "devs-cm"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "cm-writer"},
		Subjects: []rbacv1.Subject{{Kind: "Group", Name: "devs"}, {Kind: "ServiceAccount", Name: "builder"}}})
	x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta("ns1", "dangling"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "gone"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "bob"}}})
	z := Authorizer{Index: x}

	pods := func(u *auth.User, verb, ns string) auth.Attributes {
		return auth.Attributes{User: u, ResourceRequest: true, Verb: verb, Resource: "pods", Namespace: ns}
	}
	cms := func(u *auth.User, ns string) auth.Attributes {
		return auth.Attributes{User: u, ResourceRequest: true, Verb: "create", Resource: "configmaps", Namespace: ns}
	}
	for _, tc := range []struct {
		name   string
		a      auth.Attributes
		want   auth.Decision
		reason string
	}{
		{"user by rolebinding to clusterrole", pods(user("alice"), "list", "ns1"), auth.DecisionAllow,
			`RBAC: allowed by RoleBinding "alice-view/ns1" of ClusterRole "view" to User "alice"`},
		{"not in another namespace", pods(user("alice"), "list", "ns2"), auth.DecisionNoOpinion, ""},
		{"not cluster-wide", pods(user("alice"), "list", ""), auth.DecisionNoOpinion, ""},
		{"not another verb", pods(user("alice"), "delete", "ns1"), auth.DecisionNoOpinion, ""},
		{"group", cms(user("carol", "devs"), "ns1"), auth.DecisionAllow,
			`RBAC: allowed by RoleBinding "devs-cm/ns1" of Role "cm-writer" to Group "devs"`},
		{"not without the group", cms(user("carol"), "ns1"), auth.DecisionNoOpinion, ""},
		{"service account of the binding's namespace", cms(user("system:serviceaccount:ns1:builder", "system:serviceaccounts", "system:serviceaccounts:ns1"), "ns1"),
			auth.DecisionAllow, `RBAC: allowed by RoleBinding "devs-cm/ns1" of Role "cm-writer" to ServiceAccount "builder/ns1"`},
		{"service account of another namespace", cms(user("system:serviceaccount:ns2:builder"), "ns1"), auth.DecisionNoOpinion, ""},
		{"service account cluster-wide", pods(user("system:serviceaccount:ns2:robot"), "get", ""), auth.DecisionAllow,
			`RBAC: allowed by ClusterRoleBinding "sa-view" of ClusterRole "view" to ServiceAccount "robot/ns2"`},
		{"service account anywhere", pods(user("system:serviceaccount:ns2:robot"), "get", "ns9"), auth.DecisionAllow,
			`RBAC: allowed by ClusterRoleBinding "sa-view" of ClusterRole "view" to ServiceAccount "robot/ns2"`},
		{"non-resource by system:authenticated", auth.Attributes{User: user("dave"), Verb: "get", Path: "/healthz"}, auth.DecisionAllow,
			`RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "health" to Group "system:authenticated"`},
		{"non-resource unauthenticated", auth.Attributes{User: &auth.User{Name: "system:anonymous", Groups: s("system:unauthenticated")}, Verb: "get", Path: "/healthz"},
			auth.DecisionNoOpinion, ""},
		{"missing role", pods(user("bob"), "get", "ns1"), auth.DecisionNoOpinion, `RBAC: role.rbac.authorization.k8s.io "gone" not found`},
		{"no user", auth.Attributes{Verb: "get", Path: "/healthz"}, auth.DecisionNoOpinion, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := z.Authorize(context.Background(), tc.a)
			if d != tc.want || reason != tc.reason || err != nil {
				t.Errorf("Authorize = %v, %q, %v; want %v, %q", d, reason, err, tc.want, tc.reason)
			}
		})
	}

	// Updates and deletions reach the index.
	x.DeleteRoleBinding("ns1", "alice-view")
	if d, _, _ := z.Authorize(context.Background(), pods(user("alice"), "list", "ns1")); d != auth.DecisionNoOpinion {
		t.Errorf("after deletion: %v", d)
	}
	x.SetClusterRoleBinding(&rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("", "sa-view"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}})
	if d, _, _ := z.Authorize(context.Background(), pods(user("system:serviceaccount:ns2:robot"), "get", "")); d != auth.DecisionNoOpinion {
		t.Errorf("after update, the old subject: %v", d)
	}
	if d, _, _ := z.Authorize(context.Background(), pods(user("alice"), "get", "")); d != auth.DecisionAllow {
		t.Errorf("after update, the new subject: %v", d)
	}
	x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", "view")})
	if d, _, _ := z.Authorize(context.Background(), pods(user("alice"), "get", "")); d != auth.DecisionNoOpinion {
		t.Errorf("after the role lost its rules: %v", d)
	}

	rules, err := x.RulesFor(user("carol", "devs"), "ns1")
	if err != nil || len(rules) != 2 {
		t.Errorf("RulesFor = %v, %v; want the health and cm-writer rules", rules, err)
	}
	if _, err := x.RulesFor(user("bob"), "ns1"); err == nil {
		t.Errorf("RulesFor bob: no error for the missing role")
	}
}

// populate fills x with n ClusterRoleBindings and n RoleBindings (over 10
// namespaces) of distinct users and groups to distinct roles, and returns
// a user bound by one of each.
func populate(x *Index, n int) *auth.User {
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		rules := []rbacv1.PolicyRule{
			rule(s("get", "list", "watch"), s("", "apps"), s("pods", "deployments", "replicasets")),
			rule(s("create", "update"), s(""), s("configmaps"), "cm"+name),
			rule(s("get"), s("batch"), s("jobs", "jobs/status")),
		}
		ns := fmt.Sprintf("ns%d", i%10)
		x.SetClusterRole(&rbacv1.ClusterRole{ObjectMeta: objMeta("", name), Rules: rules})
		x.SetRole(&rbacv1.Role{ObjectMeta: objMeta(ns, name), Rules: rules})
		x.SetClusterRoleBinding(&rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("", name), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "u" + name}, {Kind: "Group", Name: "g" + name}}})
		x.SetRoleBinding(&rbacv1.RoleBinding{ObjectMeta: objMeta(ns, name), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "u" + name}, {Kind: "ServiceAccount", Name: "sa" + name}}})
	}
	return user("ur7", "gr500", "gr900", "system:serviceaccounts")
}

// BenchmarkAuthorize measures a decision with 1,000 ClusterRoleBindings and
// 1,000 RoleBindings: one allowed by a RoleBinding (after the user's
// cluster rules fail), one denied; it reports the p99 of single decisions.
func BenchmarkAuthorize(b *testing.B) {
	x := NewIndex()
	u := populate(x, 1000)
	z := Authorizer{Index: x}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		a    auth.Attributes
		want auth.Decision
	}{
		{"allowed", auth.Attributes{User: u, ResourceRequest: true, Verb: "update", Resource: "configmaps", Name: "cmr7", Namespace: "ns7"}, auth.DecisionAllow},
		{"denied", auth.Attributes{User: u, ResourceRequest: true, Verb: "delete", Resource: "secrets", Namespace: "ns7"}, auth.DecisionNoOpinion},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if d, _, _ := z.Authorize(ctx, bc.a); d != bc.want {
				b.Fatalf("decision %v, want %v", d, bc.want)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				_, _, _ = z.Authorize(ctx, bc.a)
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
			if len(durations) > 0 {
				b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}

func TestIndexRemovesEmptyKeys(t *testing.T) {
	x := NewIndex()
	populate(x, 20)
	for i := range 20 {
		name := fmt.Sprintf("r%d", i)
		x.DeleteClusterRoleBinding(name)
		x.DeleteRoleBinding(fmt.Sprintf("ns%d", i%10), name)
	}
	if len(x.cluster.byUser) != 0 || len(x.cluster.byGroup) != 0 || len(x.namespaced) != 0 || len(x.rbs) != 0 {
		t.Errorf("index not empty: %v %v %v", x.cluster.byUser, x.cluster.byGroup, slices.Collect(func(yield func(string) bool) {
			for k := range x.namespaced {
				if !yield(k) {
					return
				}
			}
		}))
	}
}
