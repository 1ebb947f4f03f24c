package statefulset

import (
	"context"
	"log/slog"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/havre/havre/internal/controller/history"
)

// maxBatch bounds the concurrent writes of the Parallel policy.
const maxBatch = 500

// update brings the set's pods to its spec and records its status and
// history. pods are the pods the set owns.
func (c *Controller) update(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod) (*appsv1.StatefulSetStatus, error) {
	set = set.DeepCopy()
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, err
	}
	revs, err := c.history.List(set, selector)
	if err != nil {
		return nil, err
	}
	history.SortControllerRevisions(revs)

	current, update, collisionCount, err := c.revisions(ctx, set, revs)
	if err != nil {
		return nil, err
	}
	status, err := c.updatePods(ctx, set, current, update, collisionCount, pods)
	if status != nil {
		if statusErr := c.updateStatus(ctx, set, status); err == nil {
			err = statusErr
		}
	}
	if truncErr := c.truncateHistory(ctx, set, pods, revs, current, update); err == nil {
		err = truncErr
	}
	return status, err
}

// updatePods creates, fixes and deletes pods so that the set has its
// replicas at the right revisions, and returns the status that results.
func (c *Controller) updatePods(ctx context.Context, set *appsv1.StatefulSet, currentRev, updateRev *appsv1.ControllerRevision,
	collisionCount int32, pods []*corev1.Pod) (*appsv1.StatefulSetStatus, error) {
	currentSet, err := applyRevision(set, currentRev)
	if err != nil {
		return nil, err
	}
	updateSet, err := applyRevision(set, updateRev)
	if err != nil {
		return nil, err
	}
	status := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    currentRev.Name,
		UpdateRevision:     updateRev.Name,
		CollisionCount:     &collisionCount,
	}
	now := metav1.NewTime(c.now())
	countReplicas(status, set.Spec.MinReadySeconds, now, currentRev, updateRev, pods)

	// Pods in [start, end] are replicas; the others with an ordinal are
	// condemned; pods without one are ignored.
	start := startOrdinal(set)
	replicas := make([]*corev1.Pod, replicasOf(set))
	var condemned []*corev1.Pod
	for _, p := range pods {
		switch o := ordinalOf(p); {
		case inOrdinalRange(p, set):
			replicas[o-start] = p
		case o >= 0:
			condemned = append(condemned, p)
		}
	}
	for i := range replicas {
		if replicas[i] == nil {
			replicas[i] = newVersionedPod(currentSet, updateSet, currentRev.Name, updateRev.Name, start+i)
		}
	}
	sort.Slice(condemned, func(i, j int) bool { return ordinalOf(condemned[i]) > ordinalOf(condemned[j]) })

	// The first unhealthy pod: lowest replica, else lowest condemned.
	var firstUnhealthy *corev1.Pod
	for _, p := range replicas {
		if !isHealthy(p) {
			firstUnhealthy = p
			break
		}
	}
	for i := len(condemned) - 1; i >= 0 && firstUnhealthy == nil; i-- {
		if !isHealthy(condemned[i]) {
			firstUnhealthy = condemned[i]
		}
	}

	if set.DeletionTimestamp != nil {
		return status, nil
	}
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	recount := func() {
		countReplicas(status, set.Spec.MinReadySeconds, now, currentRev, updateRev, replicas, condemned)
	}

	// Replicas, in ordinal order.
	if stop, err := runForAll(replicas, func(i int) (bool, error) {
		return c.processReplica(ctx, set, updateSet, monotonic, replicas, i, now)
	}, monotonic); stop || err != nil {
		recount()
		return status, err
	}
	// Claims of condemned pods follow the scale-down policy before the pods go.
	if stop, err := runForAll(condemned, func(i int) (bool, error) {
		match, err := c.claimsMatchRetention(updateSet, condemned[i])
		if err != nil || match {
			return err != nil, err
		}
		return false, c.updateClaimsForRetention(ctx, updateSet, condemned[i])
	}, monotonic); stop || err != nil {
		recount()
		return status, err
	}
	// Scale down, highest ordinal first.
	if stop, err := runForAll(condemned, func(i int) (bool, error) {
		return c.processCondemned(ctx, set, firstUnhealthy, monotonic, condemned, i, now)
	}, monotonic); stop || err != nil {
		recount()
		return status, err
	}
	recount()

	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return status, nil // pods are replaced when their users delete them
	}
	return status, c.rollingUpdate(ctx, set, replicas, currentRev, updateRev, status)
}

// processReplica converges one replica; it returns true when, in
// OrderedReady mode, the pods after it must wait.
func (c *Controller) processReplica(ctx context.Context, set, updateSet *appsv1.StatefulSet, monotonic bool, replicas []*corev1.Pod, i int, now metav1.Time) (bool, error) {
	pod := replicas[i]
	// A pod that ended is replaced (once it is gone) whatever its exit code.
	if isFailed(pod) || isSucceeded(pod) {
		if pod.DeletionTimestamp == nil {
			reason, what := "RecreatingFailedPod", "failed"
			if isSucceeded(pod) {
				reason, what = "RecreatingTerminatedPod", "terminated"
			}
			c.recorder.Eventf(set, corev1.EventTypeWarning, reason, "StatefulSet %s/%s is recreating %s Pod %s", set.Namespace, set.Name, what, pod.Name)
			if err := c.deletePod(ctx, set, pod); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if !isCreated(pod) {
		if stale, err := c.claimIsStale(set, pod); err != nil || stale {
			return true, err
		}
		if err := c.createPod(ctx, set, pod); err != nil {
			return true, err
		}
		if monotonic {
			return true, nil
		}
	}
	if isPending(pod) {
		if err := c.createClaims(ctx, set, pod); err != nil {
			return true, err
		}
	}
	if monotonic && (isTerminating(pod) || !isRunningAndReady(pod) || !isRunningAndAvailable(pod, set.Spec.MinReadySeconds, now)) {
		return true, nil
	}
	if !isCreated(pod) {
		return false, nil // just created (Parallel)
	}
	match, err := c.claimsMatchRetention(updateSet, pod)
	if err != nil {
		match = true // the pod may not be fully updated yet
	}
	if identityMatches(set, pod) && storageMatches(set, pod) && match {
		return false, nil
	}
	return false, c.updatePod(ctx, updateSet, pod.DeepCopy())
}

// processCondemned deletes one pod beyond the replicas; in OrderedReady
// mode only when it is healthy or the first unhealthy pod, and one at a
// time.
func (c *Controller) processCondemned(ctx context.Context, set *appsv1.StatefulSet, firstUnhealthy *corev1.Pod, monotonic bool, condemned []*corev1.Pod, i int, now metav1.Time) (bool, error) {
	pod := condemned[i]
	if isTerminating(pod) {
		return monotonic, nil
	}
	if monotonic && pod != firstUnhealthy && (!isRunningAndReady(pod) || !isRunningAndAvailable(pod, set.Spec.MinReadySeconds, now)) {
		return true, nil
	}
	slog.Info("deleting a pod of a statefulset for scale down", "statefulset", set.Namespace+"/"+set.Name, "pod", pod.Name)
	return true, c.deletePod(ctx, set, pod)
}

// rollingUpdate deletes the replicas not at the update revision, highest
// ordinal first and down to the partition, keeping at most maxUnavailable
// replicas unhealthy; the replica loop recreates them at the update
// revision.
func (c *Controller) rollingUpdate(ctx context.Context, set *appsv1.StatefulSet, replicas []*corev1.Pod, currentRev, updateRev *appsv1.ControllerRevision, status *appsv1.StatefulSetStatus) error {
	unavailable := 0
	for _, p := range replicas {
		if !isHealthy(p) {
			unavailable++
		}
	}
	budget := maxUnavailable(set) - unavailable
	for target := len(replicas) - 1; target >= partition(set) && budget > 0; target-- {
		p := replicas[target]
		if podRevision(p) == updateRev.Name || isTerminating(p) {
			continue
		}
		slog.Info("deleting a pod of a statefulset for update", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name, "revision", updateRev.Name)
		if err := c.deletePod(ctx, set, p); err != nil {
			return err
		}
		budget--
		if podRevision(p) == currentRev.Name {
			status.CurrentReplicas--
		}
	}
	return nil
}

// countReplicas fills the replica counts of status from pods.
func countReplicas(status *appsv1.StatefulSetStatus, minReadySeconds int32, now metav1.Time, currentRev, updateRev *appsv1.ControllerRevision, lists ...[]*corev1.Pod) {
	status.Replicas, status.ReadyReplicas, status.AvailableReplicas = 0, 0, 0
	status.CurrentReplicas, status.UpdatedReplicas = 0, 0
	for _, pods := range lists {
		for _, p := range pods {
			if isCreated(p) {
				status.Replicas++
			}
			if isRunningAndReady(p) {
				status.ReadyReplicas++
				if isRunningAndAvailable(p, minReadySeconds, now) {
					status.AvailableReplicas++
				}
			}
			if isCreated(p) && !isTerminating(p) {
				if podRevision(p) == currentRev.Name {
					status.CurrentReplicas++
				}
				if podRevision(p) == updateRev.Name {
					status.UpdatedReplicas++
				}
			}
		}
	}
}

// runForAll runs fn over the pods: in order, stopping at the first that
// asks to (OrderedReady), or all at once in batches doubling from one
// (Parallel), stopping at a batch with errors.
func runForAll(pods []*corev1.Pod, fn func(i int) (bool, error), monotonic bool) (bool, error) {
	if monotonic {
		for i := range pods {
			if stop, err := fn(i); stop || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	next := 0
	for batch := min(1, len(pods)); batch > 0; batch = min(2*batch, len(pods)-next, maxBatch) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for k := range batch {
			wg.Go(func() { _, errs[k] = fn(next + k) })
		}
		wg.Wait()
		next += batch
		if err := utilerrors.NewAggregate(errs); err != nil {
			return true, err
		}
	}
	return false, nil
}
