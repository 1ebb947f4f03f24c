// Package namespace is the namespace controller: when a namespace is being
// deleted it deletes everything in it, then releases the namespace by
// removing the "kubernetes" finalizer, as kube-controller-manager's
// namespace controller does.
//
// It is a client of the API only; it never touches the store.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// Controller finalizes terminating namespaces.
type Controller struct {
	client    kubernetes.Interface
	dynamic   dynamic.Interface
	resources []schema.GroupVersionResource
	// extra, when set, returns resources served now beyond resources
	// (custom resources).
	extra  func(ctx context.Context) ([]schema.GroupVersionResource, error)
	lister cache.Indexer
	queue  workqueue.TypedRateLimitingInterface[string]
	synced cache.InformerSynced
}

// New returns a controller that empties namespaces of the given namespaced
// resources before releasing them.
func New(client kubernetes.Interface, dyn dynamic.Interface, factory informers.SharedInformerFactory,
	namespaced []schema.GroupVersionResource) *Controller {
	inf := factory.Core().V1().Namespaces().Informer()
	c := &Controller{
		client: client, dynamic: dyn, resources: namespaced, lister: inf.GetIndexer(), synced: inf.HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// SetExtraResources makes the controller also empty namespaces of the
// resources fn returns at each sync (custom resources, which come and go).
func (c *Controller) SetExtraResources(fn func(ctx context.Context) ([]schema.GroupVersionResource, error)) {
	c.extra = fn
}

// Run processes namespaces until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, []cache.InformerSynced{c.synced}, workers, c.syncOrRemaining,
		"namespace cleanup failed; retrying", "namespace",
		controller.Quiet(func(err error) bool { return errors.Is(err, errRemaining) }))
}

// errRemaining is what syncOrRemaining returns while a namespace's content
// is still going away (graceful deletion, finalizers): the namespace is
// looked at again shortly, backing off, without a warning.
var errRemaining = errors.New("namespace content remaining")

// syncOrRemaining is sync, with remaining content reported as errRemaining.
func (c *Controller) syncOrRemaining(ctx context.Context, name string) error {
	remaining, err := c.sync(ctx, name)
	if err == nil && remaining {
		return errRemaining
	}
	return err
}

// sync deletes the namespace's content; remaining reports whether objects
// are still there.
func (c *Controller) sync(ctx context.Context, name string) (remaining bool, err error) {
	obj, exists, err := c.lister.GetByKey(name)
	if err != nil || !exists {
		return false, err
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp == nil || !hasFinalizer(ns) {
		return false, nil
	}
	resources := c.resources
	if c.extra != nil {
		extra, err := c.extra(ctx)
		if err != nil {
			return false, fmt.Errorf("listing custom resources: %w", err)
		}
		resources = append(slices.Clone(resources), extra...)
	}
	for _, gvr := range resources {
		res := c.dynamic.Resource(gvr).Namespace(name)
		err := res.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
			return false, fmt.Errorf("deleting %s: %w", gvr.Resource, err)
		}
		list, err := res.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, fmt.Errorf("listing %s: %w", gvr.Resource, err)
		}
		if len(list.Items) > 0 {
			remaining = true
		}
	}
	if remaining {
		return true, nil
	}
	fresh, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var keep []corev1.FinalizerName
	for _, f := range fresh.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			keep = append(keep, f)
		}
	}
	fresh.Spec.Finalizers = keep
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, fresh, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

func hasFinalizer(ns *corev1.Namespace) bool {
	return slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}
