package admission

import (
	"net/url"

	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// ServiceResolver resolves a Service reference to one of its ready
// endpoints (from its EndpointSlices), as kube-apiserver does for
// webhooks: the server reaches the pod directly, not the cluster IP.
type ServiceResolver struct {
	services corelisters.ServiceLister
	slices   proxy.EndpointSliceGetter
}

// NewServiceResolver returns a resolver over factory's Service and
// EndpointSlice informers.
func NewServiceResolver(factory informers.SharedInformerFactory) (*ServiceResolver, error) {
	slices, err := proxy.NewEndpointSliceListerGetter(factory.Discovery().V1().EndpointSlices().Lister())
	if err != nil {
		return nil, err
	}
	_ = factory.Core().V1().Services().Informer()
	_ = factory.Discovery().V1().EndpointSlices().Informer()
	return &ServiceResolver{services: factory.Core().V1().Services().Lister(), slices: slices}, nil
}

// ResolveEndpoint implements k8s.io/apiserver/pkg/util/webhook.ServiceResolver.
func (r *ServiceResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return proxy.ResolveEndpoint(r.services, r.slices, namespace, name, port)
}
