package disruption_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

const violation = "Cannot evict pod as it would violate the pod's disruption budget."

// TestBudgets covers the disruption controller's status and the eviction
// API that reads it.
func TestBudgets(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	t.Run("status", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs, "pdb-status")
		node := newNode(t, cs, ns)
		kubelet(t, cs, ns, node)
		rs := newReplicaSet(t, cs, ns, "web", 4)
		for i := range 3 {
			newPod(t, cs, ns, fmt.Sprintf("web-%d", i), "web", node, rs)
		}
		waitReady(t, cs, ns, "web-0", "web-1", "web-2")

		newPDB(t, cs, ns, "min-int", "web", ptr.To(intstr.FromInt32(2)), nil)
		waitPDBStatus(t, cs, ns, "min-int", pdbStatus{Expected: 3, Healthy: 3, Desired: 2, Allowed: 1, Reason: policyv1.SufficientPodsReason})
		// Percentages are of the controller's replicas (4), rounded up.
		newPDB(t, cs, ns, "min-pct", "web", ptr.To(intstr.FromString("60%")), nil)
		waitPDBStatus(t, cs, ns, "min-pct", pdbStatus{Expected: 4, Healthy: 3, Desired: 3, Allowed: 0, Reason: policyv1.InsufficientPodsReason})
		newPDB(t, cs, ns, "max-pct", "web", nil, ptr.To(intstr.FromString("50%")))
		waitPDBStatus(t, cs, ns, "max-pct", pdbStatus{Expected: 4, Healthy: 3, Desired: 2, Allowed: 1, Reason: policyv1.SufficientPodsReason})
		newPDB(t, cs, ns, "none", "nothing", ptr.To(intstr.FromInt32(0)), nil)
		waitPDBStatus(t, cs, ns, "none", pdbStatus{Reason: policyv1.InsufficientPodsReason})

		// Only ready pods are healthy: a fourth pod, on a node the kubelet
		// does not serve, counts once the test reports it ready.
		newPod(t, cs, ns, "web-3", "web", newNode(t, cs, ns+"-other"), rs)
		mustSetPodStatus(t, cs, ns, "web-3", false)
		waitPDBStatus(t, cs, ns, "min-int", pdbStatus{Expected: 4, Healthy: 3, Desired: 2, Allowed: 1, Reason: policyv1.SufficientPodsReason})
		mustSetPodStatus(t, cs, ns, "web-3", true)
		waitPDBStatus(t, cs, ns, "min-int", pdbStatus{Expected: 4, Healthy: 4, Desired: 2, Allowed: 2, Reason: policyv1.SufficientPodsReason})
		waitPDBStatus(t, cs, ns, "min-pct", pdbStatus{Expected: 4, Healthy: 4, Desired: 3, Allowed: 1, Reason: policyv1.SufficientPodsReason})

		// A spec change is observed: observedGeneration follows generation.
		if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Patch(ctx(t), "max-pct", types.MergePatchType,
			[]byte(`{"spec":{"maxUnavailable":3}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), "max-pct", metav1.GetOptions{})
			return err == nil && pdb.Status.ObservedGeneration == pdb.Generation && pdb.Generation > 1 &&
				pdb.Status.DesiredHealthy == 1 && pdb.Status.DisruptionsAllowed == 3, err
		}, "max-pct: status after the spec change")

		out := s.MustKubectl(t, "get", "pdb", "-n", ns, "min-int")
		if !strings.Contains(out, "ALLOWED DISRUPTIONS") {
			t.Errorf("kubectl get pdb:\n%s", out)
		}
	})

	t.Run("eviction", func(t *testing.T) { t.Parallel(); testEviction(t, cs) })
	t.Run("unhealthy pods", func(t *testing.T) { t.Parallel(); testUnhealthyEviction(t, cs) })
}

// budgetPods creates n pods of app on node (no kubelet: the test sets their
// status), Ready, and a budget over them with minAvailable; it waits for
// the budget's status.
func budgetPods(t *testing.T, cs kubernetes.Interface, ns, app string, n int, minAvailable int32, mutate ...func(*policyv1.PodDisruptionBudget)) []*corev1.Pod {
	t.Helper()
	node := newNode(t, cs, ns+"-"+app)
	var pods []*corev1.Pod
	for i := range n {
		pod := newPod(t, cs, ns, fmt.Sprintf("%s-%d", app, i), app, node, nil)
		mustSetPodStatus(t, cs, ns, pod.Name, true)
		pods = append(pods, pod)
	}
	newPDB(t, cs, ns, app, app, ptr.To(intstr.FromInt32(minAvailable)), nil, mutate...)
	allowed := max(int32(n)-minAvailable, 0)
	reason := policyv1.SufficientPodsReason
	if allowed == 0 {
		reason = policyv1.InsufficientPodsReason
	}
	waitPDBStatus(t, cs, ns, app, pdbStatus{Expected: int32(n), Healthy: int32(n), Desired: minAvailable, Allowed: allowed, Reason: reason})
	return pods
}

func evict(ctx context.Context, cs kubernetes.Interface, ns, name string, opts *metav1.DeleteOptions) error {
	return cs.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, DeleteOptions: opts})
}

// wantViolation checks err is the eviction API's 429.
func wantViolation(t *testing.T, err error, causeMessage string) {
	t.Helper()
	var se *apierrors.StatusError
	if !apierrors.IsTooManyRequests(err) || !asStatus(err, &se) || se.ErrStatus.Message != violation {
		t.Fatalf("eviction: %v, want 429 %q", err, violation)
	}
	d := se.ErrStatus.Details
	if d == nil || len(d.Causes) != 1 || d.Causes[0].Type != policyv1.DisruptionBudgetCause || d.Causes[0].Message != causeMessage {
		t.Errorf("details %+v, want one %s cause %q", d, policyv1.DisruptionBudgetCause, causeMessage)
	}
}

func asStatus(err error, se **apierrors.StatusError) bool {
	s, ok := err.(*apierrors.StatusError)
	*se = s
	return ok
}

func testEviction(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs, "evict")
	pods := budgetPods(t, cs, ns, "app", 2, 1)

	// Watch the budget from now on: the eviction's own write of its
	// status (disruptedPods) is seen even though the controller soon
	// replaces it.
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.PolicyV1().PodDisruptionBudgets(ns).Watch(ctx(t), metav1.ListOptions{
		FieldSelector: "metadata.name=app", ResourceVersion: pdb.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// A dry run changes nothing.
	if err := evict(ctx(t), cs, ns, pods[0].Name, &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run eviction: %v", err)
	}
	if p, err := cs.CoreV1().Pods(ns).Get(ctx(t), pods[0].Name, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("after a dry-run eviction: %v, deletionTimestamp %v", err, p.DeletionTimestamp)
	}

	if err := evict(ctx(t), cs, ns, pods[0].Name, nil); err != nil {
		t.Fatalf("eviction with room in the budget: %v", err)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx(t), pods[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp == nil {
		t.Error("evicted pod not marked for deletion")
	}
	var cond *corev1.PodCondition
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			cond = &p.Status.Conditions[i]
		}
	}
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "EvictionByEvictionAPI" || cond.Message != "Eviction API: evicting" {
		t.Errorf("DisruptionTarget condition %+v", cond)
	}

	// The eviction took the budget's one disruption and recorded the pod.
	if !sawEvictionWrite(t, w, pods[0].Name) {
		t.Error("no write of the budget with the pod in disruptedPods and disruptionsAllowed 0")
	}

	// The controller sees the pod terminating: it is no longer healthy,
	// and its disruptedPods entry goes.
	pdb = waitPDBStatus(t, cs, ns, "app", pdbStatus{Expected: 2, Healthy: 1, Desired: 1, Allowed: 0, Reason: policyv1.InsufficientPodsReason})
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pdb, err = cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), "app", metav1.GetOptions{})
		return err == nil && len(pdb.Status.DisruptedPods) == 0, err
	}, "disruptedPods not cleaned up: %v", pdb.Status.DisruptedPods)

	// No room left: 429, and the pod stays.
	err = evict(ctx(t), cs, ns, pods[1].Name, nil)
	wantViolation(t, err, "The disruption budget app needs 1 healthy pods and has 1 currently")
	if p, err := cs.CoreV1().Pods(ns).Get(ctx(t), pods[1].Name, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("pod evicted despite the budget: %v", err)
	}

	// A pod being deleted already is deleted again without a budget.
	if err := evict(ctx(t), cs, ns, pods[0].Name, &metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Errorf("evicting a terminating pod: %v", err)
	}
	podGone(t, cs, ns, pods[0].Name, pods[0].UID)

	// A pending pod goes regardless of the budget.
	pending := newPod(t, cs, ns, "pending", "app", "", nil)
	if err := evict(ctx(t), cs, ns, pending.Name, nil); err != nil {
		t.Errorf("evicting a pending pod: %v", err)
	}
	podGone(t, cs, ns, pending.Name, pending.UID)

	// The name in the body must be the one in the URL.
	err = cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pods[1].Name).SubResource("eviction").
		Body([]byte(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"other"}}`)).Do(ctx(t)).Error()
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "name in URL does not match name in Eviction object") {
		t.Errorf("eviction naming another pod: %v", err)
	}

	// Two budgets over one pod: 500, as upstream.
	newPDB(t, cs, ns, "second", "app", ptr.To(intstr.FromInt32(0)), nil)
	err = evict(ctx(t), cs, ns, pods[1].Name, nil)
	var se *apierrors.StatusError
	if !asStatus(err, &se) || se.ErrStatus.Code != http.StatusInternalServerError ||
		se.ErrStatus.Message != "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." {
		t.Errorf("eviction with two budgets: %v", err)
	}
}

// sawEvictionWrite reads the budget's watch until a version records pod in
// disruptedPods with no disruption left.
func sawEvictionWrite(t *testing.T, w watch.Interface, pod string) bool {
	t.Helper()
	c := ctx(t)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			if pdb, isPDB := ev.Object.(*policyv1.PodDisruptionBudget); isPDB && ev.Type == watch.Modified {
				if _, recorded := pdb.Status.DisruptedPods[pod]; recorded && pdb.Status.DisruptionsAllowed == 0 {
					return true
				}
			}
		case <-c.Done():
			return false
		}
	}
}

func testUnhealthyEviction(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs, "unhealthy")

	// IfHealthyBudget (the default): an unready pod may go while the
	// application is healthy, without taking a disruption.
	pods := budgetPods(t, cs, ns, "healthy", 3, 2)
	mustSetPodStatus(t, cs, ns, pods[0].Name, false)
	waitPDBStatus(t, cs, ns, "healthy", pdbStatus{Expected: 3, Healthy: 2, Desired: 2, Allowed: 0, Reason: policyv1.InsufficientPodsReason})
	if err := evict(ctx(t), cs, ns, pods[0].Name, nil); err != nil {
		t.Errorf("evicting an unready pod of a healthy application: %v", err)
	}
	// Once the application is short of healthy pods, unready ones are
	// covered too.
	mustSetPodStatus(t, cs, ns, pods[1].Name, false)
	waitPDBStatus(t, cs, ns, "healthy", pdbStatus{Expected: 3, Healthy: 1, Desired: 2, Allowed: 0, Reason: policyv1.InsufficientPodsReason})
	wantViolation(t, evict(ctx(t), cs, ns, pods[1].Name, nil), "The disruption budget healthy needs 2 healthy pods and has 1 currently")

	// AlwaysAllow: unready pods always may go.
	always := budgetPods(t, cs, ns, "always", 2, 2, func(p *policyv1.PodDisruptionBudget) {
		p.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	})
	mustSetPodStatus(t, cs, ns, always[0].Name, false)
	waitPDBStatus(t, cs, ns, "always", pdbStatus{Expected: 2, Healthy: 1, Desired: 2, Allowed: 0, Reason: policyv1.InsufficientPodsReason})
	if err := evict(ctx(t), cs, ns, always[0].Name, nil); err != nil {
		t.Errorf("evicting an unready pod with AlwaysAllow: %v", err)
	}
	wantViolation(t, evict(ctx(t), cs, ns, always[1].Name, nil), "The disruption budget always needs 2 healthy pods and has 1 currently")
}
