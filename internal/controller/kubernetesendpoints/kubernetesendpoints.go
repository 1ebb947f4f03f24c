//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

// Package kubernetesendpoints keeps the endpoints of the default/kubernetes
// Service, as kube-apiserver's endpoint reconciler does: an Endpoints
// object and an EndpointSlice, both named kubernetes, listing every API
// server's advertise address with the port named https (TCP). The Endpoints
// carry endpointslice.kubernetes.io/skip-mirror: "true" so that the mirroring
// controller leaves them to this reconciler; the slice carries only
// kubernetes.io/service-name: kubernetes, as upstream's.
//
// Whatever else edits or deletes them is undone. It never writes the
// Service itself (the API server creates it), nor any other object; other
// EndpointSlices labelled for the kubernetes Service are deleted, as
// upstream does.
package kubernetesendpoints

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

const (
	// Name is the name of the Service, Endpoints and EndpointSlice.
	Name = "kubernetes"
	// PortName is the name of the endpoints' port.
	PortName = "https"
	// DefaultPort is the port when none is given.
	DefaultPort = 6443

	key = metav1.NamespaceDefault + "/" + Name
)

// Reconciler keeps the default/kubernetes Endpoints and EndpointSlice.
type Reconciler struct {
	client      kubernetes.Interface
	epLister    corelisters.EndpointsLister
	sliceLister discoverylisters.EndpointSliceLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	addresses   []string
	addrType    discoveryv1.AddressType
	port        int32
}

// New returns a reconciler writing addresses (the API servers' advertise
// addresses, all of one IP family) and port (0: 6443), on the factory's
// Endpoints and EndpointSlice informers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, addresses []string, port int32) (*Reconciler, error) {
	if len(addresses) == 0 {
		return nil, fmt.Errorf("no API server address to publish: give --advertise-address")
	}
	if port == 0 {
		port = DefaultPort
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("API server port %d is not a port (1-65535)", port)
	}
	var addrs []netip.Addr
	for _, a := range addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("API server advertise address %q is not a usable IP address: give the address other nodes reach the API server on", a)
		}
		ip = ip.Unmap()
		if len(addrs) > 0 && ip.Is4() != addrs[0].Is4() {
			return nil, fmt.Errorf("API server addresses %v mix IPv4 and IPv6: give addresses of one family", addresses)
		}
		addrs = append(addrs, ip)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	r := &Reconciler{
		client:   client,
		addrType: discoveryv1.AddressTypeIPv4,
		port:     port,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubernetes_endpoints"}),
	}
	if addrs[0].Is6() {
		r.addrType = discoveryv1.AddressTypeIPv6
	}
	for _, a := range addrs {
		r.addresses = append(r.addresses, a.String())
	}
	epInf := factory.Core().V1().Endpoints()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	r.epLister, r.sliceLister = epInf.Lister(), sliceInf.Lister()
	r.synced = []cache.InformerSynced{epInf.Informer().HasSynced, sliceInf.Informer().HasSynced}
	ours := func(obj any) bool {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		m, ok := obj.(metav1.Object)
		if !ok || m.GetNamespace() != metav1.NamespaceDefault {
			return false
		}
		return m.GetName() == Name || m.GetLabels()[discoveryv1.LabelServiceName] == Name
	}
	handler := cache.FilteringResourceEventHandler{
		FilterFunc: ours,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { r.queue.Add(key) },
			UpdateFunc: func(any, any) { r.queue.Add(key) },
			DeleteFunc: func(any) { r.queue.Add(key) },
		},
	}
	if _, err := epInf.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	if _, err := sliceInf.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	return r, nil
}

// Run writes the endpoints once the caches have synced, then keeps them
// until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	controller.RunWorkers(ctx, r.queue, r.synced, 1, r.sync, "keeping the kubernetes Service's endpoints failed; retrying", "key",
		controller.AfterSync(func(context.Context) { r.queue.Add(key) }),
		// A write racing the cache is retried without noise.
		controller.Quiet(func(err error) bool { return apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) }))
}

func (r *Reconciler) sync(ctx context.Context, _ string) error {
	if err := r.syncEndpoints(ctx); err != nil {
		return err
	}
	return r.syncSlices(ctx)
}

// Endpoints is the Endpoints object the reconciler keeps.
func (r *Reconciler) Endpoints() *corev1.Endpoints {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{
			Ports: []corev1.EndpointPort{{Name: PortName, Port: r.port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	for _, a := range r.addresses {
		ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: a})
	}
	return ep
}

// EndpointSlice is the EndpointSlice the reconciler keeps.
func (r *Reconciler) EndpointSlice() *discoveryv1.EndpointSlice {
	name, proto, port := PortName, corev1.ProtocolTCP, r.port
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: Name}},
		AddressType: r.addrType,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	for _, a := range r.addresses {
		ready := true
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

func (r *Reconciler) syncEndpoints(ctx context.Context) error {
	want := r.Endpoints()
	client := r.client.CoreV1().Endpoints(metav1.NamespaceDefault)
	current, err := r.epLister.Endpoints(metav1.NamespaceDefault).Get(Name)
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(current.Subsets, want.Subsets) && apiequality.Semantic.DeepEqual(current.Labels, want.Labels) {
		return nil
	}
	slog.Info("resetting the kubernetes Service's Endpoints", "addresses", r.addresses, "port", r.port)
	updated := current.DeepCopy()
	updated.Labels, updated.Subsets = want.Labels, want.Subsets
	_, err = client.Update(ctx, updated, metav1.UpdateOptions{})
	return err
}

func (r *Reconciler) syncSlices(ctx context.Context) error {
	want := r.EndpointSlice()
	client := r.client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	labelled, err := r.sliceLister.EndpointSlices(metav1.NamespaceDefault).List(labels.Set{discoveryv1.LabelServiceName: Name}.AsSelector())
	if err != nil {
		return err
	}
	// Any other slice of the kubernetes Service is not the API servers'.
	for _, s := range labelled {
		if s.Name == Name && s.AddressType == want.AddressType {
			continue
		}
		if err := client.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	current, err := r.sliceLister.EndpointSlices(metav1.NamespaceDefault).Get(Name)
	switch {
	case apierrors.IsNotFound(err):
		_, err = client.Create(ctx, want, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	case current.AddressType != want.AddressType:
		// Deleted above (the address type cannot change); created when
		// the deletion is seen.
		return nil
	}
	if apiequality.Semantic.DeepEqual(current.Endpoints, want.Endpoints) &&
		apiequality.Semantic.DeepEqual(current.Ports, want.Ports) &&
		apiequality.Semantic.DeepEqual(current.Labels, want.Labels) {
		return nil
	}
	slog.Info("resetting the kubernetes Service's EndpointSlice", "addresses", r.addresses, "port", r.port)
	updated := current.DeepCopy()
	updated.Labels, updated.Endpoints, updated.Ports = want.Labels, want.Endpoints, want.Ports
	_, err = client.Update(ctx, updated, metav1.UpdateOptions{})
	return err
}
