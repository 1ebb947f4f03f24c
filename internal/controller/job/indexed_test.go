package job

import (
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestIntervals(t *testing.T) {
	for _, tc := range []struct {
		prev        string
		completions int
		add         []int
		want        string
		total       int
	}{
		{"", 5, nil, "", 0},
		{"", 5, []int{0, 1, 2}, "0-2", 3},
		{"", 5, []int{3, 4}, "3,4", 2},
		{"1,3-5", 10, []int{2}, "1-5", 5},
		{"1,3-5", 10, []int{0, 7}, "0,1,3-5,7", 6},
		{"0-9", 5, nil, "0-4", 5},
		{"x,2,7-9", 8, nil, "2,7", 2},
	} {
		iv := parseIntervals(tc.prev, tc.completions).with(tc.add)
		if iv.String() != tc.want || iv.total() != tc.total {
			t.Errorf("%q + %v = %q (%d), want %q (%d)", tc.prev, tc.add, iv.String(), iv.total(), tc.want, tc.total)
		}
	}
	iv := parseIntervals("1,3-5", 10)
	for ix, want := range map[int]bool{0: false, 1: true, 2: false, 3: true, 5: true, 6: false} {
		if iv.has(ix) != want {
			t.Errorf("has(%d) = %v", ix, !want)
		}
	}
}

func TestFirstPendingIndexes(t *testing.T) {
	j := newJob("p", new(int32(6)), new(int32(6)), indexed)
	active := []*corev1.Pod{newPod(j, "a", corev1.PodRunning, withIndex("1")), newPod(j, "b", corev1.PodRunning, withIndex("4"))}
	got := firstPendingIndexes(active, parseIntervals("0,2", 6), 3, 6)
	if !slices.Equal(got, []int{3, 5}) {
		t.Errorf("pending %v, want [3 5]", got)
	}
	if got := firstPendingIndexes(nil, nil, 2, 6); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("pending %v, want [0 1]", got)
	}
}

func TestIndexedGenerateName(t *testing.T) {
	long := "a-very-long-job-name-that-goes-on-and-on-and-on-beyond-the-limit"
	if got := indexedGenerateName("job", 7); got != "job-7-" {
		t.Errorf("%q", got)
	}
	if got := indexedGenerateName(long, 12); len(got) != maxGeneratedNameLength || got[len(got)-4:] != "-12-" {
		t.Errorf("%q (%d)", got, len(got))
	}
}

func TestDuplicateIndexPods(t *testing.T) {
	j := newJob("d", new(int32(3)), new(int32(3)), indexed)
	old := newPod(j, "old", corev1.PodRunning, withIndex("0"), func(p *corev1.Pod) { p.Spec.NodeName = "n" })
	pending := newPod(j, "pending", corev1.PodPending, withIndex("0"))
	noIndex := newPod(j, "none", corev1.PodRunning)
	outOfRange := newPod(j, "big", corev1.PodRunning, withIndex("7"))
	rm := podsForRemoval(j, []*corev1.Pod{old, pending, noIndex, outOfRange}, 0)
	var names []string
	for _, p := range rm {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"big", "none", "pending"}) {
		t.Errorf("removed %v", names)
	}
}

func TestMatchPodFailurePolicy(t *testing.T) {
	j := newJob("m", new(int32(1)), new(int32(1)))
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: new("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}},
	}}
	for _, tc := range []struct {
		name       string
		pod        *corev1.Pod
		wantMsg    bool
		wantCount  bool
		wantAction string
	}{
		{"no rule matches", newPod(j, "a", corev1.PodFailed), false, true, ""},
		{"disrupted", newPod(j, "b", corev1.PodFailed, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
		}), false, false, "Ignore"},
		{"exit 42", newPod(j, "c", corev1.PodFailed, withExitCode(42)), true, true, "FailJob"},
		{"exit 42 in another container", newPod(j, "d", corev1.PodFailed, withExitCode(42), func(p *corev1.Pod) { p.Status.ContainerStatuses[0].Name = "side" }), false, true, "Count"},
		{"exit 7", newPod(j, "e", corev1.PodFailed, withExitCode(7)), false, true, "Count"},
	} {
		msg, count, action := matchPodFailurePolicy(policy, tc.pod)
		a := ""
		if action != nil {
			a = string(*action)
		}
		if (msg != nil) != tc.wantMsg || count != tc.wantCount || a != tc.wantAction {
			t.Errorf("%s: message %v, count %v, action %q", tc.name, msg, count, a)
		}
	}
}

func TestBackoffRecord(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	j := newJob("r", new(int32(1)), new(int32(1)))
	failedAt := func(name string, ago time.Duration) *corev1.Pod {
		return newPod(j, name, corev1.PodFailed, func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(testNow.Add(-ago))
		})
	}
	s := newBackoffStore()
	r := s.next("k", nil, []*corev1.Pod{failedAt("a", 3*time.Second), failedAt("b", 2*time.Second)})
	if r.failuresAfterLastSuccess != 2 {
		t.Fatalf("failures %d", r.failuresAfterLastSuccess)
	}
	// Two failures: 20s from the last one, 2s ago.
	if got := r.remaining(clk, DefaultPodFailureBackoff, MaxPodFailureBackoff); got != 18*time.Second {
		t.Errorf("remaining %v, want 18s", got)
	}
	s.update("k", r)
	succeeded := newPod(j, "ok", corev1.PodSucceeded, func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(testNow.Add(-time.Second))
	})
	if r := s.next("k", []*corev1.Pod{succeeded}, nil); r.failuresAfterLastSuccess != 0 || r.remaining(clk, DefaultPodFailureBackoff, MaxPodFailureBackoff) != 0 {
		t.Errorf("after a success: %+v", r)
	}
	many := backoffRecord{failuresAfterLastSuccess: 30, lastFailureTime: &testNow}
	if got := many.remaining(clk, DefaultPodFailureBackoff, MaxPodFailureBackoff); got != MaxPodFailureBackoff {
		t.Errorf("capped remaining %v", got)
	}
}
