package ingress

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Endpoints are the addresses a proxy sends a Service port's requests to.
type Endpoints interface {
	// Lookup returns the pool of a Service port (by number, or by name
	// when portName is set); found is false when the Service is unknown.
	Lookup(svc types.NamespacedName, port int32, portName string) (pool *Pool, found bool)
}

// Pool is the endpoints of one Service port: its ready endpoints, or,
// when none is ready, those still serving while terminating (as
// kube-proxy does), so that a rolling update never leaves a gap. A
// terminating endpoint leaves the pool at once; requests already sent to
// it finish.
type Pool struct {
	Addrs []string // host:port
	next  atomic.Uint64
}

// Pick returns the next endpoint round robin, skipping those in skip; ""
// when none is left.
func (p *Pool) Pick(skip []string) string {
	if p == nil || len(p.Addrs) == 0 {
		return ""
	}
	n := uint64(len(p.Addrs))
	start := p.next.Add(1)
	for i := uint64(0); i < n; i++ {
		a := p.Addrs[(start+i)%n]
		if !slices.Contains(skip, a) {
			return a
		}
	}
	return ""
}

// service is what the proxy knows of one Service.
type service struct {
	byPort map[int32]*Pool
	byName map[string]*Pool
}

// SliceEndpoints keeps the pools of every Service from the Services and
// EndpointSlices informers, recomputing a Service's pools when its
// Service or one of its slices changes.
type SliceEndpoints struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister

	mu    sync.RWMutex
	state map[types.NamespacedName]*service
	// removed, when set, is called (outside the lock) after endpoints
	// left a Service's pools: the proxy drops its idle connections.
	removed func()
	changed chan struct{}
}

// NewSliceEndpoints registers its handlers on the factory's Service and
// EndpointSlice informers (start the factory afterwards).
func NewSliceEndpoints(factory informers.SharedInformerFactory) *SliceEndpoints {
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	e := &SliceEndpoints{
		services: svcInf.Lister(), slices: sliceInf.Lister(),
		state: map[types.NamespacedName]*service{}, changed: make(chan struct{}, 1),
	}
	svcKey := func(obj any) (types.NamespacedName, bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		switch o := obj.(type) {
		case *corev1.Service:
			return types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, true
		case *discoveryv1.EndpointSlice:
			name := o.Labels[discoveryv1.LabelServiceName]
			return types.NamespacedName{Namespace: o.Namespace, Name: name}, name != ""
		}
		return types.NamespacedName{}, false
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.refreshOf(obj, svcKey) },
		UpdateFunc: func(_, obj any) { e.refreshOf(obj, svcKey) },
		DeleteFunc: func(obj any) { e.refreshOf(obj, svcKey) },
	}
	_, _ = svcInf.Informer().AddEventHandler(h)
	_, _ = sliceInf.Informer().AddEventHandler(h)
	return e
}

// Changed fires after a Service's pools changed (coalesced).
func (e *SliceEndpoints) Changed() <-chan struct{} { return e.changed }

// OnRemoved sets the function called after endpoints left a pool.
func (e *SliceEndpoints) OnRemoved(fn func()) {
	e.mu.Lock()
	e.removed = fn
	e.mu.Unlock()
}

func (e *SliceEndpoints) refreshOf(obj any, key func(any) (types.NamespacedName, bool)) {
	if k, ok := key(obj); ok {
		e.Refresh(k)
	}
}

// Refresh recomputes the pools of one Service.
func (e *SliceEndpoints) Refresh(key types.NamespacedName) {
	svc, err := e.services.Services(key.Namespace).Get(key.Name)
	var next *service
	if err == nil {
		sl, _ := e.slices.EndpointSlices(key.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: key.Name}))
		next = buildService(svc, sl)
	}
	e.mu.Lock()
	prev := e.state[key]
	if next == nil {
		delete(e.state, key)
	} else {
		e.state[key] = next
	}
	removed := e.removed
	e.mu.Unlock()
	if removed != nil && lostAddrs(prev, next) {
		removed()
	}
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// lostAddrs reports whether an address of prev is in no pool of next.
func lostAddrs(prev, next *service) bool {
	if prev == nil {
		return false
	}
	have := map[string]bool{}
	if next != nil {
		for _, p := range next.byPort {
			for _, a := range p.Addrs {
				have[a] = true
			}
		}
	}
	for _, p := range prev.byPort {
		for _, a := range p.Addrs {
			if !have[a] {
				return true
			}
		}
	}
	return false
}

// buildService computes a Service's pools from its slices: the slice port
// named as the Service port gives the target port.
func buildService(svc *corev1.Service, sl []*discoveryv1.EndpointSlice) *service {
	s := &service{byPort: map[int32]*Pool{}, byName: map[string]*Pool{}}
	slices.SortFunc(sl, func(a, b *discoveryv1.EndpointSlice) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		var ready, serving []string
		for _, es := range sl {
			if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
				continue
			}
			var port int32
			found := false
			for _, p := range es.Ports {
				if p.Name != nil && *p.Name == sp.Name && p.Port != nil && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
					port, found = *p.Port, true
					break
				}
			}
			if !found {
				continue
			}
			for _, ep := range es.Endpoints {
				c := ep.Conditions
				isReady := c.Ready == nil || *c.Ready
				isServing := c.Serving != nil && *c.Serving
				if !isReady && !isServing {
					continue
				}
				for _, a := range ep.Addresses {
					hp := net.JoinHostPort(a, strconv.Itoa(int(port)))
					if isReady {
						ready = append(ready, hp)
					} else {
						serving = append(serving, hp)
					}
				}
			}
		}
		addrs := ready
		if len(addrs) == 0 {
			addrs = serving
		}
		p := &Pool{Addrs: dedupe(addrs)}
		s.byPort[sp.Port] = p
		if sp.Name != "" {
			s.byName[sp.Name] = p
		}
	}
	return s
}

func dedupe(a []string) []string {
	slices.Sort(a)
	return slices.Compact(a)
}

// Lookup implements Endpoints.
func (e *SliceEndpoints) Lookup(key types.NamespacedName, port int32, portName string) (*Pool, bool) {
	e.mu.RLock()
	s := e.state[key]
	e.mu.RUnlock()
	if s == nil {
		return nil, false
	}
	if portName != "" {
		return s.byName[portName], true
	}
	return s.byPort[port], true
}
