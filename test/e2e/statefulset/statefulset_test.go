package statefulset_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/e2e/internal/fakekubelet"
	"github.com/havre/havre/test/e2e/internal/podwatch"
	"github.com/havre/havre/test/framework"
)

func TestStatefulSet(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	k := fakekubelet.Start(t, cs, node("node-a"), node("node-b"))

	// The web set of ns, used by the subtests in turn.
	ns := newNamespace(t, cs)
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		return s.MustKubectl(t, append([]string{"-n", ns}, args...)...)
	}

	t.Run("comes up in ordinal order with its claims", func(t *testing.T) {
		// Pods stay unready until the test releases them, one by one.
		var released sync.Map
		k.HoldReady(func(p *corev1.Pod) bool {
			_, ok := released.Load(p.Name)
			return p.Namespace == ns && !ok
		})
		defer k.HoldReady(nil)
		w := podwatch.Start(t, cs, ns)
		createSet(t, cs, ns, newSet("web", 3))

		for i := range 3 {
			name := fmt.Sprintf("web-%d", i)
			// The controller has seen pod i, running but unready, and
			// stopped there.
			waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool {
				return s.Status.Replicas == int32(i+1) && s.Status.ReadyReplicas == int32(i)
			}, fmt.Sprintf("%d replicas, %d ready", i+1, i))
			framework.Eventually(t, waitTimeout, func() (bool, error) {
				p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning, err
			}, "%s running", name)
			var want []string
			for j := range i + 1 {
				want = append(want, fmt.Sprintf("web-%d", j))
			}
			if got := podNames(t, cs, ns); !slices.Equal(got, want) {
				t.Fatalf("with %s unready the pods are %v, want %v", name, got, want)
			}
			released.Store(name, true)
			k.Requeue()
		}
		out := kubectl(t, "rollout", "status", "statefulset/web", "--timeout=60s")
		if !strings.Contains(out, "partitioned roll out complete: 3 new pods have been updated") {
			t.Errorf("kubectl rollout status: %q", out)
		}
		// In the store's order, pod i appeared only after pod i-1 was Ready.
		for i := 1; i < 3; i++ {
			prev, cur := fmt.Sprintf("web-%d", i-1), fmt.Sprintf("web-%d", i)
			ready, add := w.First(podwatch.BecameReady(prev)), w.First(podwatch.Added(cur))
			if ready < 0 || add < 0 || add < ready {
				t.Errorf("%s added at event %d, %s ready at %d; events:\n%s", cur, add, prev, ready, w.Dump())
			}
		}

		set := waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool { return s.Status.AvailableReplicas == 3 }, "3 available")
		st := set.Status
		if st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision || st.CurrentReplicas != 3 ||
			st.UpdatedReplicas != 3 || st.ObservedGeneration != set.Generation {
			t.Errorf("status %+v", st)
		}
		for i, p := range pods(t, cs, ns) {
			want := map[string]string{
				appsv1.StatefulSetPodNameLabel:  p.Name,
				appsv1.PodIndexLabel:            fmt.Sprint(i),
				appsv1.StatefulSetRevisionLabel: st.UpdateRevision,
			}
			for k, v := range want {
				if p.Labels[k] != v {
					t.Errorf("%s: label %s=%q, want %q", p.Name, k, p.Labels[k], v)
				}
			}
			if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "web" {
				t.Errorf("%s: hostname %q subdomain %q", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
			}
			claim := "data-" + p.Name
			if !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
				return v.Name == "data" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim
			}) {
				t.Errorf("%s: volumes %+v, want data from %s", p.Name, p.Spec.Volumes, claim)
			}
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), claim, metav1.GetOptions{})
			if err != nil {
				t.Errorf("claim %s: %v", claim, err)
				continue
			}
			if pvc.Labels["app"] != "web" || pvc.Spec.Resources.Requests.Storage().String() != "1Gi" {
				t.Errorf("claim %s: labels %v, request %v", claim, pvc.Labels, pvc.Spec.Resources.Requests)
			}
			// The claim was there before the pod.
			if pvc.CreationTimestamp.After(p.CreationTimestamp.Time) {
				t.Errorf("claim %s created at %v, after its pod (%v)", claim, pvc.CreationTimestamp, p.CreationTimestamp)
			}
		}
		if out := kubectl(t, "get", "statefulset", "web"); !strings.Contains(out, "3/3") {
			t.Errorf("kubectl get statefulset:\n%s", out)
		}
		waitEvents(t, cs, ns, "StatefulSet", "web", "SuccessfulCreate",
			"create Claim data-web-0 Pod web-0 in StatefulSet web success",
			"create Pod web-0 in StatefulSet web successful",
			"create Pod web-2 in StatefulSet web successful")
	})

	t.Run("scale down removes the highest ordinal first", func(t *testing.T) {
		w := podwatch.Start(t, cs, ns)
		kubectl(t, "scale", "statefulset/web", "--replicas=1")
		waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool {
			return s.Status.Replicas == 1 && s.Status.ReadyReplicas == 1
		}, "1 replica")
		if got := podNames(t, cs, ns); !slices.Equal(got, []string{"web-0"}) {
			t.Fatalf("pods %v, want web-0", got)
		}
		// web-1 went only once web-2 was gone.
		if gone, started := w.First(podwatch.Deleted("web-2")), w.First(podwatch.DeletionStarted("web-1")); gone < 0 || started < gone {
			t.Errorf("web-2 deleted at event %d, web-1's deletion began at %d; events:\n%s", gone, started, w.Dump())
		}
		// Claims are retained by default.
		for _, c := range []string{"data-web-1", "data-web-2"} {
			if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), c, metav1.GetOptions{}); err != nil {
				t.Errorf("claim %s: %v", c, err)
			}
		}
		kubectl(t, "scale", "statefulset/web", "--replicas=3")
		kubectl(t, "rollout", "status", "statefulset/web", "--timeout=60s")
		if got := podNames(t, cs, ns); !slices.Equal(got, []string{"web-0", "web-1", "web-2"}) {
			t.Fatalf("pods %v after scaling back up", got)
		}
	})

	t.Run("rolling update with a partition", func(t *testing.T) {
		rev1 := waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool { return s.Status.ReadyReplicas == 3 }, "3 ready").Status.CurrentRevision
		w := podwatch.Start(t, cs, ns)
		kubectl(t, "patch", "statefulset/web", "-p",
			`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}},"template":{"spec":{"containers":[{"name":"web","image":"registry.example/web:2"}]}}}}`)
		out := kubectl(t, "rollout", "status", "statefulset/web", "--timeout=60s")
		if !strings.Contains(out, "partitioned roll out complete: 2 new pods have been updated") {
			t.Errorf("kubectl rollout status: %q", out)
		}
		set := waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool {
			return s.Status.UpdatedReplicas == 2 && s.Status.ReadyReplicas == 3
		}, "2 updated, 3 ready")
		if set.Status.CurrentRevision != rev1 || set.Status.UpdateRevision == rev1 || set.Status.CurrentReplicas != 1 {
			t.Errorf("status %+v, want current %s (1 replica) and a new update revision", set.Status, rev1)
		}
		images := map[string]string{}
		for _, p := range pods(t, cs, ns) {
			images[p.Name] = p.Spec.Containers[0].Image + "@" + p.Labels[appsv1.StatefulSetRevisionLabel]
		}
		want := map[string]string{
			"web-0": "registry.example/web:1@" + rev1,
			"web-1": "registry.example/web:2@" + set.Status.UpdateRevision,
			"web-2": "registry.example/web:2@" + set.Status.UpdateRevision,
		}
		for name, img := range want {
			if images[name] != img {
				t.Errorf("%s: %s, want %s", name, images[name], img)
			}
		}
		if gone, started := w.First(podwatch.Deleted("web-2")), w.First(podwatch.DeletionStarted("web-1")); gone < 0 || started < gone {
			t.Errorf("web-2 replaced at event %d, web-1 at %d: want the highest ordinal first; events:\n%s", gone, started, w.Dump())
		}

		kubectl(t, "patch", "statefulset/web", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
		kubectl(t, "rollout", "status", "statefulset/web", "--timeout=60s")
		set = waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool {
			return s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.CurrentReplicas == 3 && s.Status.ReadyReplicas == 3
		}, "the update revision current")
		for _, p := range pods(t, cs, ns) {
			if p.Labels[appsv1.StatefulSetRevisionLabel] != set.Status.UpdateRevision {
				t.Errorf("%s: revision %s, want %s", p.Name, p.Labels[appsv1.StatefulSetRevisionLabel], set.Status.UpdateRevision)
			}
			if p.Spec.Containers[0].Image != "registry.example/web:2" {
				t.Errorf("%s: image %s", p.Name, p.Spec.Containers[0].Image)
			}
		}
	})

	t.Run("rollout history and undo", func(t *testing.T) {
		out := kubectl(t, "rollout", "history", "statefulset/web")
		if !hasRevisions(out, "1", "2") {
			t.Fatalf("kubectl rollout history:\n%s", out)
		}
		before := waitSet(t, cs, ns, "web", func(*appsv1.StatefulSet) bool { return true }, "")
		kubectl(t, "rollout", "undo", "statefulset/web")
		kubectl(t, "rollout", "status", "statefulset/web", "--timeout=60s")
		set := waitSet(t, cs, ns, "web", func(s *appsv1.StatefulSet) bool {
			return s.Status.UpdateRevision != before.Status.UpdateRevision &&
				s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.ReadyReplicas == 3 && s.Status.CurrentReplicas == 3
		}, "rolled back")
		for _, p := range pods(t, cs, ns) {
			if p.Spec.Containers[0].Image != "registry.example/web:1" {
				t.Errorf("%s: image %s after undo", p.Name, p.Spec.Containers[0].Image)
			}
		}
		// Revision 1 became revision 3; no new revision was made.
		out = kubectl(t, "rollout", "history", "statefulset/web")
		if !hasRevisions(out, "2", "3") || hasRevisions(out, "1") {
			t.Errorf("kubectl rollout history after undo:\n%s", out)
		}
		revs, err := cs.AppsV1().ControllerRevisions(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(revs.Items) != 2 {
			t.Errorf("%d revisions, want 2", len(revs.Items))
		}
		for _, r := range revs.Items {
			if r.Name == set.Status.UpdateRevision && r.Revision != 3 {
				t.Errorf("revision %s is number %d, want 3", r.Name, r.Revision)
			}
			if ref := metav1.GetControllerOf(&r); ref == nil || ref.UID != set.UID {
				t.Errorf("revision %s: controller %v", r.Name, ref)
			}
		}
	})

	t.Run("parallel creates every pod at once", func(t *testing.T) {
		ns := newNamespace(t, cs)
		k.HoldReady(func(p *corev1.Pod) bool { return p.Namespace == ns })
		defer k.HoldReady(nil)
		set := newSet("par", 3)
		set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		createSet(t, cs, ns, set)
		waitSet(t, cs, ns, "par", func(s *appsv1.StatefulSet) bool {
			return s.Status.Replicas == 3 && s.Status.ReadyReplicas == 0
		}, "3 unready replicas")
	})

	t.Run("ordinals start", func(t *testing.T) {
		ns := newNamespace(t, cs)
		set := newSet("ord", 2)
		set.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
		createSet(t, cs, ns, set)
		waitSet(t, cs, ns, "ord", func(s *appsv1.StatefulSet) bool { return s.Status.ReadyReplicas == 2 }, "2 ready")
		if got := podNames(t, cs, ns); !slices.Equal(got, []string{"ord-5", "ord-6"}) {
			t.Errorf("pods %v, want ord-5 and ord-6", got)
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), "data-ord-6", metav1.GetOptions{}); err != nil {
			t.Errorf("claim data-ord-6: %v", err)
		}
	})

	t.Run("claim retention policy deletes claims", func(t *testing.T) {
		ns := newNamespace(t, cs)
		set := newSet("db", 2)
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
		created := createSet(t, cs, ns, set)
		waitSet(t, cs, ns, "db", func(s *appsv1.StatefulSet) bool { return s.Status.ReadyReplicas == 2 }, "2 ready")
		for _, c := range []string{"data-db-0", "data-db-1"} {
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), c, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ref := metav1.GetControllerOf(pvc); ref == nil || ref.UID != created.UID {
				t.Errorf("claim %s: controller %v, want the set", c, ref)
			}
		}
		s.MustKubectl(t, "-n", ns, "scale", "statefulset/db", "--replicas=1")
		waitGone(t, cs, ns, "data-db-1")
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), "data-db-0", metav1.GetOptions{}); err != nil {
			t.Errorf("claim data-db-0 of the remaining pod: %v", err)
		}
		s.MustKubectl(t, "-n", ns, "delete", "statefulset/db")
		waitGone(t, cs, ns, "data-db-0")
	})
}

// hasRevisions reports whether `kubectl rollout history` output lists
// every revision of revs.
func hasRevisions(out string, revs ...string) bool {
	listed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, r := range revs {
		if !listed[r] {
			return false
		}
	}
	return true
}

// waitEvents waits until events of reason about the named object carry
// every message of msgs.
func waitEvents(t *testing.T, cs kubernetes.Interface, ns, kind, name, reason string, msgs ...string) {
	t.Helper()
	var seen []string
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		l, err := cs.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		seen = nil
		for _, e := range l.Items {
			if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason {
				seen = append(seen, e.Message)
			}
		}
		for _, m := range msgs {
			if !slices.Contains(seen, m) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("%s events of %s %s: %v; want %q, have %q", reason, kind, name, err, msgs, seen)
	}
}

// waitGone waits until the claim is deleted (by the garbage collector).
func waitGone(t *testing.T, cs kubernetes.Interface, ns, claim string) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		_, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), claim, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "claim %s/%s deleted", ns, claim)
}
