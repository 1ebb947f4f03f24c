// Package apiserviceavailability keeps the Available condition of
// APIServices, as kube-aggregator's local and remote availability
// controllers: local APIServices are Available (Local); those backed by a
// Service are checked for the Service (ServiceNotFound), its port
// (ServicePortError), ready endpoints (EndpointsNotFound,
// MissingEndpoints) and a discovery request to the backend
// (FailedDiscoveryCheck), and are Available (Passed) when all pass.
package apiserviceavailability

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	proxyutil "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	aggregatorinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions"
	apiservicelisters "k8s.io/kube-aggregator/pkg/client/listers/apiregistration/v1"

	"github.com/havre/havre/internal/controller"
)

// Name is the controller's name in --controllers.
const Name = "apiservice-availability"

// resync is how often every APIService is checked again, as upstream's
// 30-second resync.
const resync = 30 * time.Second

// DiscoveryCheck asks the backend of an APIService for its discovery
// document; nil means it answered.
type DiscoveryCheck func(ctx context.Context, api *apiregistrationv1.APIService) error

// Controller keeps the Available condition.
type Controller struct {
	client   aggregatorclient.Interface
	apis     apiservicelisters.APIServiceLister
	services corelisters.ServiceLister
	slices   proxyutil.EndpointSliceGetter
	check    DiscoveryCheck
	synced   []cache.InformerSynced
	factory  aggregatorinformers.SharedInformerFactory
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on the shared informers (Services,
// EndpointSlices) and an APIService informer of its own.
func New(client aggregatorclient.Interface, shared informers.SharedInformerFactory, check DiscoveryCheck) (*Controller, error) {
	factory := aggregatorinformers.NewSharedInformerFactory(client, resync)
	apiInformer := factory.Apiregistration().V1().APIServices()
	sliceInformer := shared.Discovery().V1().EndpointSlices()
	getter, err := proxyutil.NewEndpointSliceIndexerGetter(sliceInformer)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		client: client, apis: apiInformer.Lister(), services: shared.Core().V1().Services().Lister(),
		slices: getter, check: check, factory: factory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: Name}),
	}
	c.synced = []cache.InformerSynced{apiInformer.Informer().HasSynced, shared.Core().V1().Services().Informer().HasSynced,
		sliceInformer.Informer().HasSynced}
	enqueue := func(obj any) {
		if a, ok := obj.(*apiregistrationv1.APIService); ok {
			c.queue.Add(a.Name)
		}
	}
	if _, err := apiInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	// A Service or its slices changing re-checks the APIServices using it.
	byService := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		var ns, name string
		switch o := obj.(type) {
		case *corev1.Service:
			ns, name = o.Namespace, o.Name
		case *discoveryv1.EndpointSlice:
			ns, name = o.Namespace, o.Labels[discoveryv1.LabelServiceName]
		default:
			return
		}
		all, _ := c.apis.List(labels.Everything())
		for _, a := range all {
			if s := a.Spec.Service; s != nil && s.Namespace == ns && s.Name == name {
				c.queue.Add(a.Name)
			}
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: byService, UpdateFunc: func(_, obj any) { byService(obj) }, DeleteFunc: byService}
	if _, err := shared.Core().V1().Services().Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	if _, err := sliceInformer.Informer().AddEventHandler(h); err != nil {
		return nil, err
	}
	return c, nil
}

// Run starts the APIService informer and the workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.factory.Start(ctx.Done())
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "apiservice availability", "apiservice")
}

func (c *Controller) sync(ctx context.Context, name string) error {
	orig, err := c.apis.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	api := orig.DeepCopy()
	cond, checkErr := c.available(ctx, api)
	helper.SetAPIServiceCondition(api, cond)
	if !apiequality.Semantic.DeepEqual(orig.Status, api.Status) {
		if old := helper.GetAPIServiceConditionByType(orig, apiregistrationv1.Available); old == nil || old.Status != cond.Status {
			slog.Info("changing APIService availability", "name", name, "status", cond.Status, "reason", cond.Reason, "message", cond.Message)
		}
		if _, err := c.client.ApiregistrationV1().APIServices().UpdateStatus(ctx, api, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	if checkErr != nil {
		// Retried with back-off, as upstream forces a requeue.
		return checkErr
	}
	if api.Spec.Service != nil {
		c.queue.AddAfter(name, resync)
	}
	return nil
}

// available is the Available condition of api now; the error asks for a
// retry (a failed discovery check).
func (c *Controller) available(ctx context.Context, api *apiregistrationv1.APIService) (apiregistrationv1.APIServiceCondition, error) {
	cond := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue,
		LastTransitionTime: metav1.Now()}
	ref := api.Spec.Service
	if ref == nil {
		return helper.NewLocalAvailableAPIServiceCondition(), nil
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	not := func(reason, msg string, args ...any) (apiregistrationv1.APIServiceCondition, error) {
		cond.Status, cond.Reason, cond.Message = apiregistrationv1.ConditionFalse, reason, fmt.Sprintf(msg, args...)
		return cond, nil
	}
	svc, err := c.services.Services(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		return not("ServiceNotFound", "service/%s in %q is not present", ref.Name, ref.Namespace)
	} else if err != nil {
		cond.Status, cond.Reason = apiregistrationv1.ConditionUnknown, "ServiceAccessError"
		cond.Message = fmt.Sprintf("service/%s in %q cannot be checked due to: %v", ref.Name, ref.Namespace, err)
		return cond, nil
	}
	if svc.Spec.Type == corev1.ServiceTypeClusterIP {
		portName, found := "", false
		for _, p := range svc.Spec.Ports {
			if p.Port == port {
				portName, found = p.Name, true
				break
			}
		}
		if !found {
			return not("ServicePortError", "service/%s in %q is not listening on port %d", ref.Name, ref.Namespace, port)
		}
		slices, err := c.slices.GetEndpointSlices(ref.Namespace, ref.Name)
		if err != nil {
			cond.Status, cond.Reason = apiregistrationv1.ConditionUnknown, "EndpointsAccessError"
			cond.Message = fmt.Sprintf("service/%s in %q cannot be checked due to: %v", ref.Name, ref.Namespace, err)
			return cond, nil
		}
		if len(slices) == 0 {
			return not("EndpointsNotFound", "cannot find endpointslices for service/%s in %q", ref.Name, ref.Namespace)
		}
		if !hasAvailableEndpoint(portName, slices) {
			return not("MissingEndpoints", "endpointslices for service/%s in %q have no addresses with port name %q", ref.Name, ref.Namespace, portName)
		}
	}
	if c.check != nil {
		if err := c.check(ctx, api); err != nil {
			cond.Status, cond.Reason, cond.Message = apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck", err.Error()
			return cond, err
		}
	}
	cond.Reason, cond.Message = "Passed", "all checks passed"
	return cond, nil
}

func hasAvailableEndpoint(portName string, es []*discoveryv1.EndpointSlice) bool {
	return slices.ContainsFunc(es, func(s *discoveryv1.EndpointSlice) bool {
		if !slices.ContainsFunc(s.Endpoints, func(e discoveryv1.Endpoint) bool {
			return e.Conditions.Ready == nil || *e.Conditions.Ready
		}) {
			return false
		}
		return slices.ContainsFunc(s.Ports, func(p discoveryv1.EndpointPort) bool {
			return p.Name != nil && *p.Name == portName && p.Port != nil
		})
	})
}
