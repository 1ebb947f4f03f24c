// Package servicelb gives LoadBalancer Services an address without a cloud
// or an add-on: every Service of type LoadBalancer with no
// spec.loadBalancerClass (or class havre.io/servicelb) gets, in
// status.loadBalancer.ingress, the addresses of the nodes that serve it —
// each ready, schedulable node's ExternalIP, or its InternalIP when it has
// none; with externalTrafficPolicy Local only the nodes running a ready
// endpoint of the Service — with ipMode VIP, sorted and deduplicated. The
// service proxy then accepts the Service's ports on those addresses.
//
// Since every such Service shares the same node addresses, two of them
// cannot serve one port and protocol: the older Service (by creation time,
// then namespace/name) keeps it; the other gets no ingress, a Warning Event
// and a LoadBalancerPortsError condition naming the Service that holds the
// port, until the conflict goes.
//
// It writes nothing but Service status (and Events), and only when the
// status changes; it leaves alone LoadBalancer Services of other classes.
package servicelb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/controller"
)

const (
	// Class is the loadBalancerClass this controller answers besides none.
	Class = "havre.io/servicelb"
	// ConditionType is the status condition reporting ports this
	// controller could not serve (upstream's LoadBalancerPortsError).
	ConditionType = corev1.LoadBalancerPortsError
	// ReasonPortConflict is the condition's and the Event's reason when
	// another Service holds a port.
	ReasonPortConflict = "PortConflict"
	// ReasonPortsAllocated is the condition's reason once every port is
	// served.
	ReasonPortsAllocated = "PortsAllocated"
)

// Controller fills the load-balancer status of LoadBalancer Services.
type Controller struct {
	client        kubernetes.Interface
	serviceLister corelisters.ServiceLister
	nodeLister    corelisters.NodeLister
	sliceLister   discoverylisters.EndpointSliceLister
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	recorder      record.EventRecorder
	clock         clock.PassiveClock
}

// New returns a controller on the factory's Service, Node and EndpointSlice
// informers, recording Events with recorder.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) (*Controller, error) {
	svcInf := factory.Core().V1().Services()
	nodeInf := factory.Core().V1().Nodes()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:        client,
		serviceLister: svcInf.Lister(),
		nodeLister:    nodeInf.Lister(),
		sliceLister:   sliceInf.Lister(),
		synced:        []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "service_lb"}),
		recorder: recorder,
		clock:    clock.RealClock{},
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.serviceChanged(nil, obj.(*corev1.Service)) },
		UpdateFunc: func(old, cur any) { c.serviceChanged(old.(*corev1.Service), cur.(*corev1.Service)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if svc, ok := obj.(*corev1.Service); ok && Served(svc) {
				// Its ports are free: whoever waited for them is synced.
				c.enqueueAll()
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(old, cur any) {
			if nodeChanged(old.(*corev1.Node), cur.(*corev1.Node)) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(any) { c.enqueueAll() },
	}); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.sliceChanged,
		UpdateFunc: func(_, cur any) { c.sliceChanged(cur) },
		DeleteFunc: c.sliceChanged,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs Services with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing load-balancer status failed; retrying", "service",
		controller.Quiet(apierrors.IsConflict))
}

// Served reports whether this controller serves svc: a LoadBalancer
// Service without a class or of Class.
func Served(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == Class)
}

func key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

func (c *Controller) serviceChanged(old, cur *corev1.Service) {
	c.queue.Add(key(cur))
	// A Service taking or leaving ports may settle or start a conflict.
	if old == nil {
		if Served(cur) {
			c.enqueueAll()
		}
		return
	}
	if (Served(old) || Served(cur)) && (Served(old) != Served(cur) || !samePorts(old, cur)) {
		c.enqueueAll()
	}
}

func samePorts(a, b *corev1.Service) bool {
	return slices.EqualFunc(a.Spec.Ports, b.Spec.Ports, func(x, y corev1.ServicePort) bool {
		return x.Port == y.Port && x.Protocol == y.Protocol
	})
}

func (c *Controller) enqueueAll() {
	list, err := c.serviceLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range list {
		if Served(svc) {
			c.queue.Add(key(svc))
		}
	}
}

func nodeChanged(old, cur *corev1.Node) bool {
	return eligible(old) != eligible(cur) || !apiequality.Semantic.DeepEqual(old.Status.Addresses, cur.Status.Addresses)
}

// sliceChanged queues the slice's Service when its endpoints decide the
// Service's addresses (externalTrafficPolicy Local).
func (c *Controller) sliceChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	svc, err := c.serviceLister.Services(s.Namespace).Get(name)
	if err == nil && Served(svc) && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		c.queue.Add(key(svc))
	}
}

// sync writes the load-balancer status of the Service key names.
func (c *Controller) sync(ctx context.Context, k string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return nil
	}
	svc, err := c.serviceLister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	status := svc.Status.DeepCopy()
	switch {
	case Served(svc):
		holder, port, err := c.portHolder(svc)
		if err != nil {
			return err
		}
		if holder != nil {
			msg := fmt.Sprintf("port %d/%s is already served by LoadBalancer Service %s", port.Port, port.Protocol, key(holder))
			status.LoadBalancer.Ingress = nil
			prev := meta.FindStatusCondition(status.Conditions, ConditionType)
			if prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != msg {
				c.recorder.Event(svc, corev1.EventTypeWarning, ReasonPortConflict, msg)
			}
			c.setCondition(status, metav1.ConditionTrue, ReasonPortConflict, msg, svc.Generation)
			break
		}
		ingress, err := c.ingress(svc)
		if err != nil {
			return err
		}
		status.LoadBalancer.Ingress = ingress
		if meta.FindStatusCondition(status.Conditions, ConditionType) != nil {
			c.setCondition(status, metav1.ConditionFalse, ReasonPortsAllocated, "every port is served", svc.Generation)
		}
	case svc.Spec.Type != corev1.ServiceTypeLoadBalancer:
		// No longer a LoadBalancer: nothing of this controller stays.
		status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&status.Conditions, ConditionType)
	default:
		// Another class: another controller's.
		return nil
	}
	if apiequality.Semantic.DeepEqual(status, &svc.Status) {
		return nil
	}
	updated := svc.DeepCopy()
	updated.Status = *status
	_, err = c.client.CoreV1().Services(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (c *Controller) setCondition(status *corev1.ServiceStatus, s metav1.ConditionStatus, reason, msg string, generation int64) {
	// SetStatusCondition keeps the transition time unless the status flips.
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: ConditionType, Status: s, Reason: reason,
		Message: msg, ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(c.clock.Now())})
}

// portHolder returns, when one of svc's ports is held by an older served
// Service, that Service and the port. Services are admitted oldest first,
// each only if none of its ports is taken: a Service that lost a port holds
// none of its others.
func (c *Controller) portHolder(svc *corev1.Service) (*corev1.Service, corev1.ServicePort, error) {
	all, err := c.serviceLister.List(labels.Everything())
	if err != nil {
		return nil, corev1.ServicePort{}, err
	}
	var served []*corev1.Service
	for _, s := range all {
		if Served(s) {
			served = append(served, s)
		}
	}
	slices.SortFunc(served, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(key(a), key(b))
	})
	type portKey struct {
		port  int32
		proto corev1.Protocol
	}
	taken := map[portKey]*corev1.Service{}
	for _, s := range served {
		var holder *corev1.Service
		var lost corev1.ServicePort
		for _, p := range s.Spec.Ports {
			if h := taken[portKey{p.Port, p.Protocol}]; h != nil {
				holder, lost = h, p
				break
			}
		}
		if key(s) == key(svc) {
			return holder, lost, nil
		}
		if holder == nil {
			for _, p := range s.Spec.Ports {
				taken[portKey{p.Port, p.Protocol}] = s
			}
		}
	}
	return nil, corev1.ServicePort{}, nil
}

// ingress is the addresses of the nodes serving svc.
func (c *Controller) ingress(svc *corev1.Service) ([]corev1.LoadBalancerIngress, error) {
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var local map[string]bool
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		if local, err = c.nodesWithReadyEndpoints(svc); err != nil {
			return nil, err
		}
	}
	families := map[bool]bool{} // is IPv4 → allowed
	for _, f := range svc.Spec.IPFamilies {
		families[f == corev1.IPv4Protocol] = true
	}
	var addrs []netip.Addr
	for _, n := range nodes {
		if !eligible(n) || (local != nil && !local[n.Name]) {
			continue
		}
		a, ok := nodeAddress(n)
		if !ok || (len(families) > 0 && !families[a.Is4()]) {
			continue
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	var out []corev1.LoadBalancerIngress
	for _, a := range addrs {
		vip := corev1.LoadBalancerIPModeVIP
		out = append(out, corev1.LoadBalancerIngress{IP: a.String(), IPMode: &vip})
	}
	return out, nil
}

// nodesWithReadyEndpoints are the nodes running a ready endpoint of svc.
func (c *Controller) nodesWithReadyEndpoints(svc *corev1.Service) (map[string]bool, error) {
	list, err := c.sliceLister.EndpointSlices(svc.Namespace).List(labels.Set{discoveryv1.LabelServiceName: svc.Name}.AsSelector())
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range list {
		for _, e := range s.Endpoints {
			// A nil ready condition means ready.
			if e.NodeName != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				out[*e.NodeName] = true
			}
		}
	}
	return out, nil
}

// eligible reports whether a node may carry load-balancer traffic: ready,
// schedulable, and not excluded by label.
func eligible(n *corev1.Node) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	if _, excluded := n.Labels[corev1.LabelNodeExcludeBalancers]; excluded {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeAddress is the node's first ExternalIP, else its first InternalIP.
func nodeAddress(n *corev1.Node) (netip.Addr, bool) {
	for _, t := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				return ip.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}
