// Package podwatch records the pod events of a namespace in the order of
// the store's revisions, so that end-to-end tests can check what happened
// before what (a pod created only after another became Ready, a pod
// deleted only after another was gone).
package podwatch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Event is one event of the watch.
type Event struct {
	Type watch.EventType
	Pod  *corev1.Pod
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s on %q (phase %s, ready %v, deleting %v)", e.Type, e.Pod.Name, e.Pod.Spec.NodeName,
		e.Pod.Status.Phase, Ready(e.Pod), e.Pod.DeletionTimestamp != nil)
}

// Watch records the events of the pods of a namespace from the moment it
// starts; Initial holds the pods that existed then.
type Watch struct {
	Initial []corev1.Pod

	mu     sync.Mutex
	events []Event
}

// Start lists the pods of ns and records their events until the test ends.
func Start(t testing.TB, cs kubernetes.Interface, ns string) *Watch {
	t.Helper()
	lctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	list, err := cs.CoreV1().Pods(ns).List(lctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	rw, err := watchtools.NewRetryWatcherWithContext(wctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Pods(ns).Watch(c, o)
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &Watch{Initial: list.Items}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range rw.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				w.mu.Lock()
				w.events = append(w.events, Event{ev.Type, p})
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		rw.Stop()
		cancel()
		<-done
	})
	return w
}

// Events returns the events recorded so far.
func (w *Watch) Events() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}

// First returns the index of the first event matching match, or -1.
func (w *Watch) First(match func(Event) bool) int {
	for i, e := range w.Events() {
		if match(e) {
			return i
		}
	}
	return -1
}

// Dump lists the events, one a line, for failure messages.
func (w *Watch) Dump() string {
	var b strings.Builder
	for i, e := range w.Events() {
		fmt.Fprintf(&b, "  %3d %v\n", i, e)
	}
	return b.String()
}

// Added matches the creation of the named pod.
func Added(name string) func(Event) bool {
	return func(e Event) bool { return e.Type == watch.Added && e.Pod.Name == name }
}

// BecameReady matches the named pod reported Ready.
func BecameReady(name string) func(Event) bool {
	return func(e Event) bool { return e.Pod.Name == name && e.Type != watch.Deleted && Ready(e.Pod) }
}

// DeletionStarted matches the first sign of the named pod's deletion.
func DeletionStarted(name string) func(Event) bool {
	return func(e Event) bool {
		return e.Pod.Name == name && (e.Type == watch.Deleted || e.Pod.DeletionTimestamp != nil)
	}
}

// Deleted matches the named pod leaving the store.
func Deleted(name string) func(Event) bool {
	return func(e Event) bool { return e.Type == watch.Deleted && e.Pod.Name == name }
}

// Ready reports the pod's Ready condition.
func Ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
