package replicaset

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRankingOrder checks each rule of the scale-down order: the first pod
// of every pair goes before the second.
func TestRankingOrder(t *testing.T) {
	rs := newRS("rs", 1)
	hourAgo := testNow.Add(-time.Hour)
	cost := func(v string) podOpt {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{PodDeletionCostAnnotation: v} }
	}
	for _, tc := range []struct {
		name                  string
		first, second         *corev1.Pod
		rankFirst, rankSecond int
	}{
		{name: "unscheduled before scheduled", first: newPod(rs, "a"), second: newPod(rs, "b", onNode("n"))},
		{name: "pending before running", first: newPod(rs, "a", onNode("n")), second: newPod(rs, "b", onNode("n"), phase(corev1.PodRunning))},
		{name: "unknown before running", first: newPod(rs, "a", onNode("n"), phase(corev1.PodUnknown)), second: newPod(rs, "b", onNode("n"), phase(corev1.PodRunning))},
		{name: "not ready before ready", first: newPod(rs, "a", onNode("n"), phase(corev1.PodRunning)), second: newPod(rs, "b", running(hourAgo)...)},
		{name: "lower deletion cost first", first: newPod(rs, "a", append(running(hourAgo), cost("-5"))...), second: newPod(rs, "b", running(hourAgo)...)},
		{name: "doubled up first", first: newPod(rs, "a", running(hourAgo)...), second: newPod(rs, "b", running(hourAgo)...), rankFirst: 3, rankSecond: 1},
		{name: "ready more recently first", first: newPod(rs, "a", running(testNow.Add(-time.Second))...), second: newPod(rs, "b", running(hourAgo)...)},
		{name: "more restarts first", first: newPod(rs, "a", append(running(hourAgo), restarts(3))...), second: newPod(rs, "b", running(hourAgo)...)},
		{name: "newer first", first: newPod(rs, "a", created(testNow.Add(-time.Minute))), second: newPod(rs, "b", created(testNow.Add(-24*time.Hour)))},
		{name: "zero creation time first", first: newPod(rs, "a", created(time.Time{})), second: newPod(rs, "b")},
	} {
		r := rankedPods{pods: []*corev1.Pod{tc.first, tc.second}, rank: []int{tc.rankFirst, tc.rankSecond}, now: testNow}
		if !r.Less(0, 1) || r.Less(1, 0) {
			t.Errorf("%s: Less(first, second)=%v Less(second, first)=%v", tc.name, r.Less(0, 1), r.Less(1, 0))
		}
	}
}

// Pods created within the same power-of-two age bucket are alike by age
// (log scale-down): the UID decides.
func TestRankingLogarithmicBuckets(t *testing.T) {
	rs := newRS("rs", 1)
	a := newPod(rs, "a", created(testNow.Add(-70*time.Minute)))
	b := newPod(rs, "b", created(testNow.Add(-65*time.Minute)))
	r := rankedPods{pods: []*corev1.Pod{a, b}, rank: []int{0, 0}, now: testNow}
	if !r.Less(0, 1) { // uid-a < uid-b
		t.Error("same bucket: want UID order")
	}
}

func TestIsPodAvailable(t *testing.T) {
	rs := newRS("rs", 1)
	for _, tc := range []struct {
		pod  *corev1.Pod
		min  int32
		want bool
	}{
		{newPod(rs, "p", running(testNow)...), 0, true},
		{newPod(rs, "p", running(testNow.Add(-5*time.Second))...), 10, false},
		{newPod(rs, "p", running(testNow.Add(-11*time.Second))...), 10, true},
		{newPod(rs, "p", onNode("n"), phase(corev1.PodRunning)), 0, false},
	} {
		if got := IsPodAvailable(tc.pod, tc.min, testNow); got != tc.want {
			t.Errorf("IsPodAvailable(%v, %d) = %v", tc.pod.Status.Conditions, tc.min, got)
		}
	}
}
