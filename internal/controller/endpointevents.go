package controller

import (
	discoveryv1 "k8s.io/api/discovery/v1"
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
func EndpointSliceHandlers(managed func(*discoveryv1.EndpointSlice) bool, tracker *esutil.EndpointSliceTracker,
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
			if !ok || !managed(s) || !tracker.Has(s) {
				return
			}
			// A deletion the controller did not ask for is repaired.
			if !tracker.HandleDeletion(s) {
				queue(s)
			}
		},
	}
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
