package rbac_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

var (
	metaGet    = metav1.GetOptions{}
	metaCreate = metav1.CreateOptions{}
)

func check[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestRBAC runs the RBAC checks on one server.
func TestRBAC(t *testing.T) {
	s := startServer(t)
	t.Run("BootstrapPolicy", func(t *testing.T) { testBootstrapPolicy(t, s) })
	t.Run("RoleGrantsExactly", func(t *testing.T) { testRoleGrantsExactly(t, s) })
	t.Run("EscalationRefused", func(t *testing.T) { testEscalation(t, s) })
	t.Run("Aggregation", func(t *testing.T) { testAggregation(t, s) })
	t.Run("Kubectl", func(t *testing.T) { testKubectl(t, s) })
}

// testBootstrapPolicy: upstream's roles and bindings exist, and a user with
// no binding of its own may discover the API (system:discovery) but read
// nothing.
func testBootstrapPolicy(t *testing.T, s *framework.Server) {
	cs := s.Clientset()
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
		"system:public-info-viewer", "system:node", "system:node-proxier", "system:kube-scheduler",
		"system:kube-controller-manager", "system:controller:clusterrole-aggregation-controller"} {
		r := check[*rbacv1.ClusterRole](t)(cs.RbacV1().ClusterRoles().Get(ctx(t), name, metaGet))
		if r.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
			t.Errorf("ClusterRole %s: annotations %v", name, r.Annotations)
		}
	}
	crb := check[*rbacv1.ClusterRoleBinding](t)(cs.RbacV1().ClusterRoleBindings().Get(ctx(t), "cluster-admin", metaGet))
	if len(crb.Subjects) != 1 || crb.Subjects[0].Name != "system:masters" {
		t.Errorf("cluster-admin binds %v", crb.Subjects)
	}
	check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings("kube-system").Get(ctx(t), "system::leader-locking-kube-scheduler", metaGet))

	nobody := addUser(t, s, "nobody")
	if _, err := nobody.cs.Discovery().ServerGroups(); err != nil {
		t.Errorf("discovery as a user without bindings: %v", err)
	}
	_, err := nobody.cs.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
	want := `pods is forbidden: User "nobody" cannot list resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("listing pods: %v, want %q", err, want)
	}
}

// testRoleGrantsExactly: a user bound to a Role may do what it grants, in
// its namespace only, and is refused everything else with upstream's 403.
func testRoleGrantsExactly(t *testing.T, s *framework.Server) {
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "rbac")
	other := framework.NewNamespace(t, cs, "rbac-other")
	alice := addUser(t, s, "alice", "devs")
	check[*rbacv1.Role](t)(cs.RbacV1().Roles(ns).Create(ctx(t), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cm-editor"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "create"}, APIGroups: []string{""}, Resources: []string{"configmaps"}},
			{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"visible"}},
		},
	}, metaCreate))
	check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-cm-editor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cm-editor"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "devs"}},
	}, metaCreate))
	for _, name := range []string{"visible", "hidden"} {
		check[*corev1.Secret](t)(cs.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}}, metaCreate))
	}

	// The binding takes effect as soon as the authorizer's informers see it.
	eventually(t, "the binding takes effect", func(c context.Context) (bool, error) {
		_, err := alice.cs.CoreV1().ConfigMaps(ns).List(c, metav1.ListOptions{})
		return err == nil, nil
	})
	check[*corev1.ConfigMap](t)(alice.cs.CoreV1().ConfigMaps(ns).Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, metaCreate))
	check[*corev1.Secret](t)(alice.cs.CoreV1().Secrets(ns).Get(ctx(t), "visible", metaGet))

	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"delete not granted", func() error { return alice.cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), "mine", metav1.DeleteOptions{}) },
			`configmaps "mine" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "` + ns + `"`},
		{"other namespace", func() error {
			_, err := alice.cs.CoreV1().ConfigMaps(other).List(ctx(t), metav1.ListOptions{})
			return err
		},
			`configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "` + other + `"`},
		{"cluster-wide", func() error {
			_, err := alice.cs.CoreV1().ConfigMaps("").List(ctx(t), metav1.ListOptions{})
			return err
		},
			`configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" at the cluster scope`},
		{"other resource name", func() error { _, err := alice.cs.CoreV1().Secrets(ns).Get(ctx(t), "hidden", metaGet); return err },
			`secrets "hidden" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "` + ns + `"`},
		{"list is not get by name", func() error { _, err := alice.cs.CoreV1().Secrets(ns).List(ctx(t), metav1.ListOptions{}); return err },
			`secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "` + ns + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !apierrors.IsForbidden(err) || err.Error() != tc.want {
				t.Errorf("got %v, want 403 %q", err, tc.want)
			}
		})
	}

	// Deleting the binding takes the rights away.
	if err := cs.RbacV1().RoleBindings(ns).Delete(ctx(t), "devs-cm-editor", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion takes effect", func(c context.Context) (bool, error) {
		_, err := alice.cs.CoreV1().ConfigMaps(ns).List(c, metav1.ListOptions{})
		return apierrors.IsForbidden(err), nil
	})
}

// testEscalation: a user who may write roles and bindings cannot grant
// more than it holds, unless it may escalate or bind.
func testEscalation(t *testing.T, s *framework.Server) {
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "rbac-esc")
	bob := addUser(t, s, "bob")
	check[*rbacv1.Role](t)(cs.RbacV1().Roles(ns).Create(ctx(t), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-writer"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"create", "update", "get"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}},
			{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		},
	}, metaCreate))
	check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-rbac-writer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "rbac-writer"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "bob"}},
	}, metaCreate))
	podReader := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	eventually(t, "bob may create roles", func(c context.Context) (bool, error) {
		_, err := bob.cs.RbacV1().Roles(ns).Create(c, podReader, metaCreate)
		return err == nil, nil
	})

	_, err := bob.cs.RbacV1().Roles(ns).Create(ctx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}, metaCreate)
	want := `roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("creating a role beyond bob's rights: %v, want 403 %q", err, want)
	}

	// Binding a role bob holds is allowed; binding cluster-admin is not.
	check[*rbacv1.RoleBinding](t)(bob.cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "carol-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "carol"}},
	}, metaCreate))
	_, err = bob.cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "bob"}},
	}, metaCreate)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `rolebindings.rbac.authorization.k8s.io "bob-admin" is forbidden: user "bob"`) ||
		!strings.Contains(err.Error(), "is attempting to grant RBAC permissions not currently held") {
		t.Errorf("binding cluster-admin: %v", err)
	}

	// With bind on cluster-admin, bob may bind it (in his namespace).
	check[*rbacv1.Role](t)(cs.RbacV1().Roles(ns).Create(ctx(t), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "binder"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"bind"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"},
			ResourceNames: []string{"view"}}},
	}, metaCreate))
	check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-binder"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "binder"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "bob"}},
	}, metaCreate))
	eventually(t, "bob may bind view", func(c context.Context) (bool, error) {
		_, err := bob.cs.RbacV1().RoleBindings(ns).Create(c, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "carol-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "carol"}},
		}, metaCreate)
		return err == nil, nil
	})
}

// testAggregation: a ClusterRole labelled aggregate-to-view adds its rules
// to view (and so to edit and admin, which aggregate view's labels).
func testAggregation(t *testing.T, s *framework.Server) {
	cs := s.Clientset()
	rule := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}
	check[*rbacv1.ClusterRole](t)(cs.RbacV1().ClusterRoles().Create(ctx(t), &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets-view", Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
		Rules:      []rbacv1.PolicyRule{rule},
	}, metaCreate))
	for _, name := range []string{"view", "edit", "admin"} {
		eventually(t, name+" aggregates widgets", func(c context.Context) (bool, error) {
			r, err := cs.RbacV1().ClusterRoles().Get(c, name, metaGet)
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(r.Rules, func(r rbacv1.PolicyRule) bool { return slices.Equal(r.Resources, rule.Resources) }), nil
		})
	}
	if err := cs.RbacV1().ClusterRoles().Delete(ctx(t), "widgets-view", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "view drops widgets", func(c context.Context) (bool, error) {
		r, err := cs.RbacV1().ClusterRoles().Get(c, "view", metaGet)
		if err != nil {
			return false, err
		}
		return !slices.ContainsFunc(r.Rules, func(r rbacv1.PolicyRule) bool { return slices.Equal(r.Resources, rule.Resources) }), nil
	})
}

// testKubectl: kubectl create, get and describe the four kinds, and a user
// bound to view reads pods with kubectl but may not delete them.
func testKubectl(t *testing.T, s *framework.Server) {
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "rbac-kubectl")
	s.MustKubectl(t, "create", "role", "pod-reader", "-n", ns, "--verb=get,list,watch", "--resource=pods,pods/log")
	s.MustKubectl(t, "create", "clusterrole", "kubectl-node-reader", "--verb=get", "--resource=nodes", "--non-resource-url=/healthz")
	s.MustKubectl(t, "create", "rolebinding", "dave-pods", "-n", ns, "--role=pod-reader", "--user=dave", "--serviceaccount="+ns+":robot")
	s.MustKubectl(t, "create", "clusterrolebinding", "dave-nodes", "--clusterrole=kubectl-node-reader", "--user=dave", "--group=ops")

	out := s.MustKubectl(t, "describe", "role", "pod-reader", "-n", ns)
	for _, want := range []string{"Name:         pod-reader", "pods/log", "[get list watch]"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe role lacks %q:\n%s", want, out)
		}
	}
	out = s.MustKubectl(t, "describe", "rolebinding", "dave-pods", "-n", ns)
	for _, want := range []string{"Kind:  Role", "Name:  pod-reader", "User            dave", "ServiceAccount  robot  " + ns} {
		if !strings.Contains(out, want) {
			t.Errorf("describe rolebinding lacks %q:\n%s", want, out)
		}
	}
	out = s.MustKubectl(t, "get", "clusterrolebinding", "dave-nodes", "-o", "wide")
	if !strings.Contains(out, "ClusterRole/kubectl-node-reader") || !strings.Contains(out, "dave") || !strings.Contains(out, "ops") {
		t.Errorf("get clusterrolebinding -o wide:\n%s", out)
	}
	out = s.MustKubectl(t, "describe", "clusterrole", "kubectl-node-reader")
	if !strings.Contains(out, "[/healthz]") {
		t.Errorf("describe clusterrole lacks the non-resource URL:\n%s", out)
	}

	dave := addUser(t, s, "dave")
	eventually(t, "dave reads pods", func(context.Context) (bool, error) {
		_, _, err := dave.kubectl(s, "get", "pods", "-n", ns)
		return err == nil, nil
	})
	// get on nodes is granted (so a missing node is a 404), list is not.
	if _, stderr, _ := dave.kubectl(s, "get", "node", "nope"); !strings.Contains(stderr, `nodes "nope" not found`) {
		t.Errorf("dave get node nope: %s", stderr)
	}
	if _, stderr, _ := dave.kubectl(s, "get", "nodes"); !strings.Contains(stderr, `User "dave" cannot list resource "nodes"`) {
		t.Errorf("dave get nodes: %s", stderr)
	}
	_, stderr, err := dave.kubectl(s, "delete", "pod", "web", "-n", ns)
	want := `Error from server (Forbidden): pods "web" is forbidden: User "dave" cannot delete resource "pods" in API group "" in the namespace "` + ns + `"`
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("dave delete pods: %v, stderr %q, want %q", err, stderr, want)
	}
}
