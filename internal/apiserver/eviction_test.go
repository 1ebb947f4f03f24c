package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage/bolt"
)

// newStoreServer is a server over a store of its own with the bootstrap
// objects, not listening: tests call its handlers directly.
func newStoreServer(t testing.TB) *Server {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(Config{Store: store, Resources: catalog.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// budget creates a PodDisruptionBudget over app=web in the default
// namespace with the given status (observedGeneration 1 unless set).
func budget(t *testing.T, s *Server, name string, mutate func(*policyv1.PodDisruptionBudget)) {
	t.Helper()
	ctx := context.Background()
	h := s.handler("policy", "v1", "poddisruptionbudgets")
	one := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1},
	}
	mutate(pdb)
	status := pdb.Status
	if _, err := h.create(ctx, pdb, writeOptions{manager: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.writeUpdate(ctx, "default", name, false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.DeepCopyObject().(*policyv1.PodDisruptionBudget)
		p.Status = status
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func storedBudget(t *testing.T, s *Server, name string) *policyv1.PodDisruptionBudget {
	t.Helper()
	obj, err := s.handler("policy", "v1", "poddisruptionbudgets").objs.get(context.Background(), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*policyv1.PodDisruptionBudget)
}

func TestTakeDisruption(t *testing.T) {
	allowed := func(n int32) func(*policyv1.PodDisruptionBudget) {
		return func(p *policyv1.PodDisruptionBudget) {
			p.Status.DisruptionsAllowed, p.Status.CurrentHealthy, p.Status.DesiredHealthy = n, 2, 2-n
		}
	}
	ready := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	unready := ready.DeepCopy()
	unready.Status.Conditions[0].Status = corev1.ConditionFalse
	alwaysAllow := policyv1.AlwaysAllow

	tests := []struct {
		name    string
		budgets map[string]func(*policyv1.PodDisruptionBudget)
		pod     *corev1.Pod
		dryRun  bool
		// want is the error's code, reason and cause (or message), or
		// "" for success.
		want      string
		wantGuard bool
		// wantAllowed and wantRecorded are the stored status of budget
		// "b" afterwards.
		wantAllowed  int32
		wantRecorded bool
		wantReason   string
	}{
		{name: "no budget", pod: ready},
		{name: "nil selector selects nothing", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) { p.Spec.Selector = nil }}},
		{name: "room", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(1)},
			wantRecorded: true, wantReason: policyv1.InsufficientPodsReason},
		{name: "more room", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(2)},
			wantAllowed: 1, wantRecorded: true},
		{name: "empty selector selects every pod", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) { allowed(1)(p); p.Spec.Selector = &metav1.LabelSelector{} }},
			wantRecorded: true, wantReason: policyv1.InsufficientPodsReason},
		{name: "dry run writes nothing", pod: ready, dryRun: true, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(1)},
			wantAllowed: 1},
		{name: "no room", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(0)},
			want: "429 TooManyRequests retry=0 DisruptionBudget: The disruption budget b needs 2 healthy pods and has 2 currently"},
		{name: "not yet observed", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) { allowed(1)(p); p.Status.ObservedGeneration = 0 }},
			want: "429 TooManyRequests retry=10 DisruptionBudget: The disruption budget b is still being processed by the server.", wantAllowed: 1},
		{name: "negative", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(-1)},
			want: `403 Forbidden poddisruptionbudget.policy "b" is forbidden: pdb disruptions allowed is negative`, wantAllowed: -1},
		{name: "too many disruptions pending", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) {
				allowed(1)(p)
				p.Status.DisruptedPods = map[string]metav1.Time{}
				for i := range 2001 {
					p.Status.DisruptedPods[fmt.Sprint("p", i)] = metav1.Now()
				}
			}},
			want: `403 Forbidden poddisruptionbudget.policy "b" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller`, wantAllowed: 1},
		{name: "two budgets", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"a": allowed(1), "b": allowed(1)},
			want: "500  This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", wantAllowed: 1},
		{name: "unready pod of a healthy application", pod: unready, budgets: map[string]func(*policyv1.PodDisruptionBudget){"b": allowed(0)},
			wantGuard: true},
		{name: "unready pod of an unhealthy application", pod: unready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) { p.Status.CurrentHealthy, p.Status.DesiredHealthy = 1, 2 }},
			want: "429 TooManyRequests retry=0 DisruptionBudget: The disruption budget b needs 2 healthy pods and has 1 currently"},
		{name: "unready pod with AlwaysAllow", pod: unready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) {
				p.Status.CurrentHealthy, p.Status.DesiredHealthy = 0, 2
				p.Spec.UnhealthyPodEvictionPolicy = &alwaysAllow
			}},
			wantGuard: true},
		{name: "ready pod with AlwaysAllow", pod: ready, budgets: map[string]func(*policyv1.PodDisruptionBudget){
			"b": func(p *policyv1.PodDisruptionBudget) { allowed(0)(p); p.Spec.UnhealthyPodEvictionPolicy = &alwaysAllow }},
			want: "429 TooManyRequests retry=0 DisruptionBudget: The disruption budget b needs 2 healthy pods and has 2 currently"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStoreServer(t)
			for name, mutate := range tt.budgets {
				budget(t, s, name, mutate)
			}
			var before *policyv1.PodDisruptionBudget
			if tt.budgets["b"] != nil {
				before = storedBudget(t, s, "b")
			}
			guard, _, err := s.takeDisruption(context.Background(), tt.pod, tt.dryRun)
			if got := describeError(err); got != tt.want {
				t.Fatalf("error %q, want %q", got, tt.want)
			}
			if guard != tt.wantGuard {
				t.Errorf("guard %v, want %v", guard, tt.wantGuard)
			}
			if before == nil {
				return
			}
			after := storedBudget(t, s, "b")
			if tt.want != "" || tt.wantGuard || tt.dryRun {
				if after.ResourceVersion != before.ResourceVersion {
					t.Errorf("budget written: %+v", after.Status)
				}
				return
			}
			_, recorded := after.Status.DisruptedPods["web-1"]
			if after.Status.DisruptionsAllowed != tt.wantAllowed || recorded != tt.wantRecorded {
				t.Errorf("disruptionsAllowed %d, web-1 recorded %v; want %d, %v",
					after.Status.DisruptionsAllowed, recorded, tt.wantAllowed, tt.wantRecorded)
			}
			if tt.wantReason != "" {
				c := meta.FindStatusCondition(after.Status.Conditions, policyv1.DisruptionAllowedCondition)
				if c == nil || c.Reason != tt.wantReason || c.Status != metav1.ConditionFalse {
					t.Errorf("condition %+v, want reason %s", c, tt.wantReason)
				}
			}
		})
	}
}

// describeError summarises an API error as code, reason, retry and cause.
func describeError(err error) string {
	if err == nil {
		return ""
	}
	se, ok := err.(*apierrors.StatusError)
	if !ok {
		return "not a StatusError: " + err.Error()
	}
	st := se.ErrStatus
	if st.Code == http.StatusTooManyRequests && st.Details != nil && len(st.Details.Causes) == 1 {
		if st.Message != "Cannot evict pod as it would violate the pod's disruption budget." {
			return "message " + st.Message
		}
		return fmt.Sprintf("%d %s retry=%d %s: %s", st.Code, st.Reason, st.Details.RetryAfterSeconds, st.Details.Causes[0].Type, st.Details.Causes[0].Message)
	}
	return fmt.Sprintf("%d %s %s", st.Code, st.Reason, st.Message)
}
