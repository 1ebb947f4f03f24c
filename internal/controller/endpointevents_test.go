package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestSliceTrackerDeletedDuringWrite: a controller's update of a slice is
// recorded after the API call returns; the slice deleted by someone else
// meanwhile reaches the informer first. The Service must not look stale
// for ever after.
func TestSliceTrackerDeletedDuringWrite(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	slice := func(gen int64) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", UID: "uid-1", Generation: gen,
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}}
	}
	var queued []string
	tracker := NewSliceTracker()
	h := EndpointSliceHandlers(func(*discoveryv1.EndpointSlice) bool { return true }, tracker,
		func(s *discoveryv1.EndpointSlice) { queued = append(queued, s.Name) })

	tracker.Update(slice(1)) // created by the controller
	// The controller updates it (generation 2 at the API); before it
	// records that, someone deletes the slice and the informer says so.
	h.OnDelete(slice(2))
	if len(queued) != 1 {
		t.Fatalf("the unexpected deletion queued %v, want the Service once", queued)
	}
	tracker.Update(slice(2)) // the controller's late record of its write
	if tracker.StaleSlices(svc, nil) {
		t.Error("the Service's cache looks stale after its slice was deleted: it would never be repaired")
	}

	// A tombstone is handled as the object.
	tracker.Update(slice(3))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-1", Obj: slice(3)})
	tracker.Update(slice(4))
	if tracker.StaleSlices(svc, nil) {
		t.Error("stale after a tombstone's deletion")
	}

	// A slice the cache has not seen yet still makes it stale.
	tracker.Update(slice(5))
	if !tracker.StaleSlices(svc, nil) {
		t.Error("a slice written and not yet in the cache does not make it stale")
	}
}
