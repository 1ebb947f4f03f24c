package replicaset

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodDeletionCostAnnotation ranks pods for scale-down: lower costs go first.
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// rankedPods orders pods from the first to delete to the last, as upstream's
// ActivePodsWithRanks (with LogarithmicScaleDown and PodDeletionCost):
//
//  1. unscheduled < scheduled
//  2. Pending < Unknown < Running
//  3. not ready < ready
//  4. lower pod-deletion-cost < higher
//  5. more related ready pods on the same node < fewer (doubled up first)
//  6. ready for less time < more (in log2 buckets of the time since)
//  7. more container restarts < fewer
//  8. newer < older (in log2 buckets), then by UID
type rankedPods struct {
	pods []*corev1.Pod
	rank []int
	now  time.Time
}

func (s rankedPods) Len() int { return len(s.pods) }

func (s rankedPods) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

var phaseOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func (s rankedPods) Less(i, j int) bool {
	pi, pj := s.pods[i], s.pods[j]
	if (pi.Spec.NodeName == "") != (pj.Spec.NodeName == "") {
		return pi.Spec.NodeName == ""
	}
	if oi, oj := phaseOrdinal[pi.Status.Phase], phaseOrdinal[pj.Status.Phase]; oi != oj {
		return oi < oj
	}
	ri, rj := isPodReady(pi), isPodReady(pj)
	if ri != rj {
		return !ri
	}
	if ci, cj := deletionCost(pi), deletionCost(pj); ci != cj {
		return ci < cj
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if ri && rj {
		ti, tj := readyTime(pi), readyTime(pj)
		if !ti.Equal(tj) {
			if less, decided := s.compareTimes(pi, pj, ti, tj); decided {
				return less
			}
		}
	}
	if res := compareRestarts(pi, pj); res != 0 {
		return res > 0
	}
	ti, tj := pi.CreationTimestamp.Time, pj.CreationTimestamp.Time
	if !ti.Equal(tj) {
		if less, decided := s.compareTimes(pi, pj, ti, tj); decided {
			return less
		}
	}
	return false
}

// compareTimes orders by "later (or zero) first", in log2 buckets of the
// age when both times are known; equal buckets fall back to UIDs.
func (s rankedPods) compareTimes(pi, pj *corev1.Pod, ti, tj time.Time) (less, decided bool) {
	if s.now.IsZero() || ti.IsZero() || tj.IsZero() {
		return afterOrZero(ti, tj), true
	}
	diff := logRank(s.now, ti) - logRank(s.now, tj)
	if diff == 0 {
		return pi.UID < pj.UID, true
	}
	return diff < 0, true
}

func logRank(now, t time.Time) int64 {
	if d := now.Sub(t); d > 0 {
		return int64(math.Log2(float64(d)))
	}
	return -1
}

func afterOrZero(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b)
}

// readyTime is when the pod last became Ready (zero if it is not).
func readyTime(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// compareRestarts is 1 when pi's containers restarted more than pj's
// (regular containers first, then restartable init containers), -1 when
// fewer, 0 when alike.
func compareRestarts(pi, pj *corev1.Pod) int {
	ri, si := maxRestarts(pi)
	rj, sj := maxRestarts(pj)
	switch {
	case ri != rj:
		return cmpSign(ri > rj)
	case si != sj:
		return cmpSign(si > sj)
	}
	return 0
}

func cmpSign(greater bool) int {
	if greater {
		return 1
	}
	return -1
}

func maxRestarts(p *corev1.Pod) (regular, sidecar int32) {
	for _, cs := range p.Status.ContainerStatuses {
		regular = max(regular, cs.RestartCount)
	}
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if sidecars[cs.Name] {
			sidecar = max(sidecar, cs.RestartCount)
		}
	}
	return regular, sidecar
}

// podsToDelete picks the n pods of pods to delete first. related are the
// pods of every ReplicaSet with the same controller: pods sharing a node
// with more of them are deleted first, spreading what stays.
func podsToDelete(pods, related []*corev1.Pod, n int, now time.Time) []*corev1.Pod {
	if n >= len(pods) {
		return pods
	}
	onNode := map[string]int{}
	for _, p := range related {
		if isPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := rankedPods{pods: append([]*corev1.Pod(nil), pods...), rank: make([]int, len(pods)), now: now}
	for i, p := range ranked.pods {
		ranked.rank[i] = onNode[p.Spec.NodeName]
	}
	sort.Sort(ranked)
	return ranked.pods[:n]
}

// isPodActive: neither terminal nor being deleted.
func isPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// isPodTerminating: being deleted but not yet terminal.
func isPodTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func isPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// IsPodAvailable reports whether the pod has been Ready for at least
// minReadySeconds at now, as upstream's podutil.IsPodAvailable.
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !isPodReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	t := readyTime(p)
	min := time.Duration(minReadySeconds) * time.Second
	return !t.IsZero() && t.Add(min).Before(now)
}
