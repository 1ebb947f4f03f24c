//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

// Package endpointslicemirroring is the EndpointSlice mirroring controller,
// as kube-controller-manager's: for every Service without a selector whose
// Endpoints object was written by hand (or by another controller), it keeps
// EndpointSlices with the same addresses, so that consumers of slices (the
// service proxy, cluster DNS) see them too.
//
// Each subset of the Endpoints (repacked canonically first) becomes one
// slice per address family, holding at most MaxEndpointsPerSubset
// addresses; extra addresses are skipped with a TooManyAddressesToMirror
// Event, invalid IPs with an InvalidIPAddress Event. Slices are labelled
// kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by:
// endpointslicemirroring-controller.k8s.io, carry the Endpoints' other labels
// and annotations (but the last-change trigger time and kubectl's
// last-applied configuration), and are owned by the Endpoints.
//
// It never mirrors Endpoints labelled endpointslice.kubernetes.io/skip-mirror:
// "true" (the API server's own default/kubernetes Endpoints are), Endpoints
// used as leader-election locks, or those of Services with a selector (the
// EndpointSlice controller writes their slices); it never writes Endpoints
// or Services, and deletes only slices it manages.
package endpointslicemirroring

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

const (
	// ControllerName is the managed-by label value of mirrored slices.
	ControllerName = "endpointslicemirroring-controller.k8s.io"
	// MaxEndpointsPerSubset is how many addresses of one Endpoints subset
	// are mirrored (upstream's --mirroring-max-endpoints-per-subset).
	MaxEndpointsPerSubset = 1000

	// Event reasons, as upstream's.
	reasonInvalidIP       = "InvalidIPAddress"
	reasonTooManyToMirror = "TooManyAddressesToMirror"

	leaderElectionAnnotation = "control-plane.alpha.kubernetes.io/leader"

	syncBackOff    = time.Second
	maxSyncBackOff = 100 * time.Second
	staleRetry     = 5 * time.Millisecond
	maxStaleRetry  = time.Second
)

// Controller mirrors Endpoints into EndpointSlices.
type Controller struct {
	client          kubernetes.Interface
	endpointsLister corelisters.EndpointsLister
	sliceLister     discoverylisters.EndpointSliceLister
	serviceLister   corelisters.ServiceLister
	synced          []cache.InformerSynced
	queue           workqueue.TypedRateLimitingInterface[string]
	staleBackoff    workqueue.TypedRateLimiter[string]
	tracker         *controller.SliceTracker
	recorder        record.EventRecorder
	maxPerSubset    int
	batchPeriod     time.Duration
}

// New returns a controller on the factory's Endpoints, EndpointSlice and
// Service informers, recording Events with recorder. Syncs triggered by
// changes to mirrored slices wait batchPeriod (upstream's
// --mirroring-endpointslice-updates-batch-period, 0 by default).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, batchPeriod time.Duration) (*Controller, error) {
	epInf := factory.Core().V1().Endpoints()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	svcInf := factory.Core().V1().Services()
	c := &Controller{
		client:          client,
		endpointsLister: epInf.Lister(),
		sliceLister:     sliceInf.Lister(),
		serviceLister:   svcInf.Lister(),
		synced:          []cache.InformerSynced{epInf.Informer().HasSynced, sliceInf.Informer().HasSynced, svcInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](syncBackOff, maxSyncBackOff),
				&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)}),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint_slice_mirroring"}),
		staleBackoff: workqueue.NewTypedItemExponentialFailureRateLimiter[string](staleRetry, maxStaleRetry),
		tracker:      controller.NewSliceTracker(),
		recorder:     recorder,
		maxPerSubset: MaxEndpointsPerSubset,
		batchPeriod:  batchPeriod,
	}
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if shouldMirror(obj.(*corev1.Endpoints)) {
				c.enqueue(obj)
			}
		},
		UpdateFunc: func(old, cur any) {
			// Also when it stops being mirrored: its slices go.
			if shouldMirror(old.(*corev1.Endpoints)) || shouldMirror(cur.(*corev1.Endpoints)) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if ep, ok := obj.(*corev1.Endpoints); ok && shouldMirror(ep) {
				c.enqueue(ep)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if obj.(*corev1.Service).Spec.Selector == nil {
				c.enqueue(obj)
			}
		},
		UpdateFunc: func(old, cur any) {
			if (old.(*corev1.Service).Spec.Selector == nil) != (cur.(*corev1.Service).Spec.Selector == nil) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if svc, ok := obj.(*corev1.Service); ok && svc.Spec.Selector == nil {
				c.enqueue(svc)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(controller.EndpointSliceHandlers(managed, c.tracker, c.queueForSlice)); err != nil {
		return nil, err
	}
	return c, nil
}

// Run mirrors with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "mirroring endpoints failed; retrying", "endpoints")
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// shouldMirror reports whether ep may be mirrored at all (its Service is
// checked separately).
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep == nil || ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, lock := ep.Annotations[leaderElectionAnnotation]
	return !lock
}

func managed(s *discoveryv1.EndpointSlice) bool {
	return s.Labels[discoveryv1.LabelManagedBy] == ControllerName
}

func (c *Controller) queueForSlice(s *discoveryv1.EndpointSlice) {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	c.queue.AddAfter(s.Namespace+"/"+name, c.batchPeriod)
}

// sync mirrors the Endpoints key names, or removes their mirrored slices
// when they should not be mirrored (any more).
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ep, err := c.endpointsLister.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteMirrored(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if !shouldMirror(ep) {
		return c.deleteMirrored(ctx, ns, name)
	}
	svc, err := c.serviceLister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteMirrored(ctx, ns, name)
	}
	if err != nil {
		return err
	}
	if svc.Spec.Selector != nil {
		return c.deleteMirrored(ctx, ns, name)
	}

	existing, err := c.mirrored(ns, name)
	if err != nil {
		return err
	}
	if c.tracker.StaleSlices(svc, existing) {
		c.queue.AddAfter(key, c.staleBackoff.When(key))
		return nil
	}
	c.staleBackoff.Forget(key)
	return c.reconcile(ctx, ep, existing)
}

// mirrored lists the slices this controller keeps for the Endpoints.
func (c *Controller) mirrored(ns, name string) ([]*discoveryv1.EndpointSlice, error) {
	return c.sliceLister.EndpointSlices(ns).List(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   ControllerName,
	}.AsSelectorPreValidated())
}

func (c *Controller) deleteMirrored(ctx context.Context, ns, name string) error {
	c.tracker.DeleteService(ns, name)
	c.staleBackoff.Forget(ns + "/" + name)
	slices, err := c.mirrored(ns, name)
	if err != nil {
		return err
	}
	var firstErr error
	failed := 0
	for _, s := range slices {
		err := c.client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, s.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		return fmt.Errorf("deleting %d of %d mirrored EndpointSlices of %s/%s: %w", failed, len(slices), ns, name, firstErr)
	}
	return nil
}

func logSkipped(ep *corev1.Endpoints, invalid, tooMany int) {
	if invalid+tooMany > 0 {
		slog.Info("endpoints addresses not mirrored", "endpoints", ep.Namespace+"/"+ep.Name, "invalidIPs", invalid, "overLimit", tooMany)
	}
}
