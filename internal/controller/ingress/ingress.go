// Package ingress is the server-side controller of Havre's Ingresses: it
// writes status.loadBalancer of every Ingress of Havre's classes (the
// InternalIPs of the ready nodes running the ingress proxy, sorted), and
// records a Warning Event once per generation for what the proxies leave
// out (resource backends). The proxies themselves run in every node agent
// (internal/network/ingress) and write nothing.
package ingress

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
	proxy "github.com/havre/havre/internal/network/ingress"
	"github.com/havre/havre/internal/network/ingress/annotations"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// Name of the controller (its row in internal/server/controllers.go).
const Name = "ingress-controller"

// ReasonUnsupportedBackend is the reason of the Warning Event about a
// resource backend.
const ReasonUnsupportedBackend = "UnsupportedBackend"

// Controller writes Ingress status.
type Controller struct {
	client    kubernetes.Interface
	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	nodes     corelisters.NodeLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	warned    map[string]string // ingress key → generation and annotations warned about
	// annotations reads Ingresses' annotations for what the proxies
	// ignore (reported in an UnsupportedAnnotation Event).
	annotations *annotations.Parser
}

// New returns a controller on the factory's Ingress, IngressClass and Node
// informers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	ingInf := factory.Networking().V1().Ingresses()
	classInf := factory.Networking().V1().IngressClasses()
	nodeInf := factory.Core().V1().Nodes()
	c := &Controller{
		client: client, ingresses: ingInf.Lister(), classes: classInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{ingInf.Informer().HasSynced, classInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress"}),
		recorder:    recorder,
		warned:      map[string]string{},
		annotations: annotations.New(annotations.Config{}),
	}
	add := func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(k)
		}
	}
	if _, err := ingInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: add, UpdateFunc: func(_, cur any) { add(cur) },
	}); err != nil {
		return nil, err
	}
	all := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() }, UpdateFunc: func(old, cur any) {
			if n, ok := cur.(*corev1.Node); ok {
				if o, ok := old.(*corev1.Node); ok && serves(o) == serves(n) && apiequality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses) {
					return
				}
			}
			c.enqueueAll()
		}, DeleteFunc: func(any) { c.enqueueAll() },
	}
	for _, inf := range []cache.SharedIndexInformer{classInf.Informer(), nodeInf.Informer()} {
		if _, err := inf.AddEventHandler(all); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run syncs Ingresses with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing ingress status failed; retrying", "ingress",
		controller.Quiet(apierrors.IsConflict))
}

func (c *Controller) enqueueAll() {
	list, _ := c.ingresses.List(labels.Everything())
	for _, ing := range list {
		c.queue.Add(ing.Namespace + "/" + ing.Name)
	}
}

// serves reports whether a node carries ingress traffic: ready,
// schedulable, running the proxy.
func serves(n *corev1.Node) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil || n.Labels[routes.NodeLabel] != "true" {
		return false
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Addresses are the InternalIPs of the nodes serving ingress, sorted.
func Addresses(nodes []*corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		if !serves(n) {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, ip.Unmap())
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ing, err := c.ingresses.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		delete(c.warned, key)
		return nil
	}
	if err != nil {
		return err
	}
	if !proxy.OursFromListers(ing, c.classes) {
		return nil
	}
	c.warn(key, ing)
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	var lb []networkingv1.IngressLoadBalancerIngress
	for _, ip := range Addresses(nodes) {
		lb = append(lb, networkingv1.IngressLoadBalancerIngress{IP: ip.String()})
	}
	if apiequality.Semantic.DeepEqual(lb, ing.Status.LoadBalancer.Ingress) {
		return nil
	}
	updated := ing.DeepCopy()
	updated.Status.LoadBalancer.Ingress = lb
	_, err = c.client.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// warn records what the proxies leave out of an Ingress (resource
// backends, annotations they do not apply), once per generation and set of
// annotations.
func (c *Controller) warn(key string, ing *networkingv1.Ingress) {
	seen := fmt.Sprint(ing.Generation, ing.Annotations) // fmt prints maps sorted
	if c.warned[key] == seen {
		return
	}
	c.warned[key] = seen
	_, _, warnings := c.annotations.Parse(ing)
	c.annotations.Forget(ing.Namespace, ing.Name)
	annotations.RecordWarnings(c.recorder, ing, warnings)
	check := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Resource != nil {
			c.recorder.Event(ing, corev1.EventTypeWarning, ReasonUnsupportedBackend,
				fmt.Sprintf("resource backend %s %q is not supported: only Service backends are served (the path is left out)", b.Resource.Kind, b.Resource.Name))
		}
	}
	check(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			check(&r.HTTP.Paths[i].Backend)
		}
	}
}
