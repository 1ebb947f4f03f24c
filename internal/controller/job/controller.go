// Package job is the Job controller of `havre server`, as
// kube-controller-manager's: it runs a Job's pods until enough of them
// succeed (NonIndexed or Indexed completion), at most spec.parallelism at a
// time, replaces failed pods after an exponential back-off, and fails the
// job past its backoffLimit, its activeDeadlineSeconds or a FailJob rule of
// its podFailurePolicy. Pods carry the batch.kubernetes.io/job-tracking
// finalizer until they are counted in the job's status (through
// status.uncountedTerminatedPods); suspended jobs have no pods.
//
// Finishing is two-step as upstream since 1.31: SuccessCriteriaMet or
// FailureTarget first, then, once no pod is left running or terminating,
// Complete or Failed.
package job

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

// Tunables of upstream's job controller.
const (
	// syncBatchPeriod delays syncs triggered by pod events, so that a
	// burst of them costs one sync.
	syncBatchPeriod = time.Second
	// apiBackoff and maxAPIBackoff bound the retry delay of failed syncs.
	apiBackoff    = time.Second
	maxAPIBackoff = time.Minute
	// maxUncountedPods caps status.uncountedTerminatedPods (about 20 KB).
	maxUncountedPods = 500
	// maxPodCreateDeletePerSync caps the pod writes of one sync.
	maxPodCreateDeletePerSync = 500
	// managedByJobController is spec.managedBy of jobs this controller
	// manages (the default).
	managedByJobController = "kubernetes.io/job-controller"
)

// Options tune the controller; the zero value is upstream's behaviour.
type Options struct {
	// Clock is the controller's clock (default: the real one).
	Clock clock.WithTicker
	// PodFailureBackoff is the delay before a failed pod is replaced, doubled
	// for every further failure (default 10s).
	PodFailureBackoff time.Duration
}

// Controller is the Job controller.
type Controller struct {
	client      kubernetes.Interface
	jobLister   batchlisters.JobLister
	podLister   corelisters.PodLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	orphanQueue workqueue.TypedRateLimitingInterface[string]
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	clock       clock.WithTicker
	batchPeriod time.Duration

	podFailureBackoff    time.Duration
	expectations         *podExpectations
	finalizerExpectation *uidExpectations
	backoff              *backoffStore
}

// New returns a Job controller on the factory's job and pod informers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if opts.PodFailureBackoff <= 0 {
		opts.PodFailureBackoff = DefaultPodFailureBackoff
	}
	broadcaster := record.NewBroadcaster()
	newQueue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](apiBackoff, maxAPIBackoff),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name, Clock: clk})
	}
	jobs := factory.Batch().V1().Jobs()
	pods := factory.Core().V1().Pods()
	c := &Controller{
		client:               client,
		jobLister:            jobs.Lister(),
		podLister:            pods.Lister(),
		synced:               []cache.InformerSynced{jobs.Informer().HasSynced, pods.Informer().HasSynced},
		queue:                newQueue("job"),
		orphanQueue:          newQueue("job_orphan_pod"),
		broadcaster:          broadcaster,
		recorder:             broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "job-controller"}),
		clock:                clk,
		batchPeriod:          syncBatchPeriod,
		podFailureBackoff:    opts.PodFailureBackoff,
		expectations:         newPodExpectations(clk),
		finalizerExpectation: newUIDExpectations(),
		backoff:              newBackoffStore(),
	}
	if _, err := jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(obj, 0) },
		UpdateFunc: c.updateJob,
		DeleteFunc: c.deleteJob,
	}); err != nil {
		return nil, fmt.Errorf("adding the Job event handler: %w", err)
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: func(obj any) { c.podGone(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("adding the Pod event handler: %w", err)
	}
	return c, nil
}

// Run syncs jobs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	defer c.orphanQueue.ShutDown()
	orphanWorker := controller.Worker(c.orphanQueue, c.syncOrphanPod,
		"removing the job tracking finalizer of an orphan pod failed; retrying", "pod")
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.syncJob, "syncing job failed; retrying", "job",
		controller.AfterSync(func(ctx context.Context) { go wait.UntilWithContext(ctx, orphanWorker, time.Second) }))
}

// enqueue syncs a job after delay (job events: none; pod events: the batch
// period; back-off: longer).
func (c *Controller) enqueue(obj any, delay time.Duration) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		slog.Warn("couldn't get the key of a job", "err", err)
		return
	}
	c.queue.AddAfter(key, delay)
}

func (c *Controller) enqueueBatched(job *batchv1.Job) { c.enqueue(job, c.batchPeriod) }

func (c *Controller) enqueueOrphan(p *corev1.Pod) {
	if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
		c.orphanQueue.Add(key)
	}
}

func jobKey(job *batchv1.Job) string { return job.Namespace + "/" + job.Name }

func (c *Controller) updateJob(old, cur any) {
	oldJob, curJob := old.(*batchv1.Job), cur.(*batchv1.Job)
	if curJob.Generation == oldJob.Generation {
		c.enqueueBatched(curJob)
	} else {
		c.enqueue(curJob, 0)
	}
	// Backup: a finished job's pods should have no finalizers left.
	if IsFinished(curJob) {
		c.cleanupPodFinalizers(curJob)
	}
	// A changed deadline needs a sync when it passes.
	if curJob.Status.StartTime != nil && curJob.Spec.ActiveDeadlineSeconds != nil {
		if ads := oldJob.Spec.ActiveDeadlineSeconds; ads == nil || *ads != *curJob.Spec.ActiveDeadlineSeconds {
			total := time.Duration(*curJob.Spec.ActiveDeadlineSeconds) * time.Second
			c.queue.AddAfter(jobKey(curJob), total-c.clock.Since(curJob.Status.StartTime.Time))
		}
	}
}

func (c *Controller) deleteJob(obj any) {
	c.enqueue(obj, 0)
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if job, ok := obj.(*batchv1.Job); ok {
		c.cleanupPodFinalizers(job)
	}
}

// cleanupPodFinalizers hands the job's pods that still have the tracking
// finalizer to the orphan worker.
func (c *Controller) cleanupPodFinalizers(job *batchv1.Job) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return
	}
	pods, _ := c.podLister.Pods(job.Namespace).List(selector)
	for _, p := range pods {
		if metav1.IsControlledBy(p, job) && hasTrackingFinalizer(p) {
			c.enqueueOrphan(p)
		}
	}
}

// resolveControllerRef returns the job a controller reference points to.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *batchv1.Job {
	if ref.Kind != jobKind.Kind {
		return nil
	}
	job, err := c.jobLister.Jobs(namespace).Get(ref.Name)
	if err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

// jobsSelecting returns the jobs whose selector matches an orphan pod.
func (c *Controller) jobsSelecting(p *corev1.Pod) []*batchv1.Job {
	jobs, err := c.jobLister.Jobs(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*batchv1.Job
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, j)
		}
	}
	return out
}

func (c *Controller) addPod(obj any) {
	p := obj.(*corev1.Pod)
	if p.DeletionTimestamp != nil {
		// A pod already being deleted (after a restart) is no creation.
		c.podGone(p, false)
		return
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		if job := c.resolveControllerRef(p.Namespace, ref); job != nil {
			c.expectations.creationObserved(jobKey(job))
			c.enqueueBatched(job)
		}
		return
	}
	if hasTrackingFinalizer(p) {
		c.enqueueOrphan(p)
	}
	for _, job := range c.jobsSelecting(p) {
		c.enqueueBatched(job)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*corev1.Pod), cur.(*corev1.Pod)
	if curPod.ResourceVersion == oldPod.ResourceVersion {
		return
	}
	if curPod.DeletionTimestamp != nil {
		// Graceful deletion: replace the pod now, not once it is gone.
		c.podGone(curPod, false)
		return
	}
	finalizerRemoved := !hasTrackingFinalizer(curPod)
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if job := c.resolveControllerRef(oldPod.Namespace, oldRef); job != nil {
			if finalizerRemoved {
				c.finalizerExpectation.observed(jobKey(job), string(curPod.UID))
			}
			c.enqueueBatched(job)
		}
	}
	if curRef != nil {
		if job := c.resolveControllerRef(curPod.Namespace, curRef); job != nil {
			if finalizerRemoved {
				c.finalizerExpectation.observed(jobKey(job), string(curPod.UID))
			}
			c.enqueueBatched(job)
		}
		return
	}
	if hasTrackingFinalizer(curPod) {
		c.enqueueOrphan(curPod)
	}
	if refChanged || !reflect.DeepEqual(curPod.Labels, oldPod.Labels) {
		for _, job := range c.jobsSelecting(curPod) {
			c.enqueueBatched(job)
		}
	}
}

// podGone handles a pod deleted (final) or being deleted.
func (c *Controller) podGone(obj any, final bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(p)
	hasFinalizer := hasTrackingFinalizer(p)
	if ref == nil {
		if hasFinalizer {
			c.enqueueOrphan(p)
		}
		return
	}
	job := c.resolveControllerRef(p.Namespace, ref)
	if job == nil || IsFinished(job) {
		if hasFinalizer {
			c.enqueueOrphan(p)
		}
		return
	}
	key := jobKey(job)
	c.expectations.deletionObserved(key)
	if final || !hasFinalizer {
		c.finalizerExpectation.observed(key, string(p.UID))
	}
	c.enqueueBatched(job)
}

// syncOrphanPod removes the tracking finalizer of a pod no running job
// controls.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	p, err := c.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		if ref.Kind != jobKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
			return nil // not a Job's pod
		}
		job := c.resolveControllerRef(ns, ref)
		if job != nil && (managedElsewhere(job) || !IsFinished(job)) {
			return nil
		}
	}
	if patch := removeFinalizerPatch(p); patch != nil {
		if err := c.patchPod(ctx, ns, name, patch); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// managedElsewhere reports whether spec.managedBy hands the job to another
// controller.
func managedElsewhere(job *batchv1.Job) bool {
	return job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != managedByJobController
}
