package bootstrap

import (
	"context"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestLoad(t *testing.T) {
	p := Load()
	names := func(roles []rbacv1.ClusterRole) []string {
		var out []string
		for _, r := range roles {
			out = append(out, r.Name)
		}
		return out
	}
	for _, want := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
		"system:public-info-viewer", "system:node", "system:node-proxier", "system:kube-scheduler", "system:kube-controller-manager"} {
		if !slices.Contains(names(p.ClusterRoles), want) {
			t.Errorf("no ClusterRole %s", want)
		}
	}
	if !slices.Contains(names(p.ControllerRoles), "system:controller:clusterrole-aggregation-controller") {
		t.Errorf("no controller roles")
	}
}

// TestReconcile creates the policy, then restores a rule an operator
// removed, but leaves alone a role annotated autoupdate=false.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if err := Reconcile(cs); err != nil {
		t.Fatal(err)
	}
	list, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != len(Load().ClusterRoles)+len(Load().ControllerRoles)+len(HavreRoles(Load())) {
		t.Fatalf("%d ClusterRoles (%v)", len(list.Items), err)
	}
	rb, err := cs.RbacV1().RoleBindings("kube-system").Get(ctx, "system::leader-locking-kube-scheduler", metav1.GetOptions{})
	if err != nil || len(rb.Subjects) == 0 {
		t.Fatalf("kube-system RoleBinding: %v %v", rb, err)
	}

	view, _ := cs.RbacV1().ClusterRoles().Get(ctx, "system:discovery", metav1.GetOptions{})
	view.Rules = nil
	_, _ = cs.RbacV1().ClusterRoles().Update(ctx, view, metav1.UpdateOptions{})
	basic, _ := cs.RbacV1().ClusterRoles().Get(ctx, "system:basic-user", metav1.GetOptions{})
	basic.Rules = nil
	basic.Annotations[rbacv1.AutoUpdateAnnotationKey] = "false"
	_, _ = cs.RbacV1().ClusterRoles().Update(ctx, basic, metav1.UpdateOptions{})

	if err := Reconcile(cs); err != nil {
		t.Fatal(err)
	}
	if r, _ := cs.RbacV1().ClusterRoles().Get(ctx, "system:discovery", metav1.GetOptions{}); len(r.Rules) == 0 {
		t.Errorf("system:discovery's rules were not restored")
	}
	if r, _ := cs.RbacV1().ClusterRoles().Get(ctx, "system:basic-user", metav1.GetOptions{}); len(r.Rules) != 0 {
		t.Errorf("system:basic-user (autoupdate=false) was changed: %v", r.Rules)
	}
}
