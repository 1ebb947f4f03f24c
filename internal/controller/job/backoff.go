package job

import (
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Pod failure back-off of upstream's job controller: a failed pod is
// replaced after 10s, doubled for every further failure since the last
// success, capped at 10 minutes.
const (
	DefaultPodFailureBackoff = 10 * time.Second
	MaxPodFailureBackoff     = 10 * time.Minute
)

// backoffRecord counts a job's pod failures since its last success.
type backoffRecord struct {
	failuresAfterLastSuccess int32
	lastFailureTime          *time.Time
}

// remaining returns how long pod creation must still wait.
func (r backoffRecord) remaining(clk clock.PassiveClock, base, maxDelay time.Duration) time.Duration {
	if r.failuresAfterLastSuccess == 0 || r.lastFailureTime == nil {
		return 0
	}
	delay := base
	for i := int32(1); i < r.failuresAfterLastSuccess; i++ {
		delay *= 2
		if delay >= maxDelay {
			delay = maxDelay
			break
		}
	}
	elapsed := clk.Since(*r.lastFailureTime)
	if delay < elapsed {
		return 0
	}
	return delay - elapsed
}

// backoffStore keeps the back-off records of the jobs, in memory.
type backoffStore struct {
	mu      sync.Mutex
	records map[string]backoffRecord
}

func newBackoffStore() *backoffStore { return &backoffStore{records: map[string]backoffRecord{}} }

func (s *backoffStore) update(key string, r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key] = r
}

func (s *backoffStore) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
}

// next returns the record of key updated with pods that finished since the
// last sync.
func (s *backoffStore) next(key string, succeeded, failed []*corev1.Pod) backoffRecord {
	s.mu.Lock()
	r := s.records[key]
	s.mu.Unlock()
	sortByFinishTime(succeeded)
	sortByFinishTime(failed)
	switch {
	case len(failed) == 0 && len(succeeded) == 0:
		return r
	case len(succeeded) == 0:
		r.failuresAfterLastSuccess += int32(len(failed))
		t := finishTime(failed[len(failed)-1])
		r.lastFailureTime = &t
		return r
	}
	// A success resets the count to the failures that came after it.
	r = backoffRecord{}
	lastSuccess := finishTime(succeeded[len(succeeded)-1])
	for i := len(failed) - 1; i >= 0; i-- {
		t := finishTime(failed[i])
		if !t.After(lastSuccess) {
			break
		}
		if r.lastFailureTime == nil {
			r.lastFailureTime = &t
		}
		r.failuresAfterLastSuccess++
	}
	return r
}

func sortByFinishTime(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return finishTime(pods[i]).Before(finishTime(pods[j])) })
}

// finishTime estimates when a pod finished: when its last container
// terminated, else when it stopped being ready, else when it was deleted
// (minus its grace period), else when it was created.
func finishTime(p *corev1.Pod) time.Time {
	if t := containersFinishTime(p); t != nil {
		return *t
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		grace := int64(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		return p.DeletionTimestamp.Add(-time.Duration(grace) * time.Second)
	}
	return p.CreationTimestamp.Time
}

// containersFinishTime is the latest termination of the pod's containers
// (and sidecars), or nil unless all of them terminated.
func containersFinishTime(p *corev1.Pod) *time.Time {
	var latest *time.Time
	consider := func(cs corev1.ContainerStatus) bool {
		t := cs.State.Terminated
		if t == nil || t.FinishedAt.IsZero() {
			return false
		}
		if latest == nil || latest.Before(t.FinishedAt.Time) {
			ft := t.FinishedAt.Time
			latest = &ft
		}
		return true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if !consider(cs) {
			return nil
		}
	}
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if sidecars[cs.Name] && !consider(cs) {
			return nil
		}
	}
	return latest
}
