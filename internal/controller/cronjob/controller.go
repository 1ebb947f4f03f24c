// Package cronjob is the CronJob controller of `havre server`, as
// kube-controller-manager's (its "v2" controller): at every time of a
// CronJob's schedule (robfig/cron standard syntax, descriptors such as
// @hourly and @every included, in spec.timeZone) it creates a Job named
// "<cronjob>-<scheduled time in minutes>" from the job template, honouring
// startingDeadlineSeconds, the concurrency policy (Allow, Forbid, Replace)
// and suspend; it tracks the jobs in status.active, lastScheduleTime and
// lastSuccessfulTime, and deletes finished jobs beyond the history limits.
package cronjob

import (
	"context"
	"fmt"
	"time"
	_ "time/tzdata" // time zones must resolve even on hosts without tzdata

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

// cronJobKind is the kind of the owner references of the jobs.
var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Controller is the CronJob controller.
type Controller struct {
	client        kubernetes.Interface
	cronJobLister batchlisters.CronJobLister
	jobLister     batchlisters.JobLister
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	broadcaster   record.EventBroadcaster
	recorder      record.EventRecorder
	clock         clock.WithTicker
}

// New returns the controller on the factory's CronJob and Job informers;
// clk may be nil (the real clock).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, clk clock.WithTicker) (*Controller, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	broadcaster := record.NewBroadcaster()
	cronJobs, jobs := factory.Batch().V1().CronJobs(), factory.Batch().V1().Jobs()
	c := &Controller{
		client:        client,
		cronJobLister: cronJobs.Lister(),
		jobLister:     jobs.Lister(),
		synced:        []cache.InformerSynced{cronJobs.Informer().HasSynced, jobs.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob", Clock: clk}),
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cronjob-controller"}),
		clock:       clk,
	}
	if _, err := jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.jobChanged,
		UpdateFunc: func(old, cur any) {
			if old.(*batchv1.Job).ResourceVersion == cur.(*batchv1.Job).ResourceVersion {
				return
			}
			c.jobChanged(old)
			c.jobChanged(cur)
		},
		DeleteFunc: c.jobChanged,
	}); err != nil {
		return nil, fmt.Errorf("adding the Job event handler: %w", err)
	}
	if _, err := cronJobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueAfter(obj, 0) },
		UpdateFunc: c.updateCronJob,
		DeleteFunc: func(obj any) { c.enqueueAfter(obj, 0) },
	}); err != nil {
		return nil, fmt.Errorf("adding the CronJob event handler: %w", err)
	}
	return c, nil
}

// Run syncs CronJobs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.syncAndRequeue, "syncing cronjob failed; retrying", "cronjob")
}

// syncAndRequeue is sync, with the key added back after the delay a
// successful sync asks for (the next schedule).
func (c *Controller) syncAndRequeue(ctx context.Context, key string) error {
	requeueAfter, err := c.sync(ctx, key)
	if err == nil && requeueAfter != nil {
		c.queue.AddAfter(key, *requeueAfter)
	}
	return err
}

func (c *Controller) enqueueAfter(obj any, d time.Duration) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, d)
}

// jobChanged syncs the CronJob controlling a job.
func (c *Controller) jobChanged(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(job)
	if ref == nil || ref.Kind != cronJobKind.Kind {
		return
	}
	cj, err := c.cronJobLister.CronJobs(job.Namespace).Get(ref.Name)
	if err != nil || cj.UID != ref.UID {
		return
	}
	c.enqueueAfter(cj, 0)
}

// updateCronJob requeues a CronJob for its next schedule time when the
// schedule changed, and at once otherwise.
func (c *Controller) updateCronJob(old, cur any) {
	oldCJ, newCJ := old.(*batchv1.CronJob), cur.(*batchv1.CronJob)
	if oldCJ.Spec.Schedule != newCJ.Spec.Schedule || !equalPtr(oldCJ.Spec.TimeZone, newCJ.Spec.TimeZone) {
		sched, err := cron.ParseStandard(formatSchedule(newCJ, nil))
		if err != nil {
			c.recorder.Eventf(newCJ, corev1.EventTypeWarning, "UnParseableCronJobSchedule", "unparseable schedule for cronjob: %s", newCJ.Spec.Schedule)
			return
		}
		c.enqueueAfter(newCJ, nextScheduleTimeDuration(newCJ, c.clock.Now(), sched))
		return
	}
	c.enqueueAfter(cur, 0)
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
