package job

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// trackStatus counts finished pods in the job's status, as upstream's
// trackJobStatusAndRemoveFinalizers:
//
//  1. finished pods still carrying the tracking finalizer are added to
//     status.uncountedTerminatedPods (Indexed jobs: to completedIndexes),
//     and the interim FailureTarget or SuccessCriteriaMet condition is
//     added; the status is written;
//  2. their finalizers are removed;
//  3. the pods whose finalizer is gone move from uncounted to the
//     succeeded and failed counters;
//  4. once nothing is uncounted or terminating, Complete or Failed is set.
func (c *Controller) trackStatus(ctx context.Context, sc *syncCtx, needsFlush bool) error {
	job := sc.job
	indexed := isIndexed(job)
	uncounted := job.Status.UncountedTerminatedPods
	if indexed {
		// Completed indexes are added in order.
		sort.SliceStable(sc.pods, func(i, j int) bool { return completionIndex(sc.pods[i]) < completionIndex(sc.pods[j]) })
	}
	withFinalizer := sets.New[string]()
	for _, p := range sc.pods {
		if hasTrackingFinalizer(p) && !sc.expectedRmFinalizers.Has(string(p.UID)) {
			withFinalizer.Insert(string(p.UID))
		}
	}
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}

	var (
		rmFinalizer []*corev1.Pod
		newIndexes  []int
		capped      bool
	)
	for _, p := range sc.pods {
		uid := string(p.UID)
		if !hasTrackingFinalizer(p) || sc.expectedRmFinalizers.Has(uid) {
			continue // counted in an earlier sync
		}
		failed := isPodFailed(p, job)
		if !canRemoveFinalizer(sc, p, failed) {
			continue
		}
		rmFinalizer = append(rmFinalizer, p)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !sc.uncountedFailed.Has(uid):
			if indexed {
				// The index is enough to never count a success twice.
				if validIndex(job, p) && !sc.prevSucceeded.has(completionIndex(p)) {
					newIndexes = append(newIndexes, completionIndex(p))
					needsFlush = true
				}
			} else if !sc.uncountedSucceeded.Has(uid) {
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
				needsFlush = true
			}
		case failed || (sc.finished != nil && !isSuccessCriteriaMet(sc.finished)):
			// A failing job counts every pod it stops as failed.
			if sc.uncountedFailed.Has(uid) || (indexed && !validIndex(job, p)) {
				break
			}
			if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); count {
				uncounted.Failed = append(uncounted.Failed, p.UID)
				needsFlush = true
			}
		}
		if len(newIndexes)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			// Keep the status small and leave the rest to the next sync
			// (the writes requeue the job).
			capped = true
			break
		}
	}
	if indexed {
		sc.succeededIndexes = sc.succeededIndexes.with(newIndexes)
		completed := sc.succeededIndexes.String()
		if completed != job.Status.CompletedIndexes {
			needsFlush = true
		}
		job.Status.Succeeded = int32(sc.succeededIndexes.total())
		job.Status.CompletedIndexes = completed
	}
	now := c.clock.Now()
	if sc.finished != nil && sc.finished.Type == batchv1.JobFailureTarget {
		job.Status.Conditions = append(job.Status.Conditions, *sc.finished)
		needsFlush = true
		sc.finished = newCondition(batchv1.JobFailed, corev1.ConditionTrue, sc.finished.Reason, sc.finished.Message, now)
	}
	if isSuccessCriteriaMet(sc.finished) {
		if trueCondition(job, batchv1.JobSuccessCriteriaMet) == nil {
			job.Status.Conditions = append(job.Status.Conditions, *sc.finished)
			needsFlush = true
		}
		sc.finished = newCondition(batchv1.JobComplete, corev1.ConditionTrue, sc.finished.Reason, sc.finished.Message, now)
	}

	needsFlush, err := c.flushAndRemoveFinalizers(ctx, sc, rmFinalizer, withFinalizer, needsFlush)
	if err != nil {
		return err
	}
	finished := !capped && c.enactFinished(sc, now)
	if finished {
		needsFlush = true
	}
	if needsFlush {
		if sc.job, err = c.updateStatus(ctx, sc.job); err != nil {
			return fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		if finished {
			c.recordFinished(sc.job, sc.finished)
		}
	}
	return nil
}

// canRemoveFinalizer: a pod is counted once it succeeded or failed, or
// when the whole job is finishing or being deleted.
func canRemoveFinalizer(sc *syncCtx, p *corev1.Pod, failed bool) bool {
	return sc.job.DeletionTimestamp != nil || sc.finished != nil || p.Status.Phase == corev1.PodSucceeded || failed
}

// flushAndRemoveFinalizers writes the status (with the new uncounted pods
// and interim conditions) if needed, removes the finalizers, and moves the
// pods whose finalizer is gone to the counters. It reports whether the
// status still needs writing.
func (c *Controller) flushAndRemoveFinalizers(ctx context.Context, sc *syncCtx, pods []*corev1.Pod, withFinalizer sets.Set[string], needsFlush bool) (bool, error) {
	if needsFlush {
		job, err := c.updateStatus(ctx, sc.job)
		if err != nil {
			return needsFlush, fmt.Errorf("adding uncounted pods to status: %w", err)
		}
		sc.job = job
		c.backoff.update(sc.key, sc.backoff)
		needsFlush = false
	}
	var rmErr error
	if len(pods) > 0 {
		var removed []bool
		removed, rmErr = c.removeFinalizers(ctx, sc.key, pods)
		for i, p := range pods {
			if removed[i] {
				withFinalizer.Delete(string(p.UID))
			}
		}
	}
	if countUncounted(&sc.job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil && needsFlush {
		// Save the partial progress.
		job, err := c.updateStatus(ctx, sc.job)
		if err != nil {
			return needsFlush, fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		sc.job = job
		return false, rmErr
	}
	return needsFlush, rmErr
}

// countUncounted moves the uncounted pods that no longer have the
// finalizer to the succeeded and failed counters, reporting any change.
func countUncounted(st *batchv1.JobStatus, withFinalizer sets.Set[string]) bool {
	u := st.UncountedTerminatedPods
	if u == nil {
		return false
	}
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(string(uid)) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		st.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded, changed = left, true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		st.Failed += int32(len(u.Failed) - len(left))
		u.Failed, changed = left, true
	}
	return changed
}

// removeFinalizers removes the tracking finalizer from pods, reporting
// which removals succeeded (a pod already gone counts as removed).
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) ([]bool, error) {
	uids := make([]string, len(pods))
	for i, p := range pods {
		uids[i] = string(p.UID)
	}
	c.finalizerExpectation.expect(key, uids)
	removed := make([]bool, len(pods))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i, p := range pods {
		wg.Go(func() {
			patch := removeFinalizerPatch(p)
			if patch == nil {
				removed[i] = true
				return
			}
			if err := c.patchPod(ctx, p.Namespace, p.Name, patch); err != nil {
				// No update will show the finalizer removed.
				c.finalizerExpectation.observed(key, string(p.UID))
				if !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("removing tracking finalizer: %w", err))
					mu.Unlock()
					return
				}
			}
			removed[i] = true
		})
	}
	wg.Wait()
	return removed, errors.Join(errs...)
}

// enactFinished sets the Complete or Failed condition once no pod is
// uncounted or terminating, reporting whether it did.
func (c *Controller) enactFinished(sc *syncCtx, now time.Time) bool {
	if sc.finished == nil {
		return false
	}
	job := sc.job
	if u := job.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		return false
	}
	if sc.terminating > 0 {
		return false
	}
	f := sc.finished
	job.Status.Conditions, _ = ensureCondition(job.Status.Conditions, f.Type, f.Status, f.Reason, f.Message, now)
	if f.Type == batchv1.JobComplete {
		t := metav1.NewTime(now)
		job.Status.CompletionTime = &t
	}
	return true
}

// recordFinished records the Event of a finished job.
func (c *Controller) recordFinished(job *batchv1.Job, cond *batchv1.JobCondition) {
	if cond.Type != batchv1.JobComplete {
		c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
		return
	}
	if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
		c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
	}
	c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
}

func (c *Controller) updateStatus(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
}
