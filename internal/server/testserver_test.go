package server

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/pki"
	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/bolt"
)

// runTestServer runs an API server in-process with its PKI in dir, over
// store (nil: a bolt store in dir, closed when the server stops), serving
// every built-in resource to X.509 clients with system:masters allowed
// everything; configure changes the Config before the server is made.
// It returns once the server is ready; stop (also run at cleanup, once)
// ends it.
func runTestServer(t testing.TB, dir string, store storage.Store, configure func(*apiserver.Config)) (srv *apiserver.Server, stop func()) {
	t.Helper()
	bundle, err := pki.Ensure(dir, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var closeStore func() error
	if store == nil {
		b, err := bolt.Open(filepath.Join(dir, "state.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		store, closeStore = b, b.Close
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := apiserver.Config{
		Store: store, Resources: catalog.Resources(), TLSConfig: bundle.ServerTLSConfig(),
		Authenticator: auth.X509{}, Authorizer: auth.Chain{auth.PrivilegedGroups{auth.GroupMasters}},
		Listener: ln, CAData: bundle.CAPEM,
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err = apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server: %v", err)
		}
		if closeStore != nil {
			closeStore()
		}
	}
	t.Cleanup(stop)
	select {
	case err := <-errc:
		stopped = true
		t.Fatalf("server: %v", err)
	case <-srv.Ready():
	case <-time.After(time.Minute):
		t.Fatal("server not ready within a minute")
	}
	return srv, stop
}
