package statefulset

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestOrderedReadyCreatesPodsInOrder(t *testing.T) {
	h := newHarness(t, withClaims(newSet("web", 3)))
	for i, want := range [][]string{{"web-0"}, {"web-0", "web-1"}, {"web-0", "web-1", "web-2"}} {
		h.mustSync("web")
		h.mustSync("web") // a second sync creates nothing while the new pod is not ready
		if got := h.podNames(); !slices.Equal(got, want) {
			t.Fatalf("step %d: pods %v, want %v", i, got, want)
		}
		h.ready(want[len(want)-1])
	}
	h.syncUntilStable("web", 5)

	set := h.set("web")
	st := set.Status
	if st.Replicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 {
		t.Errorf("status counts = %+v, want 3 of each", st)
	}
	if st.ObservedGeneration != 1 || st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision {
		t.Errorf("status revisions = %q/%q, observedGeneration %d", st.CurrentRevision, st.UpdateRevision, st.ObservedGeneration)
	}
	if st.CollisionCount == nil || *st.CollisionCount != 0 {
		t.Errorf("collisionCount = %v, want 0", st.CollisionCount)
	}

	p := h.pod("web-1")
	for k, v := range map[string]string{
		appsv1.StatefulSetPodNameLabel:  "web-1",
		appsv1.PodIndexLabel:            "1",
		appsv1.StatefulSetRevisionLabel: st.UpdateRevision,
		"app":                           "web",
	} {
		if p.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, p.Labels[k], v)
		}
	}
	if p.Spec.Hostname != "web-1" || p.Spec.Subdomain != "web" {
		t.Errorf("hostname/subdomain = %q/%q", p.Spec.Hostname, p.Spec.Subdomain)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" {
		t.Errorf("controller of the pod = %+v", ref)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Name != "data" || p.Spec.Volumes[0].PersistentVolumeClaim == nil ||
		p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
		t.Errorf("volumes = %+v, want data from claim data-web-1", p.Spec.Volumes)
	}
	for _, name := range []string{"data-web-0", "data-web-1", "data-web-2"} {
		c := h.claim(name)
		if c.Labels["app"] != "web" {
			t.Errorf("claim %s labels = %v", name, c.Labels)
		}
		if len(c.OwnerReferences) != 0 {
			t.Errorf("claim %s owners = %v, want none (Retain)", name, c.OwnerReferences)
		}
	}
	if revs := h.revisions(); len(revs) != 1 || revs[0].Name != st.UpdateRevision || revs[0].Revision != 1 {
		t.Errorf("revisions = %v", revs)
	}
}

func TestParallelCreatesAllPods(t *testing.T) {
	set := newSet("par", 4)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	h := newHarness(t, set)
	h.mustSync("par")
	if got := h.podNames(); len(got) != 4 {
		t.Fatalf("pods = %v, want 4 after one sync", got)
	}
	// Scale down in parallel too: both extra pods go in one sync.
	h.readyAll()
	h.updateSet("par", func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(2)) })
	h.mustSync("par")
	if got := h.podNames(); !slices.Equal(got, []string{"par-0", "par-1"}) {
		t.Fatalf("pods = %v after scaling to 2", got)
	}
}

func TestScaleDownRemovesHighestOrdinalFirst(t *testing.T) {
	h := newHarness(t, newSet("web", 4))
	for range 4 {
		h.mustSync("web")
		h.readyAll()
	}
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(1)) })
	for _, want := range [][]string{{"web-0", "web-1", "web-2"}, {"web-0", "web-1"}, {"web-0"}} {
		h.mustSync("web")
		if got := h.podNames(); !slices.Equal(got, want) {
			t.Fatalf("pods = %v, want %v", got, want)
		}
	}
}

func TestScaleDownWaitsForUnhealthyPredecessor(t *testing.T) {
	h := newHarness(t, newSet("web", 3))
	for range 3 {
		h.mustSync("web")
		h.readyAll()
	}
	// web-0 stops being ready: in OrderedReady mode nothing is removed
	// until it is back.
	p := h.pod("web-0")
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := h.client.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(1)) })
	h.mustSync("web")
	if got := h.podNames(); len(got) != 3 {
		t.Fatalf("pods = %v, want all three while web-0 is unready", got)
	}
	h.ready("web-0")
	h.mustSync("web")
	if got := h.podNames(); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("pods = %v, want web-2 gone", got)
	}
}

func TestOrdinalsStart(t *testing.T) {
	set := newSet("web", 2)
	set.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
	h := newHarness(t, withClaims(set))
	for range 3 {
		h.mustSync("web")
		h.readyAll()
	}
	if got := h.podNames(); !slices.Equal(got, []string{"web-5", "web-6"}) {
		t.Fatalf("pods = %v, want web-5 and web-6", got)
	}
	if got := h.pod("web-6").Labels[appsv1.PodIndexLabel]; got != "6" {
		t.Errorf("pod-index = %q, want 6", got)
	}
	h.claim("data-web-5")
	// Moving the start condemns web-5.
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Ordinals.Start = 6 })
	h.syncUntilStable("web", 10)
	h.readyAll()
	h.syncUntilStable("web", 10)
	if got := h.podNames(); !slices.Equal(got, []string{"web-6", "web-7"}) {
		t.Fatalf("pods = %v, want web-6 and web-7", got)
	}
}

// readySet brings a set of n pods up.
func readySet(t *testing.T, h *harness, name string, n int) {
	t.Helper()
	for range n + 1 {
		h.mustSync(name)
		h.readyAll()
	}
	h.syncUntilStable(name, 5)
	if st := h.set(name).Status; int(st.ReadyReplicas) != n {
		t.Fatalf("%d ready replicas, want %d", st.ReadyReplicas, n)
	}
}

// roll syncs and plays the kubelet until the set stops changing.
func roll(t *testing.T, h *harness, name string) {
	t.Helper()
	for range 20 {
		before := len(h.client.Actions())
		h.mustSync(name)
		wrote := writes(h.client.Actions()[before:])
		if wrote == 0 && h.allReady() {
			return
		}
		h.readyAll()
	}
	t.Fatalf("statefulset %s still rolling", name)
}

func TestRollingUpdateWithPartition(t *testing.T) {
	h := newHarness(t, newSet("web", 3))
	readySet(t, h, "web", 3)
	rev1 := h.set("web").Status.CurrentRevision

	h.updateSet("web", func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Containers[0].Image = "img:2"
		s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(1))
	})
	// The first sync deletes the highest pod only.
	h.mustSync("web")
	if got := h.podNames(); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("pods = %v, want web-2 deleted first", got)
	}
	roll(t, h, "web")

	set := h.set("web")
	st := set.Status
	if st.UpdateRevision == rev1 || st.CurrentRevision != rev1 {
		t.Fatalf("revisions current=%s update=%s, want current %s and a new update", st.CurrentRevision, st.UpdateRevision, rev1)
	}
	if st.UpdatedReplicas != 2 || st.CurrentReplicas != 1 {
		t.Errorf("updated/current = %d/%d, want 2/1", st.UpdatedReplicas, st.CurrentReplicas)
	}
	for name, want := range map[string]string{"web-0": "img:1", "web-1": "img:2", "web-2": "img:2"} {
		p := h.pod(name)
		if got := p.Spec.Containers[0].Image; got != want {
			t.Errorf("%s image = %s, want %s", name, got, want)
		}
	}
	if got := h.pod("web-0").Labels[appsv1.StatefulSetRevisionLabel]; got != rev1 {
		t.Errorf("web-0 revision = %s, want %s", got, rev1)
	}

	// Partition 0 finishes the rollout: the update revision becomes current.
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(0)) })
	roll(t, h, "web")
	st = h.set("web").Status
	if st.CurrentRevision != st.UpdateRevision || st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 {
		t.Errorf("after the rollout: %+v", st)
	}
	if got := h.pod("web-0").Spec.Containers[0].Image; got != "img:2" {
		t.Errorf("web-0 image = %s", got)
	}
	if got := len(h.revisions()); got != 2 {
		t.Errorf("%d revisions, want 2", got)
	}
}

func TestRollingUpdateMaxUnavailable(t *testing.T) {
	set := newSet("web", 4)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(2))
	h := newHarness(t, set)
	readySet(t, h, "web", 4)
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "img:2" })
	h.mustSync("web")
	if got := h.podNames(); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("pods = %v, want the two highest deleted", got)
	}
	// Recreated but not ready: nothing more goes down.
	h.mustSync("web")
	h.mustSync("web")
	if got := h.podNames(); len(got) != 4 {
		t.Fatalf("pods = %v, want 4 (two recreated, two old)", got)
	}
	roll(t, h, "web")
	for _, p := range h.pods() {
		if p.Spec.Containers[0].Image != "img:2" {
			t.Errorf("%s image %s", p.Name, p.Spec.Containers[0].Image)
		}
	}
}

func TestOnDeleteUpdatesOnlyDeletedPods(t *testing.T) {
	set := newSet("web", 2)
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	h := newHarness(t, set)
	readySet(t, h, "web", 2)
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "img:2" })
	h.syncUntilStable("web", 5)
	if got := h.podNames(); len(got) != 2 || h.pod("web-1").Spec.Containers[0].Image != "img:1" {
		t.Fatalf("OnDelete replaced pods by itself: %v", got)
	}
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.mustSync("web")
	if got := h.pod("web-1").Spec.Containers[0].Image; got != "img:2" {
		t.Errorf("recreated web-1 image = %s, want img:2", got)
	}
	if got := h.pod("web-0").Spec.Containers[0].Image; got != "img:1" {
		t.Errorf("web-0 image = %s, want img:1", got)
	}
}

func TestFailedPodIsRecreated(t *testing.T) {
	h := newHarness(t, newSet("web", 1))
	readySet(t, h, "web", 1)
	p := h.pod("web-0")
	uid := p.UID
	p.Status.Phase = corev1.PodFailed
	if _, err := h.client.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.mustSync("web") // deletes it
	h.mustSync("web") // recreates it
	if p := h.pod("web-0"); p.UID == uid || p.Status.Phase != corev1.PodPending {
		t.Errorf("web-0 uid %s phase %s, want a new pending pod", p.UID, p.Status.Phase)
	}
}

func TestRevisionHistoryAndRollback(t *testing.T) {
	set := newSet("web", 1)
	set.Spec.RevisionHistoryLimit = new(int32(1))
	h := newHarness(t, set)
	readySet(t, h, "web", 1)
	for _, img := range []string{"img:2", "img:3"} {
		h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = img })
		roll(t, h, "web")
	}
	revs := h.revisions()
	// img:1 was dropped (limit 1 besides the live revision).
	if len(revs) != 2 || revs[0].Revision != 2 || revs[1].Revision != 3 {
		t.Fatalf("revisions = %v, want 2 and 3", revNumbers(revs))
	}
	rev2 := revs[0].Name
	// Back to img:2: the old revision is renumbered, none is created.
	h.updateSet("web", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "img:2" })
	roll(t, h, "web")
	revs = h.revisions()
	if len(revs) != 2 || revs[1].Name != rev2 || revs[1].Revision != 4 {
		t.Fatalf("revisions = %v (%s last), want %s renumbered 4", revNumbers(revs), revs[len(revs)-1].Name, rev2)
	}
	if st := h.set("web").Status; st.UpdateRevision != rev2 || st.CurrentRevision != rev2 {
		t.Errorf("status revisions %s/%s, want %s", st.CurrentRevision, st.UpdateRevision, rev2)
	}
}

func revNumbers(revs []appsv1.ControllerRevision) []int64 {
	var out []int64
	for _, r := range revs {
		out = append(out, r.Revision)
	}
	return out
}

func TestRetentionPolicy(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		policy                 appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy
		wantSetOwner           bool
		wantScaledDownPodOwner bool
		wantScaledDownSetOwner bool
	}{
		{"retain/retain", appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: retain, WhenScaled: retain}, false, false, false},
		{"delete/retain", appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: del, WhenScaled: retain}, true, false, true},
		{"retain/delete", appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: retain, WhenScaled: del}, false, true, false},
		{"delete/delete", appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: del, WhenScaled: del}, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := withClaims(newSet("db", 2))
			set.Spec.PersistentVolumeClaimRetentionPolicy = &tc.policy
			h := newHarness(t, set)
			readySet(t, h, "db", 2)
			setUID := h.set("db").UID
			for _, name := range []string{"data-db-0", "data-db-1"} {
				if got := hasOwner(h.claim(name), setUID); got != tc.wantSetOwner {
					t.Errorf("%s owned by the set = %v, want %v", name, got, tc.wantSetOwner)
				}
			}
			podUID := h.pod("db-1").UID
			h.updateSet("db", func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(1)) })
			h.mustSync("db")
			if got := h.podNames(); !slices.Equal(got, []string{"db-0"}) {
				t.Fatalf("pods = %v", got)
			}
			c := h.claim("data-db-1")
			if got := hasOwner(c, podUID); got != tc.wantScaledDownPodOwner {
				t.Errorf("scaled-down claim owned by its pod = %v, want %v (%v)", got, tc.wantScaledDownPodOwner, c.OwnerReferences)
			}
			if got := hasOwner(c, setUID); got != tc.wantScaledDownSetOwner {
				t.Errorf("scaled-down claim owned by the set = %v, want %v (%v)", got, tc.wantScaledDownSetOwner, c.OwnerReferences)
			}
			if got := hasOwner(h.claim("data-db-0"), setUID); got != tc.wantSetOwner {
				t.Errorf("data-db-0 owned by the set = %v, want %v", got, tc.wantSetOwner)
			}
		})
	}
}

func hasOwner(c *corev1.PersistentVolumeClaim, uid types.UID) bool {
	for _, r := range c.OwnerReferences {
		if r.UID == uid && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

func TestAdoptsOrphanPodsAndReleasesUnselected(t *testing.T) {
	set := newSet("web", 1)
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", UID: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       set.Spec.Template.Spec,
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	stranger := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "other-0", Namespace: "default", UID: "stranger", Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	h := newHarness(t, set, orphan, stranger)
	h.mustSync("web")
	if ref := metav1.GetControllerOf(h.pod("web-0")); ref == nil || ref.UID != set.UID {
		t.Errorf("web-0 controller = %v, want the set", ref)
	}
	if ref := metav1.GetControllerOf(h.pod("other-0")); ref != nil {
		t.Errorf("other-0 (not named for the set) was adopted: %v", ref)
	}
	// Relabelled out of the selector: released.
	p := h.pod("web-0")
	p.Labels["app"] = "elsewhere"
	if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The set then wants its web-0 back, whose name is taken: the sync
	// fails, as upstream's does, until the pod goes.
	if err := h.sync("web"); !apierrors.IsAlreadyExists(err) {
		t.Errorf("sync = %v, want AlreadyExists for the name web-0", err)
	}
	if ref := metav1.GetControllerOf(h.pod("web-0")); ref != nil {
		t.Errorf("relabelled web-0 still controlled: %v", ref)
	}
}

func TestMinReadySecondsCountsAvailable(t *testing.T) {
	set := newSet("web", 1)
	set.Spec.MinReadySeconds = 30
	h := newHarness(t, set)
	h.mustSync("web")
	h.readyAll()
	h.mustSync("web")
	if st := h.set("web").Status; st.ReadyReplicas != 1 || st.AvailableReplicas != 0 {
		t.Fatalf("ready/available = %d/%d, want 1/0", st.ReadyReplicas, st.AvailableReplicas)
	}
	h.clock = h.clock.Add(31 * time.Second)
	h.mustSync("web")
	if st := h.set("web").Status; st.AvailableReplicas != 1 {
		t.Fatalf("available = %d after minReadySeconds", st.AvailableReplicas)
	}
}
