// Package apiserver is Havre's Kubernetes API server: HTTPS routing,
// authentication and authorization, content negotiation (JSON, YAML,
// protobuf, Tables), discovery, and the generic REST verbs, list and watch
// over the revisioned store.
//
// It is generic: what differs between kinds lives in internal/registry. It
// must never reach into node, network or controller concerns; those are
// clients of the API like any other.
package apiserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/openapi"
	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
	"github.com/havre/havre/internal/storage"
)

// Config is what the server needs to run.
type Config struct {
	Store         storage.Store
	Resources     []*registry.Resource
	TLSConfig     *tls.Config
	Authenticator auth.Authenticator
	Authorizer    auth.Authorizer
	// Listener, when set, is used instead of listening on Address.
	Listener net.Listener
	Address  string
	// CAData is the cluster CA in PEM, for the loopback client.
	CAData []byte
	// Version is reported at /version.
	Version version.Info
	// CompactionInterval is how often history older than one interval is
	// compacted; zero means 5 minutes.
	CompactionInterval time.Duration
	// ServiceCIDR is the range of Service cluster IPs; its first address is
	// the kubernetes Service's.
	ServiceCIDR string
	// NodePortRange is the range of Service node ports, "30000-32767".
	NodePortRange string
	// DefaultNotReadyTolerationSeconds and
	// DefaultUnreachableTolerationSeconds are the tolerationSeconds of the
	// not-ready and unreachable tolerations the DefaultTolerationSeconds
	// admission step adds to pods (0: 300, as kube-apiserver).
	DefaultNotReadyTolerationSeconds, DefaultUnreachableTolerationSeconds int64
	// Profiling serves Go's profiles at /debug/pprof to authorized users,
	// as kube-apiserver's --profiling does.
	Profiling bool
	// NodeClientCert is presented to node agents when pod logs, exec,
	// attach and port-forward are proxied to them.
	NodeClientCert *tls.Certificate
	// RBACEscalation, when set, is asked before every create and update of
	// the rbac.authorization.k8s.io kinds (old nil on create); its error
	// refuses the write.
	RBACEscalation interface {
		Check(ctx context.Context, obj, old runtime.Object) error
	}
	// Reviews answer the creates of Virtual resources (registry.Resource).
	Reviews map[schema.GroupResource]func(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	// PostStart run in order once the server answers requests and its
	// bootstrap objects exist, with a loopback client config; the server is
	// ready (Ready, /readyz) once they have returned, and fails if one fails.
	PostStart []func(ctx context.Context, loopback *rest.Config) error
	// Admission is the chain of admission plugins (webhooks, policies)
	// every write is offered to: mutating plugins after the built-in
	// defaulting and admission, validating ones after validation and
	// before the store write (see admission_plugins.go). Nil: none.
	Admission *admission.Chain
}

// Server serves the Kubernetes API.
type Server struct {
	cfg       Config
	handlers  map[schema.GroupVersionResource]*resourceHandler
	discovery *discovery
	openapi   *openapi.Service
	custom    *customResources
	loopback  *rest.Config
	listener  net.Listener
	services  *serviceAllocator
	// nodeTransport reaches node agents' streaming APIs.
	nodeTransport http.RoundTripper

	readyOnce sync.Once
	ready     chan struct{}
}

// New builds a server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.CompactionInterval == 0 {
		cfg.CompactionInterval = 5 * time.Minute
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = "10.43.0.0/16"
	}
	if cfg.NodePortRange == "" {
		cfg.NodePortRange = "30000-32767"
	}
	startTypeConverter()
	s := &Server{cfg: cfg, handlers: map[schema.GroupVersionResource]*resourceHandler{}, ready: make(chan struct{}),
		custom:        &customResources{},
		nodeTransport: newNodeTransport(cfg.NodeClientCert)}
	var err error
	if s.services, err = newServiceAllocator(s, cfg.ServiceCIDR, cfg.NodePortRange); err != nil {
		return nil, err
	}
	// The Service strategy validates requested node ports against the range.
	core.NodePortMin, core.NodePortMax = s.services.portLow, s.services.portHigh
	for _, res := range cfg.Resources {
		objs, err := newObjects(res, cfg.Store)
		if err != nil {
			return nil, err
		}
		h := &resourceHandler{srv: s, res: res, objs: objs, nameFn: metavalidation.NameIsDNSSubdomain}
		s.customise(h)
		s.handlers[res.GroupVersionResource] = h
	}
	if ev, core := s.handler("events.k8s.io", "v1", "events"), s.handler("", "v1", "events"); ev != nil && core != nil {
		ev.objs.storeAs(core.objs, eventToCore, eventFromCore)
	}
	s.discovery = newDiscovery(cfg.Resources, cfg.Version)
	s.openapi = openapi.New(cfg.Resources, cfg.Version.GitVersion)

	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	loopbackToken := hex.EncodeToString(token)
	s.cfg.Authenticator = auth.Union{
		loopbackAuthenticator{token: loopbackToken},
		cfg.Authenticator,
	}
	s.loopback = &rest.Config{
		BearerToken:     loopbackToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData, ServerName: "localhost"},
		QPS:             -1,
		UserAgent:       "havre-apiserver-loopback",
	}
	return s, nil
}

// handler returns the handler of a resource (built-in or custom), or nil.
func (s *Server) handler(group, version, resource string) *resourceHandler {
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	if h := s.handlers[gvr]; h != nil {
		return h
	}
	return s.custom.handler(gvr)
}

// LoopbackConfig returns a client config for in-process clients
// (controllers), authenticated as a cluster administrator.
func (s *Server) LoopbackConfig() *rest.Config {
	c := rest.CopyConfig(s.loopback)
	c.Host = "https://" + s.Addr()
	return c
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string {
	if s.listener == nil {
		return s.cfg.Address
	}
	addr := s.listener.Addr().(*net.TCPAddr)
	if addr.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	}
	return addr.String()
}

// Ready is closed once the server answers requests and its bootstrap
// objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx is done, then shuts down cleanly.
func (s *Server) Run(ctx context.Context) error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Address); err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.Address, err)
		}
	}
	s.listener = ln
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.cfg.TLSConfig,
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()

	if err := s.bootstrap(ctx); err != nil {
		_ = srv.Close()
		return err
	}
	// Custom resources are served before the server reports ready.
	rev, err := s.syncCustomResources(ctx)
	if err != nil {
		_ = srv.Close()
		return err
	}
	go s.runCustomResources(baseCtx, rev)
	for _, hook := range s.cfg.PostStart {
		if err := hook(ctx, s.LoopbackConfig()); err != nil {
			_ = srv.Close()
			return err
		}
	}
	go s.compactLoop(baseCtx)
	s.readyOnce.Do(func() { close(s.ready) })

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// End streams (watches) first so Shutdown does not wait for them.
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	return nil
}

// anonymousPaths are served without credentials: health checks only.
var anonymousPaths = []string{"/livez", "/readyz", "/healthz"}

// Handler returns the full handler chain.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.serveAuthorized)
	h = auth.WithImpersonation(h, s.cfg.Authorizer)
	h = auth.WithAuthentication(h, s.cfg.Authenticator, anonymousPaths)
	return withRecovery(h)
}

func withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, apierrors.NewInternalError(fmt.Errorf("the server hit an unexpected error")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveAuthorized(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/livez", "/readyz", "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		select {
		case <-s.ready:
			_, _ = w.Write([]byte("ok"))
		default:
			if r.URL.Path == "/livez" {
				_, _ = w.Write([]byte("ok"))
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready"))
		}
		return
	}
	info := parseRequestInfo(r)
	attrs := auth.Attributes{
		User: userFrom(r), Verb: info.verb, Path: r.URL.Path,
		APIGroup: info.group, APIVersion: info.version, Resource: info.resource,
		Subresource: info.subresource, Namespace: info.namespace, Name: info.name,
		ResourceRequest: info.resourceRequest,
	}
	decision, reason, err := s.cfg.Authorizer.Authorize(r.Context(), attrs)
	if err != nil || decision != auth.DecisionAllow {
		if err != nil && reason == "" {
			reason = err.Error()
		}
		writeError(w, auth.NewForbidden(attrs, reason))
		return
	}
	if !info.resourceRequest {
		if s.discovery.serve(w, r) || s.openapi.Serve(w, r) {
			return
		}
		if s.cfg.Profiling && strings.HasPrefix(r.URL.Path, "/debug/pprof") {
			servePprof(w, r)
			return
		}
		writeError(w, errNotFoundPath())
		return
	}
	h := s.handler(info.group, info.version, info.resource)
	if h == nil {
		h = s.catchUpCustomResource(r.Context(), info.group, info.version, info.resource)
	}
	if h == nil {
		writeError(w, errNotFoundPath())
		return
	}
	h.serve(w, r, info)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	_, _ = w.Write(body)
}

// loopbackAuthenticator authenticates the server's own clients.
type loopbackAuthenticator struct{ token string }

func (l loopbackAuthenticator) Authenticate(r *http.Request) (*auth.User, bool, error) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, prefix) || !constantTimeEqual(strings.TrimPrefix(h, prefix), l.token) {
		return nil, false, nil
	}
	return &auth.User{Name: "system:apiserver", Groups: []string{"system:masters", "system:authenticated"}}, true, nil
}

func userFrom(r *http.Request) *auth.User {
	u, _ := auth.UserFrom(r.Context())
	return u
}
