package netnstest

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// Worker runs functions, one at a time, on one OS thread that stays inside
// a network namespace: for benchmarks whose measured calls must not pay
// for entering the namespace each time.
type Worker struct {
	do   chan func()
	done chan struct{}
}

// NewWorker starts a Worker in ns; it stops when the test ends.
func NewWorker(t testing.TB, ns netns.NsHandle) *Worker {
	w := &Worker{do: make(chan func()), done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			return
		}
		for f := range w.do {
			f()
			w.done <- struct{}{}
		}
		// A thread that cannot go back stays locked and exits with the
		// goroutine, never handed to other goroutines.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	t.Cleanup(func() { close(w.do); <-stopped })
	return w
}

// Run runs f on the worker's thread and waits for it.
func (w *Worker) Run(f func()) {
	w.do <- f
	<-w.done
}
