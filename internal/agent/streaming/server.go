package streaming

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// APIServerUser is the common name of the client certificate the API server
// presents to node agents; only it may use the streaming server.
const APIServerUser = "havre:apiserver-kubelet-client"

// Container is one instance of a container on the node.
type Container struct {
	ID      string
	LogPath string
	Running bool
}

// Node is what the server needs of the agent: finding pods' containers and
// sandboxes, and the runtime's streaming calls. Lookups return API errors
// (NotFound, BadRequest) that are written to the client as they are.
type Node interface {
	// Container finds the newest instance of a pod's container, or with
	// previous the instance before it.
	Container(ctx context.Context, namespace, pod, container string, previous bool) (Container, error)
	// Sandbox finds the running sandbox of a pod.
	Sandbox(ctx context.Context, namespace, pod string) (string, error)
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (string, error)
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (string, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (string, error)
}

// Server serves the streaming API over HTTPS to the API server.
type Server struct {
	node Node
	mux  *http.ServeMux
	// pollInterval is how often a followed log is checked for new lines.
	pollInterval time.Duration
}

// New returns a server for node.
func New(node Node) *Server {
	s := &Server{node: node, mux: http.NewServeMux(), pollInterval: 100 * time.Millisecond}
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	for _, m := range []string{"GET", "POST"} {
		s.mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		s.mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		s.mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.servePortForward)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return s
}

// ServeHTTP serves requests of the API server only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" && !fromAPIServer(r) {
		writeStatus(w, apierrors.NewForbidden(schemaNodes, "", errors.New("only the API server may use the node's streaming API")))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func fromAPIServer(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return false
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName == APIServerUser
}

// TLSConfig is the server's TLS configuration: cert serves, and clients must
// present a certificate of the cluster CA (clientCAs).
func TLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
		// Upgraded connections (exec, attach, port-forward) need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}
}

// Serve serves on ln with tlsConfig until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		_ = srv.Close()
	}()
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// writeStatus writes err as a metav1.Status, as the kubelet does.
func writeStatus(w http.ResponseWriter, err error) {
	var st metav1.Status
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).ErrStatus
	}
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(&st)
}

// boolParam reads a boolean query parameter by any of its names (the API
// server's stdin/stdout/stderr, the kubelet's input/output/error).
func boolParam(r *http.Request, names ...string) bool {
	q := r.URL.Query()
	for _, n := range names {
		if v := q.Get(n); v != "" {
			return v == "1" || strings.EqualFold(v, "true")
		}
	}
	return false
}

func commandParam(r *http.Request) []string {
	return slices.Clone(r.URL.Query()["command"])
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}
