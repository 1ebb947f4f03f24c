package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
)

// syncCtx is the state of one sync of a job.
type syncCtx struct {
	key        string
	job        *batchv1.Job
	pods       []*corev1.Pod
	activePods []*corev1.Pod
	// finished is the condition the sync moves the job towards, if any.
	finished             *batchv1.JobCondition
	succeeded, failed    int32
	ready, terminating   int32
	prevSucceeded        intervals
	succeededIndexes     intervals
	backoff              backoffRecord
	expectedRmFinalizers sets.Set[string]
	uncountedSucceeded   sets.Set[string]
	uncountedFailed      sets.Set[string]
}

// syncJob brings one job's pods and status in line with its spec.
func (c *Controller) syncJob(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	if ns == "" || name == "" {
		return fmt.Errorf("invalid job key %q: either namespace or name is missing", key)
	}
	shared, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		c.finalizerExpectation.forget(key)
		c.backoff.remove(key)
		return nil
	}
	if err != nil {
		return err
	}
	if managedElsewhere(shared) {
		return nil
	}
	if IsFinished(shared) {
		c.backoff.remove(key)
		return nil
	}
	job := shared.DeepCopy()
	if cm := job.Spec.CompletionMode; cm != nil && *cm != batchv1.NonIndexedCompletion && *cm != batchv1.IndexedCompletion {
		c.recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return nil
	}
	if isIndexed(job) && job.Spec.Completions == nil {
		return nil // invalid; the API server refuses it
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}

	// Expectations are read before the pods: a pod arriving in between
	// only defers the sync.
	satisfied := c.expectations.satisfied(key)
	pods, err := c.podsForJob(ctx, job)
	if err != nil {
		return err
	}
	sc := &syncCtx{
		key: key, job: job, pods: pods,
		expectedRmFinalizers: c.finalizerExpectation.uids(key),
		uncountedSucceeded:   uidSet(job.Status.UncountedTerminatedPods.Succeeded),
		uncountedFailed:      uidSet(job.Status.UncountedTerminatedPods.Failed),
	}
	for _, p := range pods {
		if isActive(p) {
			sc.activePods = append(sc.activePods, p)
			if isReady(p) {
				sc.ready++
			}
		}
		if isTerminating(p) {
			sc.terminating++
		}
	}
	active := int32(len(sc.activePods))
	newSucceeded, newFailed := c.newFinishedPods(sc)
	sc.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(sc.uncountedSucceeded.Len())
	sc.failed = job.Status.Failed + int32(countedFailures(job, newFailed)) + int32(sc.uncountedFailed.Len())

	now := c.clock.Now()
	if job.Status.StartTime == nil && !suspended(job) {
		t := metav1.NewTime(now)
		job.Status.StartTime = &t
	}
	sc.backoff = c.backoff.next(key, newSucceeded, newFailed)

	sc.finished = trueCondition(job, batchv1.JobSuccessCriteriaMet)
	if sc.finished == nil {
		if ft := trueCondition(job, batchv1.JobFailureTarget); ft != nil {
			sc.finished = newCondition(batchv1.JobFailed, corev1.ConditionTrue, ft.Reason, ft.Message, now)
		} else if msg := failJobMessage(job, pods); msg != nil {
			sc.finished = failureTarget(batchv1.JobReasonPodFailurePolicy, *msg, now)
		}
	}
	if sc.finished == nil {
		switch {
		case sc.failed > backoffLimit(job) || pastBackoffLimitOnFailure(job, pods):
			sc.finished = failureTarget(batchv1.JobReasonBackoffLimitExceeded, messageBackoffLimit, now)
		case c.pastActiveDeadline(job):
			sc.finished = failureTarget(batchv1.JobReasonDeadlineExceeded, messageDeadlineExceeded, now)
		case job.Spec.ActiveDeadlineSeconds != nil && !suspended(job):
			left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - c.clock.Since(job.Status.StartTime.Time)
			c.queue.AddAfter(key, left)
		}
	}
	if isIndexed(job) {
		sc.prevSucceeded, sc.succeededIndexes = succeededIndexes(job, pods)
		sc.succeeded = int32(sc.succeededIndexes.total())
	}

	var manageErr error
	suspendChanged := false
	if sc.finished != nil {
		deletedReady, deleted, err := c.deleteActivePods(ctx, job, sc.activePods)
		if deleted != active || !satisfied {
			// Pods may remain, or be missing from the cache: not finished
			// yet.
			sc.finished = nil
		}
		active -= deleted
		sc.terminating += deleted
		sc.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			active, manageErr = c.manageJob(ctx, sc)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			// Any success completes the job once nothing runs.
			complete = sc.succeeded > 0 && active == 0
		} else {
			complete = sc.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			sc.finished = successCriteriaMet(now)
		case managed && suspended(job):
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts continuous activity.
				t := metav1.NewTime(now)
				job.Status.StartTime = &t
			}
		}
	}

	needsUpdate := suspendChanged || active != job.Status.Active ||
		job.Status.Ready == nil || *job.Status.Ready != sc.ready ||
		job.Status.Terminating == nil || *job.Status.Terminating != sc.terminating
	job.Status.Active = active
	job.Status.Ready = new(sc.ready)
	job.Status.Terminating = new(sc.terminating)
	if err := c.trackStatus(ctx, sc, needsUpdate); err != nil {
		return fmt.Errorf("tracking status: %w", err)
	}
	return manageErr
}

func uidSet[T ~string](uids []T) sets.Set[string] {
	s := sets.New[string]()
	for _, u := range uids {
		s.Insert(string(u))
	}
	return s
}

func suspended(job *batchv1.Job) bool { return job.Spec.Suspend != nil && *job.Spec.Suspend }

func backoffLimit(job *batchv1.Job) int32 {
	if job.Spec.BackoffLimit == nil {
		return 6
	}
	return *job.Spec.BackoffLimit
}

// onlyReplaceFailedPods: with podReplacementPolicy Failed (implied by a pod
// failure policy) terminating pods are replaced only once they failed.
func onlyReplaceFailedPods(job *batchv1.Job) bool {
	return (job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed) || job.Spec.PodFailurePolicy != nil
}

// isPodFailed: a Failed pod, or (unless only failed pods are replaced) a
// pod deleted before it succeeded.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// newFinishedPods returns the pods that succeeded or failed and are not
// counted yet (they still have the finalizer and are not uncounted).
func (c *Controller) newFinishedPods(sc *syncCtx) (succeeded, failed []*corev1.Pod) {
	for _, p := range sc.pods {
		uid := string(p.UID)
		if !hasTrackingFinalizer(p) || sc.expectedRmFinalizers.Has(uid) {
			continue
		}
		if isIndexed(sc.job) && !validIndex(sc.job, p) {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded && !sc.uncountedSucceeded.Has(uid) {
			succeeded = append(succeeded, p)
		}
		if isPodFailed(p, sc.job) && !sc.uncountedFailed.Has(uid) {
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// countedFailures counts the failures not ignored by the pod failure
// policy.
func countedFailures(job *batchv1.Job, failed []*corev1.Pod) int {
	n := len(failed)
	if job.Spec.PodFailurePolicy != nil {
		for _, p := range failed {
			if _, count, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); !count {
				n--
			}
		}
	}
	return n
}

// failJobMessage returns the message of the first FailJob rule a failed
// pod matches.
func failJobMessage(job *batchv1.Job, pods []*corev1.Pod) *string {
	if job.Spec.PodFailurePolicy == nil {
		return nil
	}
	for _, p := range pods {
		if isPodFailed(p, job) {
			if msg, _, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); msg != nil {
				return msg
			}
		}
	}
	return nil
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure, failures are
// container restarts of the running pods.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	if limit := backoffLimit(job); limit > 0 {
		return restarts >= limit
	}
	return restarts > 0
}

// pastActiveDeadline reports whether a running job outlived
// activeDeadlineSeconds.
func (c *Controller) pastActiveDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || suspended(job) {
		return false
	}
	return c.clock.Since(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

// manageJob creates or deletes pods so that the right number run, and
// returns the number of active pods.
func (c *Controller) manageJob(ctx context.Context, sc *syncCtx) (int32, error) {
	job := sc.job
	active := int32(len(sc.activePods))
	parallelism := int32(1)
	if job.Spec.Parallelism != nil {
		parallelism = *job.Spec.Parallelism
	}

	if suspended(job) {
		rm := podsForRemoval(job, sc.activePods, int(active))
		c.expectations.expect(sc.key, 0, len(rm))
		removedReady, removed, err := c.deleteJobPods(ctx, sc.key, job, rm)
		sc.terminating += removed
		sc.ready -= removedReady
		return active - removed, err
	}

	var want int32
	switch {
	case job.Spec.Completions == nil && sc.succeeded > 0:
		// A success ends the work queue: what runs finishes.
		want = active
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = max(0, min(*job.Spec.Completions-sc.succeeded, parallelism))
	}

	rm := podsForRemoval(job, sc.activePods, int(max(0, active-want)))
	if len(rm) > maxPodCreateDeletePerSync {
		rm = rm[:maxPodCreateDeletePerSync]
	}
	if len(rm) > 0 {
		// Deleting and creating in one sync is never needed: deletions
		// go first.
		c.expectations.expect(sc.key, 0, len(rm))
		removedReady, removed, err := c.deleteJobPods(ctx, sc.key, job, rm)
		sc.terminating += removed
		sc.ready -= removedReady
		return active - removed, err
	}

	var terminating int32
	if onlyReplaceFailedPods(job) {
		terminating = sc.terminating
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if wait := sc.backoff.remaining(c.clock, c.podFailureBackoff, MaxPodFailureBackoff); wait > 0 {
		c.enqueue(job, max(wait, c.batchPeriod))
		return active, nil
	}
	diff = min(diff, maxPodCreateDeletePerSync)
	var indexes []int
	if isIndexed(job) {
		indexes = firstPendingIndexes(sc.activePods, sc.succeededIndexes, int(diff), int(*job.Spec.Completions))
		diff = int32(len(indexes))
	}
	c.expectations.expect(sc.key, int(diff), 0)
	template := job.Spec.Template.DeepCopy()
	if isIndexed(job) {
		addCompletionIndexEnv(template)
	}
	if !slices.Contains(template.Finalizers, batchv1.JobTrackingFinalizer) {
		template.Finalizers = append(template.Finalizers, batchv1.JobTrackingFinalizer)
	}

	// Slow start: batches of 1, 2, 4... stop at the first batch with an
	// error, so that a quota or admission failure does not cost many
	// requests.
	var (
		mu       sync.Mutex
		errs     []error
		created  int32
		creating = diff
	)
	for batch := min(diff, 1); diff > 0; batch = min(2*batch, diff) {
		var wg sync.WaitGroup
		failedBefore := len(errs)
		for range batch {
			index := unknownCompletionIndex
			if len(indexes) > 0 {
				index, indexes = indexes[0], indexes[1:]
			}
			wg.Go(func() {
				t, generateName := template, ""
				if index != unknownCompletionIndex {
					t = template.DeepCopy()
					setCompletionIndex(t, job.Name, index)
					generateName = indexedGenerateName(job.Name, index)
				}
				err := c.createPod(ctx, job, t, generateName)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
					// Every other creation fails the same way.
					c.expectations.creationObserved(sc.key)
				default:
					c.expectations.creationObserved(sc.key)
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		diff -= batch
		if len(errs) > failedBefore && diff > 0 {
			// The pods never attempted are not expected.
			for range diff {
				c.expectations.creationObserved(sc.key)
			}
			break
		}
	}
	if created < creating {
		slog.Debug("created fewer pods than needed", "job", sc.key, "created", created, "wanted", creating)
	}
	return active + created, errors.Join(errs...)
}

// podsForRemoval picks at least n active pods to delete: for Indexed jobs
// also the pods with a duplicate, missing or out-of-range index.
func podsForRemoval(job *batchv1.Job, pods []*corev1.Pod, n int) []*corev1.Pod {
	var rm, keep []*corev1.Pod
	if isIndexed(job) {
		rm, keep = duplicateIndexPods(pods, int(*job.Spec.Completions))
	} else {
		keep = append(keep, pods...)
	}
	if len(rm) < n {
		sortForRemoval(keep)
		rm = append(rm, keep[:n-len(rm)]...)
	}
	return rm
}

// deleteJobPods deletes pods the job no longer needs, removing their
// tracking finalizer first: they do not count as failures. It returns how
// many ready pods and how many pods it deleted.
func (c *Controller) deleteJobPods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	var (
		mu                    sync.Mutex
		errs                  []error
		deleted, deletedReady int32
		wg                    sync.WaitGroup
	)
	for _, p := range pods {
		wg.Go(func() {
			err := func() error {
				if patch := removeFinalizerPatch(p); patch != nil {
					if err := c.patchPod(ctx, p.Namespace, p.Name, patch); err != nil {
						return fmt.Errorf("removing completion finalizer: %w", err)
					}
				}
				return c.deletePod(ctx, job, p.Name)
			}()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// The informer will not observe this deletion.
				c.expectations.deletionObserved(key)
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
					return
				}
			}
			deleted++
			if isReady(p) {
				deletedReady++
			}
		})
	}
	wg.Wait()
	return deletedReady, deleted, errors.Join(errs...)
}

// deleteActivePods deletes the active pods of a finishing job, keeping
// their finalizers: trackStatus counts them and then removes those.
func (c *Controller) deleteActivePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	var (
		mu                    sync.Mutex
		errs                  []error
		deleted, deletedReady int32
		wg                    sync.WaitGroup
	)
	for _, p := range pods {
		wg.Go(func() {
			err := c.deletePod(ctx, job, p.Name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
				return
			}
			deleted++
			if isReady(p) {
				deletedReady++
			}
		})
	}
	wg.Wait()
	return deletedReady, deleted, errors.Join(errs...)
}
