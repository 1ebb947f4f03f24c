package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// healthServer serves the health-check node ports of externalTrafficPolicy: Local services:
// 200 when this node has local endpoints for the service, 503 otherwise (as kube-proxy's
// service health server), so load balancers send traffic only to nodes that can take it.
type healthServer struct {
	nodeIPs []netip.Addr
	log     *slog.Logger
	listen  func(network, addr string) (net.Listener, error)

	mu    sync.Mutex
	ports map[uint16]*hcService
}

type hcService struct {
	name  types.NamespacedName
	local atomic.Int64
	srv   *http.Server
}

// hcWant is what one health-check port should say.
type hcWant struct {
	name  types.NamespacedName
	local int
}

func newHealthServer(nodeIPs []netip.Addr, log *slog.Logger) *healthServer {
	return &healthServer{nodeIPs: nodeIPs, log: log, listen: net.Listen, ports: map[uint16]*hcService{}}
}

func (s *hcService) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := s.local.Load()
	body, _ := json.Marshal(map[string]any{
		"service":             map[string]string{"namespace": s.name.Namespace, "name": s.name.Name},
		"localEndpoints":      n,
		"serviceProxyHealthy": true,
	})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Load-Balancing-Endpoint-Weight", strconv.FormatInt(n, 10))
	if n == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.Write(body)
}

// sync starts servers for new ports, stops those no longer wanted and updates the counts.
func (h *healthServer) sync(want map[uint16]hcWant) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.ports {
		if w, ok := want[port]; !ok || w.name != s.name {
			h.stop(port, s)
		}
	}
	for port, w := range want {
		s, ok := h.ports[port]
		if !ok {
			s = &hcService{name: w.name}
			s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			var lns []net.Listener
			for _, ip := range h.nodeIPs {
				ln, err := h.listen("tcp", netip.AddrPortFrom(ip, port).String())
				if err != nil {
					h.log.Error("health-check node port cannot listen; is the port taken on the node?", "service", w.name.String(), "address", netip.AddrPortFrom(ip, port).String(), "err", err)
					continue
				}
				lns = append(lns, ln)
			}
			for _, ln := range lns {
				go func() {
					if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						h.log.Error("health-check node port stopped serving", "service", w.name.String(), "err", err)
					}
				}()
			}
			h.ports[port] = s
			h.log.Info("health-check node port serving", "service", w.name.String(), "port", port)
		}
		s.local.Store(int64(w.local))
	}
}

func (h *healthServer) stop(port uint16, s *hcService) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	delete(h.ports, port)
}

func (h *healthServer) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.ports {
		h.stop(port, s)
	}
}
