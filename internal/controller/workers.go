package controller

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// An Option changes what RunWorkers or Worker does.
type Option func(*options)

type options struct {
	afterSync func(context.Context)
	quiet     func(error) bool
}

// AfterSync has RunWorkers call f once the caches have synced, before it
// starts its workers (f runs on RunWorkers' goroutine: it starts any loop of
// its own in a goroutine). Worker ignores it.
func AfterSync(f func(context.Context)) Option {
	return func(o *options) { o.afterSync = f }
}

// Quiet has a failed sync whose error quiet reports true for requeued
// without being logged.
func Quiet(quiet func(error) bool) Option {
	return func(o *options) { o.quiet = quiet }
}

// RunWorkers waits for the caches to sync, then runs workers goroutines that
// take keys from queue and pass them to sync (see Worker) until ctx is done;
// it shuts the queue down when it returns. It is the Run of a controller
// with one queue.
func RunWorkers[T comparable](ctx context.Context, queue workqueue.TypedRateLimitingInterface[T],
	synced []cache.InformerSynced, workers int, sync func(context.Context, T) error, msg, keyAttr string,
	opts ...Option) {
	defer queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	o := newOptions(opts)
	if o.afterSync != nil {
		o.afterSync(ctx)
	}
	worker := newWorker(queue, sync, msg, keyAttr, o)
	for range workers {
		go wait.UntilWithContext(ctx, worker, time.Second)
	}
	<-ctx.Done()
}

// Worker returns a worker for wait.UntilWithContext: it takes keys from
// queue and passes them to sync until the queue shuts down. A failed sync is
// logged with msg (slog.Warn, attributes keyAttr=key and "err") and the key
// requeued rate-limited; a successful one has the key forgotten.
func Worker[T comparable](queue workqueue.TypedRateLimitingInterface[T], sync func(context.Context, T) error,
	msg, keyAttr string, opts ...Option) func(context.Context) {
	return newWorker(queue, sync, msg, keyAttr, newOptions(opts))
}

func newOptions(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

func newWorker[T comparable](queue workqueue.TypedRateLimitingInterface[T], sync func(context.Context, T) error,
	msg, keyAttr string, o *options) func(context.Context) {
	processNext := func(ctx context.Context) bool {
		key, quit := queue.Get()
		if quit {
			return false
		}
		defer queue.Done(key)
		if err := sync(ctx, key); err != nil {
			if o.quiet == nil || !o.quiet(err) {
				slog.Warn(msg, keyAttr, key, "err", err)
			}
			queue.AddRateLimited(key)
			return true
		}
		queue.Forget(key)
		return true
	}
	return func(ctx context.Context) {
		for processNext(ctx) {
		}
	}
}
