// Package gc_test is the acceptance suite of Havre's garbage collector: it
// drives the real havre binary with client-go and the upstream kubectl and
// checks that owner references are honoured as kube-controller-manager
// honours them: background, foreground and orphan deletion, dangling and
// invalid references.
package gc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// gcTimeout bounds every wait for the collector to act.
	gcTimeout = 30 * time.Second
	// holdFinalizer is a finalizer of the tests' own, which only they
	// remove.
	holdFinalizer = "e2e.havre.dev/hold"
)

// startServer starts a server for one top-level test; e2e tests are skipped
// with -short. It fills kubectl's discovery cache once, so that the
// parallel subtests' kubectl runs do not all discover the API at the same
// time: that costs time, and concurrent requests for the same discovery
// document trip a data race in the API server (a -race server reports it).
func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	// The tests build owner chains (Deployment → ReplicaSet → Pod) by hand:
	// the workload controllers would act on them.
	s := framework.StartServer(t, framework.WithoutWorkloadControllers())
	s.MustKubectl(t, "api-resources")
	return s
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func newNamespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	return framework.NewNamespace(t, cs, "gc")
}

// ref is an owner reference to obj.
func ref(apiVersion, kind string, obj metav1.Object, block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID()}
	if block {
		r.BlockOwnerDeletion = ptr.To(true)
		r.Controller = ptr.To(true)
	}
	return r
}

func cmRef(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return ref("v1", "ConfigMap", cm, block)
}

// ghostRef names a ConfigMap that never existed.
func ghostRef(name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: name, UID: uuid.NewUUID()}
}

func createConfigMap(t testing.TB, cs kubernetes.Interface, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners, Finalizers: finalizers},
		Data:       map[string]string{"k": name},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

// waitGone waits until get reports NotFound.
func waitGone(t testing.TB, what string, get func(context.Context) error) {
	t.Helper()
	framework.Eventually(t, gcTimeout, func() (bool, error) {
		err := get(ctx(t))
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "%s was not deleted", what)
}

// mustBeGone fails unless get reports NotFound now.
func mustBeGone(t testing.TB, what string, get func(context.Context) error) {
	t.Helper()
	if err := get(ctx(t)); !apierrors.IsNotFound(err) {
		t.Fatalf("%s: want NotFound, got %v", what, err)
	}
}

func getCM(cs kubernetes.Interface, ns, name string) func(context.Context) error {
	return func(c context.Context) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(c, name, metav1.GetOptions{})
		return err
	}
}

func mustGetCM(t testing.TB, cs kubernetes.Interface, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

// deletions watches a namespace's configmaps from now on and reports the
// order in which the named ones are deleted.
type deletions struct {
	w watch.Interface
}

func watchDeletions(t testing.TB, cs kubernetes.Interface, ns string) *deletions {
	t.Helper()
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &deletions{w: w}
}

// order reads events until every name was deleted and returns the names
// in deletion order.
func (d *deletions) order(t testing.TB, names ...string) []string {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var got []string
	deadline := time.After(gcTimeout)
	for len(got) < len(names) {
		select {
		case ev, ok := <-d.w.ResultChan():
			if !ok {
				t.Fatalf("watch closed; deletions seen so far: %v", got)
			}
			if ev.Type != watch.Deleted {
				continue
			}
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && want[cm.Name] {
				got = append(got, cm.Name)
			}
		case <-deadline:
			t.Fatalf("not every one of %v was deleted within %v; deletions seen: %v", names, gcTimeout, got)
		}
	}
	return got
}

func TestGarbageCollector(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	// A dependent goes once its only owner is deleted (background, the
	// default policy).
	t.Run("Background", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		dep := createConfigMap(t, cs, ns, "dep", nil, cmRef(owner, false))
		grand := createConfigMap(t, cs, ns, "grand", nil, cmRef(dep, true))
		keep := createConfigMap(t, cs, ns, "keep", nil)
		if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), owner.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		mustBeGone(t, "the owner (background deletion is immediate)", getCM(cs, ns, owner.Name))
		waitGone(t, "the dependent", getCM(cs, ns, dep.Name))
		waitGone(t, "the dependent's dependent", getCM(cs, ns, grand.Name))
		mustGetCM(t, cs, ns, keep.Name)
	})

	// kubectl delete --cascade=background, the same with kubectl.
	t.Run("BackgroundKubectl", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		dep := createConfigMap(t, cs, ns, "dep", nil, cmRef(owner, true))
		s.MustKubectl(t, "delete", "configmap", owner.Name, "-n", ns, "--cascade=background")
		waitGone(t, "the dependent", getCM(cs, ns, dep.Name))
	})

	// kubectl delete --cascade=foreground on owner → child → grandchild:
	// kubectl returns once the owner is gone, which is after its
	// dependents, depth-first.
	t.Run("ForegroundChain", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		child := createConfigMap(t, cs, ns, "child", nil, cmRef(owner, true))
		grand := createConfigMap(t, cs, ns, "grandchild", nil, cmRef(child, true))
		d := watchDeletions(t, cs, ns)
		out := s.MustKubectl(t, "delete", "configmap", owner.Name, "-n", ns, "--cascade=foreground", "--timeout=60s")
		if !strings.Contains(out, `configmap "owner" deleted`) {
			t.Errorf("kubectl delete said %q", out)
		}
		// The owner is gone, so its dependents must be gone already.
		mustBeGone(t, "the owner", getCM(cs, ns, owner.Name))
		mustBeGone(t, "the child", getCM(cs, ns, child.Name))
		mustBeGone(t, "the grandchild", getCM(cs, ns, grand.Name))
		got := d.order(t, owner.Name, child.Name, grand.Name)
		if want := []string{grand.Name, child.Name, owner.Name}; !equal(got, want) {
			t.Errorf("deletion order %v, want %v", got, want)
		}
	})

	// A dependent held by a finalizer of its own blocks the foreground
	// deletion of its owners until it goes.
	t.Run("ForegroundBlocked", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		child := createConfigMap(t, cs, ns, "child", nil, cmRef(owner, true))
		grand := createConfigMap(t, cs, ns, "grandchild", []string{holdFinalizer}, cmRef(child, true))
		d := watchDeletions(t, cs, ns)

		kctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := s.KubectlCommand(kctx, "delete", "configmap", owner.Name, "-n", ns, "--cascade=foreground", "--timeout=90s")
		var kout strings.Builder
		cmd.Stdout, cmd.Stderr = &kout, &kout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		// The collector deletes the grandchild, which its finalizer
		// holds...
		framework.Eventually(t, gcTimeout, func() (bool, error) {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), grand.Name, metav1.GetOptions{})
			return err == nil && cm.DeletionTimestamp != nil, err
		}, "the grandchild was not marked for deletion")
		// ...so the child and the owner wait, marked for deletion with
		// the foregroundDeletion finalizer, and kubectl waits too.
		for _, name := range []string{child.Name, owner.Name} {
			framework.Eventually(t, gcTimeout, func() (bool, error) {
				cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return cm.DeletionTimestamp != nil && contains(cm.Finalizers, metav1.FinalizerDeleteDependents), nil
			}, "%s is not waiting for its dependents", name)
		}
		select {
		case err := <-done:
			t.Fatalf("kubectl returned while a dependent still existed: %v\n%s", err, kout.String())
		default:
		}

		// Releasing the grandchild lets everything go, the owner last.
		_, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx(t), grand.Name, types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("kubectl delete: %v\n%s", err, kout.String())
			}
		case <-kctx.Done():
			t.Fatalf("kubectl delete did not return: %s", kout.String())
		}
		got := d.order(t, owner.Name, child.Name, grand.Name)
		if want := []string{grand.Name, child.Name, owner.Name}; !equal(got, want) {
			t.Errorf("deletion order %v, want %v", got, want)
		}
	})

	// A dependent whose reference does not block its owner is deleted but
	// not waited for.
	t.Run("ForegroundNonBlocking", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		dep := createConfigMap(t, cs, ns, "dep", []string{holdFinalizer}, cmRef(owner, false))
		s.MustKubectl(t, "delete", "configmap", owner.Name, "-n", ns, "--cascade=foreground", "--timeout=60s")
		mustBeGone(t, "the owner", getCM(cs, ns, owner.Name))
		framework.Eventually(t, gcTimeout, func() (bool, error) {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), dep.Name, metav1.GetOptions{})
			return err == nil && cm.DeletionTimestamp != nil, err
		}, "the non-blocking dependent was not deleted")
		if _, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx(t), dep.Name, types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the dependent", getCM(cs, ns, dep.Name))
	})

	// kubectl delete --cascade=orphan: the owner goes, its dependents stay
	// without their references to it.
	t.Run("Orphan", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		other := createConfigMap(t, cs, ns, "other", nil)
		dep1 := createConfigMap(t, cs, ns, "dep1", nil, cmRef(owner, true))
		dep2 := createConfigMap(t, cs, ns, "dep2", nil, cmRef(other, false), cmRef(owner, false))
		s.MustKubectl(t, "delete", "configmap", owner.Name, "-n", ns, "--cascade=orphan", "--timeout=60s")
		mustBeGone(t, "the owner", getCM(cs, ns, owner.Name))
		if got := mustGetCM(t, cs, ns, dep1.Name).OwnerReferences; len(got) != 0 {
			t.Errorf("dep1 still has owner references %v", got)
		}
		got := mustGetCM(t, cs, ns, dep2.Name).OwnerReferences
		if len(got) != 1 || got[0].UID != other.UID {
			t.Errorf("dep2 has owner references %v, want only the one to %q", got, other.Name)
		}
		// The orphans are not collected later either: deleting the
		// other owner collects dep2 only because of its own reference.
		if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), other.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "dep2", getCM(cs, ns, dep2.Name))
		mustGetCM(t, cs, ns, dep1.Name)
	})

	// orphanDependents=true, the deprecated spelling of the orphan policy.
	t.Run("OrphanDependentsOption", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		dep := createConfigMap(t, cs, ns, "dep", nil, cmRef(owner, true))
		//lint:ignore SA1019 the deprecated option must keep working.
		opts := metav1.DeleteOptions{OrphanDependents: ptr.To(true)}
		if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), owner.Name, opts); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the owner", getCM(cs, ns, owner.Name))
		if got := mustGetCM(t, cs, ns, dep.Name).OwnerReferences; len(got) != 0 {
			t.Errorf("dep still has owner references %v", got)
		}
	})

	// Owner references that name no existing object.
	t.Run("Dangling", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		other := newNamespace(t, cs)
		real := createConfigMap(t, cs, ns, "real", nil)
		elsewhere := createConfigMap(t, cs, other, "elsewhere", nil)

		// The owner never existed.
		ghost := createConfigMap(t, cs, ns, "ghost-dep", nil, ghostRef("ghost"))
		// An object with the owner's name exists, with another UID.
		wrongUID := createConfigMap(t, cs, ns, "wrong-uid-dep", nil,
			metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: real.Name, UID: uuid.NewUUID()})
		// The owner exists in another namespace: a namespaced owner only
		// owns objects of its namespace, so it counts as absent.
		cross := createConfigMap(t, cs, ns, "cross-dep", nil, cmRef(elsewhere, false))
		// One owner exists, one never did: only the dangling reference
		// goes.
		partial := createConfigMap(t, cs, ns, "partial-dep", nil, cmRef(real, false), ghostRef("ghost2"))

		waitGone(t, "a dependent of an owner that never existed", getCM(cs, ns, ghost.Name))
		waitGone(t, "a dependent of an owner with another UID", getCM(cs, ns, wrongUID.Name))
		waitGone(t, "a dependent of an owner in another namespace", getCM(cs, ns, cross.Name))
		framework.Eventually(t, gcTimeout, func() (bool, error) {
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), partial.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			refs := cm.OwnerReferences
			if len(refs) == 1 && refs[0].UID != real.UID {
				return false, fmt.Errorf("the wrong reference was removed: %v", refs)
			}
			return len(refs) == 1, nil
		}, "the dangling reference was not removed")
		mustGetCM(t, cs, ns, real.Name)
		mustGetCM(t, cs, other, elsewhere.Name)
	})

	// A cluster-scoped object naming a namespaced owner is invalid and left
	// alone; one naming an absent cluster-scoped owner is collected.
	t.Run("ClusterScoped", func(t *testing.T) {
		t.Parallel()
		pcs := cs.SchedulingV1().PriorityClasses()
		name := func(s string) string { return "gc-" + s + "-" + string(uuid.NewUUID())[:8] }
		invalid, err := pcs.Create(ctx(t), &schedulingv1.PriorityClass{
			ObjectMeta: metav1.ObjectMeta{Name: name("invalid"), OwnerReferences: []metav1.OwnerReference{ghostRef("ghost")}},
			Value:      10,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pcs.Delete(context.Background(), invalid.Name, metav1.DeleteOptions{}) })
		collected, err := pcs.Create(ctx(t), &schedulingv1.PriorityClass{
			ObjectMeta: metav1.ObjectMeta{Name: name("collected"), OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "Namespace", Name: "ghost", UID: uuid.NewUUID()}}},
			Value: 11,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, "a cluster-scoped dependent of an absent namespace", func(c context.Context) error {
			_, err := pcs.Get(c, collected.Name, metav1.GetOptions{})
			return err
		})
		// The invalid one was created first and needs fewer steps; it is
		// still there.
		if _, err := pcs.Get(ctx(t), invalid.Name, metav1.GetOptions{}); err != nil {
			t.Fatalf("the cluster-scoped object with a namespaced owner was touched: %v", err)
		}
	})

	// A dependent created after its owner was deleted is collected too.
	t.Run("OwnerDeletedFirst", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs)
		owner := createConfigMap(t, cs, ns, "owner", nil)
		if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx(t), owner.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		dep := createConfigMap(t, cs, ns, "dep", nil, cmRef(owner, true))
		waitGone(t, "the late dependent", getCM(cs, ns, dep.Name))
	})
}

// workload is a Deployment with a ReplicaSet and Pods owned as the
// controllers would own them (created by hand: there are no workload
// controllers yet).
type workload struct {
	deploy *appsv1.Deployment
	rs     *appsv1.ReplicaSet
	pods   []*corev1.Pod
}

func createWorkload(t *testing.T, cs kubernetes.Interface, ns string) workload {
	t.Helper()
	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}},
	}
	deploy, err := cs.AppsV1().Deployments(ns).Create(ctx(t), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx(t), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d4f8", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{ref("apps/v1", "Deployment", deploy, true)}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replicaset: %v", err)
	}
	w := workload{deploy: deploy, rs: rs}
	for i := range 2 {
		pod, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-5d4f8-%d", i), Labels: labels,
				OwnerReferences: []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", rs, true)}},
			Spec: template.Spec,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating pod: %v", err)
		}
		w.pods = append(w.pods, pod)
	}
	return w
}

func (w workload) getRS(cs kubernetes.Interface) func(context.Context) error {
	return func(c context.Context) error {
		_, err := cs.AppsV1().ReplicaSets(w.rs.Namespace).Get(c, w.rs.Name, metav1.GetOptions{})
		return err
	}
}

func (w workload) getDeploy(cs kubernetes.Interface) func(context.Context) error {
	return func(c context.Context) error {
		_, err := cs.AppsV1().Deployments(w.deploy.Namespace).Get(c, w.deploy.Name, metav1.GetOptions{})
		return err
	}
}

func getPod(cs kubernetes.Interface, pod *corev1.Pod) func(context.Context) error {
	return func(c context.Context) error {
		_, err := cs.CoreV1().Pods(pod.Namespace).Get(c, pod.Name, metav1.GetOptions{})
		return err
	}
}

func TestDeployment(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()

	// Background: the Deployment goes at once, then the ReplicaSet, then
	// its Pods.
	t.Run("Background", func(t *testing.T) {
		t.Parallel()
		w := createWorkload(t, cs, newNamespace(t, cs))
		err := cs.AppsV1().Deployments(w.deploy.Namespace).Delete(ctx(t), w.deploy.Name,
			metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil {
			t.Fatal(err)
		}
		mustBeGone(t, "the deployment", w.getDeploy(cs))
		waitGone(t, "the replicaset", w.getRS(cs))
		for _, pod := range w.pods {
			waitGone(t, "pod "+pod.Name, getPod(cs, pod))
		}
	})

	// Foreground: kubectl returns once the Deployment is gone, and by then
	// the ReplicaSet and its Pods are gone.
	t.Run("Foreground", func(t *testing.T) {
		t.Parallel()
		w := createWorkload(t, cs, newNamespace(t, cs))
		s.MustKubectl(t, "delete", "deployment", w.deploy.Name, "-n", w.deploy.Namespace, "--cascade=foreground", "--timeout=60s")
		mustBeGone(t, "the deployment", w.getDeploy(cs))
		mustBeGone(t, "the replicaset", w.getRS(cs))
		for _, pod := range w.pods {
			mustBeGone(t, "pod "+pod.Name, getPod(cs, pod))
		}
	})

	// Orphan: the Deployment goes; the ReplicaSet stays without its owner
	// reference, and its Pods stay owned by it.
	t.Run("Orphan", func(t *testing.T) {
		t.Parallel()
		w := createWorkload(t, cs, newNamespace(t, cs))
		s.MustKubectl(t, "delete", "deployment", w.deploy.Name, "-n", w.deploy.Namespace, "--cascade=orphan", "--timeout=60s")
		mustBeGone(t, "the deployment", w.getDeploy(cs))
		rs, err := cs.AppsV1().ReplicaSets(w.rs.Namespace).Get(ctx(t), w.rs.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the orphaned replicaset: %v", err)
		}
		if len(rs.OwnerReferences) != 0 {
			t.Errorf("the orphaned replicaset still has owner references %v", rs.OwnerReferences)
		}
		for _, p := range w.pods {
			pod, err := cs.CoreV1().Pods(p.Namespace).Get(ctx(t), p.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: %v", p.Name, err)
			}
			if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != rs.UID {
				t.Errorf("pod %s has owner references %v, want the replicaset's", p.Name, pod.OwnerReferences)
			}
		}
		// The ReplicaSet, deleted in its turn, still takes its Pods.
		if err := cs.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx(t), rs.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, pod := range w.pods {
			waitGone(t, "pod "+pod.Name, getPod(cs, pod))
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
