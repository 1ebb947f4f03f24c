// Package netnstest gives tests network namespaces of their own: anonymous
// ones, which the kernel removes once the test closes its handles, so a
// test never programs the machine's own network and leaves nothing behind.
package netnstest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// New creates an anonymous network namespace with its loopback up and
// returns it with a netlink handle working in it. Both are closed when the
// test ends, which removes the namespace (unless a process still runs in
// it). The test is skipped when it cannot create namespaces (not root).
func New(t testing.TB) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating network namespaces needs root")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("creating a network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread is in the new namespace: never hand it back.
		runtime.Goexit()
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns, h
}

// Do runs fn on an OS thread inside ns. Sockets fn creates stay in ns
// after it returns, so a test can listen or dial there and use the
// connection from any goroutine. The thread then goes back to this
// process's namespace (were it left to end, a child process started from
// it would get its parent-death signal).
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
