// Package ttlafterfinished is the TTL-after-finished controller of `havre
// server`, as kube-controller-manager's: it deletes a finished Job (with
// foreground propagation, so its pods go first) ttlSecondsAfterFinished
// after its Complete or Failed condition.
package ttlafterfinished

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

// Controller deletes finished jobs whose TTL expired.
type Controller struct {
	client    kubernetes.Interface
	jobLister batchlisters.JobLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	clock     clock.WithTicker
}

// New returns the controller on the factory's job informer; clk may be nil
// (the real clock).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, clk clock.WithTicker) (*Controller, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	jobs := factory.Batch().V1().Jobs()
	c := &Controller{
		client: client, jobLister: jobs.Lister(), synced: jobs.Informer().HasSynced, clock: clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete", Clock: clk}),
	}
	_, err := jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.consider,
		UpdateFunc: func(_, obj any) { c.consider(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("adding the Job event handler: %w", err)
	}
	return c, nil
}

func (c *Controller) consider(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok || job.DeletionTimestamp != nil || !needsCleanup(job) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(job); err == nil {
		c.queue.Add(key)
	}
}

// Run deletes expired jobs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, []cache.InformerSynced{c.synced}, workers, c.processJob,
		"cleaning up a finished job failed; retrying", "job")
}

// processJob deletes the job if its TTL expired, else requeues it for
// when it does.
func (c *Controller) processJob(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	job, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.processTTL(job); err != nil || expired == nil {
		return err
	}
	// The cached TTL may be stale: decide again on a fresh read.
	fresh, err := c.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.processTTL(fresh); err != nil || expired == nil {
		return err
	}
	policy := metav1.DeletePropagationForeground
	err = c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by another job of that name
	}
	if err == nil {
		slog.Info("deleted a finished job whose TTL expired", "job", key)
	}
	return err
}

// processTTL returns when the job's TTL expired, or nil (requeueing the
// job for the expiry when it is still ahead).
func (c *Controller) processTTL(job *batchv1.Job) (*time.Time, error) {
	if job.DeletionTimestamp != nil || !needsCleanup(job) {
		return nil, nil
	}
	now := c.clock.Now()
	left, expireAt, err := timeLeft(job, now)
	if err != nil {
		return nil, err
	}
	if left <= 0 {
		return &expireAt, nil
	}
	c.queue.AddAfter(job.Namespace+"/"+job.Name, left)
	return nil, nil
}

// needsCleanup: a finished job with a TTL.
func needsCleanup(job *batchv1.Job) bool {
	return job.Spec.TTLSecondsAfterFinished != nil && finishTime(job) != nil
}

// finishTime is when the job's Complete or Failed condition became True,
// or nil while it runs.
func finishTime(job *batchv1.Job) *metav1.Time {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &c.LastTransitionTime
		}
	}
	return nil
}

// timeLeft returns how long until the job expires, and when.
func timeLeft(job *batchv1.Job, now time.Time) (time.Duration, time.Time, error) {
	finishAt := finishTime(job)
	if finishAt == nil || finishAt.IsZero() {
		return 0, time.Time{}, fmt.Errorf("unable to find the time when the Job %s/%s finished", job.Namespace, job.Name)
	}
	if finishAt.After(now) {
		slog.Warn("found a Job finished in the future; this is likely due to time skew in the cluster, and its cleanup will be deferred", "job", job.Namespace+"/"+job.Name)
	}
	expireAt := finishAt.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	return expireAt.Sub(now), expireAt, nil
}
