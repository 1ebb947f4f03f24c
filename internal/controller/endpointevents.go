package controller

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	esutil "k8s.io/endpointslice/util"
)

// EndpointSliceHandlers are the EndpointSlice event handlers of a
// controller that writes slices (the EndpointSlice and mirroring
// controllers): queue(slice) is asked for the slice's Service when a slice
// the controller manages (managed) changes in a way it did not write
// itself (tracker, k8s.io/endpointslice's record of the controller's own
// writes), when a slice moves between Services or managers, and when a
// slice is deleted that the controller did not delete.
func EndpointSliceHandlers(managed func(*discoveryv1.EndpointSlice) bool, tracker *SliceTracker,
	queue func(*discoveryv1.EndpointSlice)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s := obj.(*discoveryv1.EndpointSlice); managed(s) && tracker.ShouldSync(s) {
				queue(s)
			}
		},
		UpdateFunc: func(old, cur any) {
			o, s := old.(*discoveryv1.EndpointSlice), cur.(*discoveryv1.EndpointSlice)
			// Labels do not change the generation: a slice moved to another
			// Service by its label concerns both Services.
			if o.Labels[discoveryv1.LabelServiceName] != s.Labels[discoveryv1.LabelServiceName] {
				queue(s)
				queue(o)
				return
			}
			if managed(o) != managed(s) || (managed(s) && tracker.ShouldSync(s)) {
				queue(s)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || !managed(s) {
				return
			}
			tracker.gone(s)
			if !tracker.Has(s) {
				return
			}
			// A deletion the controller did not ask for is repaired.
			if !tracker.HandleDeletion(s) {
				queue(s)
			}
		},
	}
}

// SliceTracker is k8s.io/endpointslice's EndpointSliceTracker (the record
// of the generation of each slice a controller wrote, which tells a cache
// that has not seen its own writes yet) remembering the slices the
// informer saw deleted. A controller records its write of a slice after
// the API call returns: when someone else deletes the slice meanwhile, the
// deletion can reach the informer first, and the write recorded after it
// would make the Service's cache look stale for ever. StaleSlices forgets
// the deleted slices of the Service first.
type SliceTracker struct {
	*esutil.EndpointSliceTracker
	mu      sync.Mutex
	deleted map[types.NamespacedName][]*discoveryv1.EndpointSlice // by Service
}

// NewSliceTracker returns an empty SliceTracker.
func NewSliceTracker() *SliceTracker {
	return &SliceTracker{EndpointSliceTracker: esutil.NewEndpointSliceTracker(), deleted: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}}
}

func (t *SliceTracker) gone(s *discoveryv1.EndpointSlice) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := types.NamespacedName{Namespace: s.Namespace, Name: svc}
	t.mu.Lock()
	t.deleted[key] = append(t.deleted[key], s)
	t.mu.Unlock()
}

// StaleSlices is EndpointSliceTracker.StaleSlices once the slices of the
// Service the informer saw deleted are forgotten. The Service's syncs are
// serial, so every write a sync recorded is in before the next one asks.
func (t *SliceTracker) StaleSlices(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) bool {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	gone := t.deleted[key]
	delete(t.deleted, key)
	t.mu.Unlock()
	for _, s := range gone {
		t.HandleDeletion(s)
	}
	return t.EndpointSliceTracker.StaleSlices(svc, slices)
}

// DeleteService forgets a Service.
func (t *SliceTracker) DeleteService(namespace, name string) {
	t.mu.Lock()
	delete(t.deleted, types.NamespacedName{Namespace: namespace, Name: name})
	t.mu.Unlock()
	t.EndpointSliceTracker.DeleteService(namespace, name)
}

// PodServiceHandlers are the Pod event handlers of a controller that
// follows Services' pods (Endpoints, EndpointSlices): queue(key) is asked
// for every Service whose endpoints a pod's add, update or delete may
// change (its labels or what the endpoints show of it).
func PodServiceHandlers(services corelisters.ServiceLister, queue func(key string)) cache.ResourceEventHandlerFuncs {
	changed := func(old, cur any) {
		keys, err := esutil.GetServicesToUpdate(services, esutil.GetPodUpdateProjectionKey(old, cur))
		if err != nil {
			return
		}
		for key := range keys {
			queue(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { changed(nil, obj) },
		UpdateFunc: changed,
		DeleteFunc: func(obj any) { changed(obj, nil) },
	}
}
