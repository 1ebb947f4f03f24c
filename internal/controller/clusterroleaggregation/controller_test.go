package clusterroleaggregation

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func role(name string, labels map[string]string, verbs ...string) *rbacv1.ClusterRole {
	r := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	for _, v := range verbs {
		r.Rules = append(r.Rules, rbacv1.PolicyRule{Verbs: []string{v}, APIGroups: []string{""}, Resources: []string{"pods"}})
	}
	return r
}

func TestRules(t *testing.T) {
	agg := role("agg", map[string]string{"a": "true"})
	agg.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
		{MatchLabels: map[string]string{"a": "true"}}, {MatchLabels: map[string]string{"b": "true"}}}}
	all := []*rbacv1.ClusterRole{agg,
		role("z", map[string]string{"a": "true"}, "list"),
		role("y", map[string]string{"a": "true"}, "get", "list"),
		role("x", map[string]string{"b": "true"}, "watch", "get"),
		role("other", nil, "delete"),
	}
	got, err := Rules(agg, all)
	if err != nil {
		t.Fatal(err)
	}
	want := role("w", nil, "get", "list", "watch").Rules
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("Rules = %v, want %v", got, want)
	}
}

// TestController aggregates, then follows a change of a matched role.
func TestController(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agg := role("agg", nil)
	agg.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"x": "true"}}}}
	cs := fake.NewClientset(agg, role("part", map[string]string{"x": "true"}, "get"))
	factory := informers.NewSharedInformerFactory(cs, 0)
	c, err := New(cs, factory)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)
	waitRules := func(verbs ...string) {
		t.Helper()
		want := role("w", nil, verbs...).Rules
		if want == nil {
			want = []rbacv1.PolicyRule{}
		}
		var got []rbacv1.PolicyRule
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			r, err := cs.RbacV1().ClusterRoles().Get(ctx, "agg", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = r.Rules
			return equality.Semantic.DeepEqual(got, want), nil
		})
		if err != nil {
			t.Fatalf("rules %v, want %v", got, want)
		}
	}
	waitRules("get")
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, role("part", map[string]string{"x": "true"}, "get", "list"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules("get", "list")
	if err := cs.RbacV1().ClusterRoles().Delete(ctx, "part", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRules()
}
