// Package disruption_test is the end-to-end suite of what keeps workloads
// running through voluntary disruptions, and of the namespace defaults pods
// rely on: the service account controller (a default ServiceAccount in
// every namespace), the root CA publisher (ConfigMap kube-root-ca.crt), the
// ServiceAccount admission of pods (serviceAccountName and the projected
// kube-api-access volume), the disruption controller (PodDisruptionBudget
// status), the eviction API and `kubectl drain`.
//
// It runs servers without a node agent: nodes are Node objects created
// through the API, pods are bound to them with spec.nodeName, and the test
// plays the kubelet (see kubelet), reporting pods Running and Ready and
// finishing the deletion of the pods it is asked to stop.
package disruption_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// waitTimeout bounds every wait for a controller to act.
	waitTimeout = 30 * time.Second
	// image is never pulled: no agent runs.
	image = "registry.k8s.io/pause:3.10"
)

// startServer starts a server without agent for one top-level test; e2e
// tests are skipped with -short.
func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t)
	// Fill kubectl's discovery cache once, before parallel subtests run
	// kubectl.
	s.MustKubectl(t, "api-resources")
	return s
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func newNamespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	return framework.NewNamespace(t, cs, prefix)
}

// newNode creates a Node object; no agent stands behind it.
func newNode(t testing.TB, cs kubernetes.Interface, name string) string {
	t.Helper()
	_, err := cs.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	return name
}

// newReplicaSet creates the ReplicaSet the tests' pods name as their
// controller: kubectl drain only evicts pods with a controller, and
// percentages in budgets are of the controller's replicas. Should a
// ReplicaSet controller run, the pods it makes neither match the tests'
// budgets (they lack podLabel) nor can be scheduled.
func newReplicaSet(t testing.TB, cs kubernetes.Interface, ns, app string, replicas int32) *appsv1.ReplicaSet {
	t.Helper()
	labels := map[string]string{"app": app}
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx(t), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"e2e.havre.dev/no-such-node": "true"},
					Containers:   []corev1.Container{{Name: "c", Image: image}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replicaset %s: %v", app, err)
	}
	return rs
}

// podLabel marks the pods the tests create themselves; budgets select it.
const podLabel = "e2e.havre.dev/pod"

// podLabels are the labels of the tests' pods of app.
func podLabels(app string) map[string]string { return map[string]string{"app": app, podLabel: "true"} }

// newPod creates a pod of app bound to node, controlled by rs when given.
func newPod(t testing.TB, cs kubernetes.Interface, ns, name, app, node string, rs *appsv1.ReplicaSet) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels(app)},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: image}},
		},
	}
	if rs != nil {
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	}
	out, err := cs.CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return out
}

// setPodStatus reports the pod Running, Ready or not, as a kubelet would.
func setPodStatus(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, ready bool) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := pod.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.Conditions = slices.DeleteFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady || c.Type == corev1.ContainersReady
	})
	p.Status.Conditions = append(p.Status.Conditions,
		corev1.PodCondition{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		corev1.PodCondition{Type: corev1.PodReady, Status: status, LastTransitionTime: now})
	_, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// mustSetPodStatus is setPodStatus on the latest version of the pod.
func mustSetPodStatus(t testing.TB, cs kubernetes.Interface, ns, name string, ready bool) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return true, setPodStatus(ctx(t), cs, pod, ready)
	}, "setting the status of pod %s/%s", ns, name)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubelet plays the node agent of nodes for the pods of one namespace: it
// reports their pods Running and Ready, and deletes for good (grace period
// 0) the pods marked for deletion, as a kubelet does once their containers
// have stopped. It stops when the test ends.
func kubelet(t testing.TB, cs kubernetes.Interface, ns string, nodes ...string) {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	lister := factory.Core().V1().Pods().Lister()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && slices.Contains(nodes, pod.Spec.NodeName) {
			queue.Add(pod.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	handle := func(name string) error {
		pod, err := lister.Pods(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case pod.DeletionTimestamp != nil:
			err = cs.CoreV1().Pods(ns).Delete(runCtx, name, metav1.DeleteOptions{
				GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		case !podReady(pod):
			err = setPodStatus(runCtx, cs, pod, true)
		}
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // a newer event follows
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			name, quit := queue.Get()
			if quit {
				return
			}
			if err := handle(name); err != nil && runCtx.Err() == nil {
				queue.AddRateLimited(name)
			} else {
				queue.Forget(name)
			}
			queue.Done(name)
		}
	}()
	factory.Start(runCtx.Done())
	t.Cleanup(func() {
		cancel()
		queue.ShutDown()
		factory.Shutdown()
		wg.Wait()
	})
}

// waitReady waits for the pods to be reported Ready.
func waitReady(t testing.TB, cs kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
			return err == nil && podReady(pod), err
		}, "pod %s/%s did not become Ready", ns, name)
	}
}

// newPDB creates a budget over the tests' pods of app, with minAvailable or
// maxUnavailable.
func newPDB(t testing.TB, cs kubernetes.Interface, ns, name, app string, minAvailable, maxUnavailable *intstr.IntOrString,
	mutate ...func(*policyv1.PodDisruptionBudget)) *policyv1.PodDisruptionBudget {
	t.Helper()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: podLabels(app)},
			MinAvailable:   minAvailable,
			MaxUnavailable: maxUnavailable,
		},
	}
	for _, m := range mutate {
		m(pdb)
	}
	out, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx(t), pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating poddisruptionbudget %s: %v", name, err)
	}
	return out
}

// pdbStatus is the part of a budget's status the tests compare.
type pdbStatus struct {
	Expected, Healthy, Desired, Allowed int32
	Reason                              string
}

func (s pdbStatus) String() string {
	return fmt.Sprintf("expected=%d healthy=%d desired=%d allowed=%d reason=%s", s.Expected, s.Healthy, s.Desired, s.Allowed, s.Reason)
}

// waitPDBStatus waits for the budget's status to be computed for its
// current generation and to equal want; it returns the budget.
func waitPDBStatus(t testing.TB, cs kubernetes.Interface, ns, name string, want pdbStatus) *policyv1.PodDisruptionBudget {
	t.Helper()
	var pdb *policyv1.PodDisruptionBudget
	var got pdbStatus
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		var err error
		pdb, err = cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := pdb.Status
		got = pdbStatus{Expected: st.ExpectedPods, Healthy: st.CurrentHealthy, Desired: st.DesiredHealthy, Allowed: st.DisruptionsAllowed}
		for _, c := range st.Conditions {
			if c.Type == policyv1.DisruptionAllowedCondition {
				got.Reason = c.Reason
			}
		}
		return st.ObservedGeneration == pdb.Generation && got == want, nil
	})
	if err != nil {
		t.Fatalf("poddisruptionbudget %s/%s: status %v (observedGeneration %d of %d), want %v: %v",
			ns, name, got, pdb.Status.ObservedGeneration, pdb.Generation, want, err)
	}
	return pdb
}

// podGone waits for the pod to be deleted for good.
func podGone(t testing.TB, cs kubernetes.Interface, ns, name string, uid types.UID) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && pod.UID != uid, err
	}, "pod %s/%s was not deleted", ns, name)
}
