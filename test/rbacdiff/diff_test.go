package rbacdiff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	rbacvalidation "k8s.io/kubernetes/pkg/registry/rbac/validation"
	upstream "k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac"
)

// The vocabulary random objects and requests draw from: small, so that
// rules, subjects and requests often meet.
var (
	verbs       = []string{"get", "list", "watch", "create", "update", "delete", "patch", "escalate", "bind", "*"}
	apiGroups   = []string{"", "apps", "batch", "rbac.authorization.k8s.io", "*"}
	resources   = []string{"pods", "pods/log", "pods/status", "deployments", "deployments/scale", "*/scale", "*/status", "secrets", "configmaps", "*"}
	names       = []string{"a", "b", "c"}
	urls        = []string{"/healthz", "/healthz/ready", "/api", "/api/*", "/apis*", "/metrics", "*", "/"}
	userNames   = []string{"alice", "bob", "system:serviceaccount:ns1:sa1", "system:serviceaccount:ns2:sa1", "system:serviceaccount:ns1:sa2", "system:anonymous"}
	groupNames  = []string{"devs", "ops", "system:authenticated", "system:unauthenticated", "system:serviceaccounts", "system:serviceaccounts:ns1"}
	namespaces  = []string{"ns1", "ns2", "ns3"}
	roleNames   = []string{"r0", "r1", "r2", "r3", "r4", "r5", "missing"}
	saNames     = []string{"sa1", "sa2"}
	reqPaths    = []string{"/healthz", "/healthz/ready", "/api", "/api/v1", "/apis", "/apis/apps", "/metrics", "/", "/version"}
	subresource = []string{"", "", "log", "status", "scale"}
	baseRes     = []string{"pods", "deployments", "secrets", "configmaps", "jobs"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func some(r *rand.Rand, s []string, max int) []string {
	n := r.IntN(max + 1)
	out := make([]string, 0, n)
	for range n {
		out = append(out, pick(r, s))
	}
	return out
}

func randomRules(r *rand.Rand, namespaced bool) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	for range 1 + r.IntN(4) {
		rule := rbacv1.PolicyRule{Verbs: some(r, verbs, 4)}
		if !namespaced && r.IntN(4) == 0 {
			rule.NonResourceURLs = some(r, urls, 2)
		} else {
			rule.APIGroups = some(r, apiGroups, 2)
			rule.Resources = some(r, resources, 3)
			if r.IntN(3) == 0 {
				rule.ResourceNames = some(r, names, 2)
			}
		}
		rules = append(rules, rule)
	}
	return rules
}

func randomSubjects(r *rand.Rand) []rbacv1.Subject {
	var subjects []rbacv1.Subject
	for range 1 + r.IntN(3) {
		switch r.IntN(7) {
		case 0, 1:
			subjects = append(subjects, rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: pick(r, userNames)})
		case 2, 3:
			subjects = append(subjects, rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: pick(r, groupNames)})
		case 4, 5:
			subjects = append(subjects, rbacv1.Subject{Kind: "ServiceAccount", Namespace: pick(r, []string{"", "ns1", "ns2"}), Name: pick(r, saNames)})
		default:
			subjects = append(subjects, rbacv1.Subject{Kind: "Robot", Name: pick(r, userNames)})
		}
	}
	return subjects
}

func randomRoleRef(r *rand.Rand, namespaced bool) rbacv1.RoleRef {
	kind := "ClusterRole"
	switch {
	case r.IntN(20) == 0:
		kind = "Bogus"
	case namespaced && r.IntN(2) == 0:
		kind = "Role"
	}
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: pick(r, roleNames)}
}

type world struct {
	roles        []*rbacv1.Role
	clusterRoles []*rbacv1.ClusterRole
	rbs          []*rbacv1.RoleBinding
	crbs         []*rbacv1.ClusterRoleBinding
}

func randomWorld(r *rand.Rand) world {
	var w world
	for i := range 6 {
		w.clusterRoles = append(w.clusterRoles, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%d", i)}, Rules: randomRules(r, false)})
		for _, ns := range namespaces {
			if r.IntN(2) == 0 {
				w.roles = append(w.roles, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("r%d", i)}, Rules: randomRules(r, true)})
			}
		}
	}
	for i := range 4 + r.IntN(12) {
		w.crbs = append(w.crbs, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", i)},
			RoleRef: randomRoleRef(r, false), Subjects: randomSubjects(r)})
	}
	for i := range 6 + r.IntN(20) {
		w.rbs = append(w.rbs, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: pick(r, namespaces), Name: fmt.Sprintf("b%d", i)},
			RoleRef: randomRoleRef(r, true), Subjects: randomSubjects(r)})
	}
	return w
}

func randomRequest(r *rand.Rand) authorizer.AttributesRecord {
	u := &user.DefaultInfo{Name: pick(r, userNames), Groups: some(r, groupNames, 4)}
	a := authorizer.AttributesRecord{User: u, Verb: pick(r, verbs[:9])}
	if r.IntN(5) == 0 {
		a.Path = pick(r, reqPaths)
		return a
	}
	a.ResourceRequest = true
	a.APIGroup = pick(r, apiGroups[:4])
	a.APIVersion = "v1"
	a.Resource = pick(r, baseRes)
	a.Subresource = pick(r, subresource)
	if r.IntN(2) == 0 {
		a.Name = pick(r, names)
	}
	if r.IntN(4) != 0 {
		a.Namespace = pick(r, namespaces)
	}
	return a
}

func havreAttributes(a authorizer.AttributesRecord) auth.Attributes {
	return auth.Attributes{
		User: &auth.User{Name: a.User.GetName(), Groups: a.User.GetGroups()}, Verb: a.Verb,
		APIGroup: a.APIGroup, APIVersion: a.APIVersion, Resource: a.Resource, Subresource: a.Subresource,
		Namespace: a.Namespace, Name: a.Name, Path: a.Path, ResourceRequest: a.ResourceRequest,
	}
}

// TestDifferential gives Havre's RBAC authorizer and kube-apiserver's the
// same random roles, bindings and requests: 100 worlds of 1,000 requests.
// They must agree on every decision, and on whether a denial carries a
// reason (errors resolving bindings), and, for each user and namespace, on
// the rules granted (compared as sets, upstream's order being a map's).
func TestDifferential(t *testing.T) {
	const worlds, requests = 100, 1000
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	disagreements, allowed := 0, 0
	for wi := range worlds {
		w := randomWorld(r)
		_, static := rbacvalidation.NewTestRuleResolver(w.roles, w.rbs, w.clusterRoles, w.crbs)
		up := upstream.New(static, static, static, static)
		x := rbac.NewIndex()
		for _, o := range w.clusterRoles {
			x.SetClusterRole(o)
		}
		for _, o := range w.roles {
			x.SetRole(o)
		}
		for _, o := range w.crbs {
			x.SetClusterRoleBinding(o)
		}
		for _, o := range w.rbs {
			x.SetRoleBinding(o)
		}
		ours := rbac.Authorizer{Index: x}
		for range requests {
			a := randomRequest(r)
			ud, ureason, _ := up.Authorize(ctx, a)
			hd, hreason, _ := ours.Authorize(ctx, havreAttributes(a))
			uAllowed, hAllowed := ud == authorizer.DecisionAllow, hd == auth.DecisionAllow
			if uAllowed {
				allowed++
			}
			if uAllowed != hAllowed || (!uAllowed && (ureason == "") != (hreason == "")) {
				disagreements++
				if disagreements <= 10 {
					t.Errorf("world %d, %+v (user %v): upstream %v %q, Havre %v %q", wi, a, a.User, ud, ureason, hd, hreason)
				}
			}
		}
	}
	if disagreements > 0 {
		t.Errorf("%d disagreements in %d cases", disagreements, worlds*requests)
	}
	// The cases must exercise both outcomes.
	if allowed < worlds*requests/20 || allowed > worlds*requests*19/20 {
		t.Errorf("%d of %d requests allowed: the random cases are too one-sided", allowed, worlds*requests)
	}
	t.Logf("%d cases, %d allowed, %d disagreements", worlds*requests, allowed, disagreements)
}
