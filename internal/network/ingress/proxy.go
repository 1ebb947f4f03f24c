package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// Challenges are the pending ACME challenges the proxy answers (written by
// the certificates controller; nil: none).
type Challenges interface {
	// HTTP01 returns the key authorization of an HTTP-01 challenge for a
	// host and token.
	HTTP01(host, token string) (string, bool)
	// TLSALPN01 returns the acme-tls/1 certificate for a server name.
	TLSALPN01(serverName string) (*tls.Certificate, bool)
}

// Config configures a Proxy.
type Config struct {
	// HTTPPort and HTTPSPort are where listeners of port 80 and 443 are
	// served (0: 80 and 443); Address is the address listened on ("": all).
	HTTPPort, HTTPSPort int
	Address             string
	// Sources are merged (routes.Merge) into the table served.
	Sources []routes.Source
	// Endpoints resolve backends to pod addresses.
	Endpoints Endpoints
	// Challenges, when set, are answered on the HTTP port
	// (/.well-known/acme-challenge/) and the HTTPS port (acme-tls/1).
	Challenges Challenges
	// AccessLog, when set, gets a line per request.
	AccessLog *slog.Logger
}

// Proxy is a node's HTTP(S) proxy.
type Proxy struct {
	cfg       Config
	fake      *tls.Certificate
	table     atomic.Pointer[compiledTable]
	metrics   *metrics
	upstreams *upstreams

	mu      sync.Mutex
	servers map[int32]*portServer // by the port listened on
	ready   chan struct{}
	once    sync.Once
}

type compiledTable struct {
	listeners map[int32]*compiledListener // by the port listened on
}

type portServer struct {
	srv   *http.Server
	ln    net.Listener
	proto routes.Protocol
}

// New builds a proxy; Run serves it.
func New(cfg Config) (*Proxy, error) {
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = int(routes.HTTPPort)
	}
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = int(routes.HTTPSPort)
	}
	if cfg.Endpoints == nil {
		return nil, errors.New("ingress proxy: no endpoints")
	}
	fake, err := fakeCertificate()
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, fake: fake, metrics: newMetrics(), servers: map[int32]*portServer{}, ready: make(chan struct{})}
	p.upstreams = newUpstreams(p)
	if r, ok := cfg.Endpoints.(interface{ OnRemoved(func()) }); ok {
		r.OnRemoved(p.upstreams.closeIdle)
	}
	p.table.Store(&compiledTable{listeners: map[int32]*compiledListener{}})
	return p, nil
}

// Ready is closed once the first table is served.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// listenPort is the port a table listener is served on.
func (p *Proxy) listenPort(port int32) int32 {
	switch port {
	case routes.HTTPPort:
		return int32(p.cfg.HTTPPort)
	case routes.HTTPSPort:
		return int32(p.cfg.HTTPSPort)
	}
	return port
}

// Run listens on the HTTP and HTTPS ports and serves the sources' tables
// until ctx is done. It fails when either port cannot be listened on.
func (p *Proxy) Run(ctx context.Context) error {
	if err := p.ensureServer(int32(p.cfg.HTTPPort), routes.HTTP); err != nil {
		return err
	}
	if err := p.ensureServer(int32(p.cfg.HTTPSPort), routes.HTTPS); err != nil {
		p.closeAll()
		return err
	}
	defer p.closeAll()
	kick := make(chan struct{}, 1)
	for _, s := range p.cfg.Sources {
		go func(ch <-chan struct{}) {
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					select {
					case kick <- struct{}{}:
					default:
					}
				}
			}
		}(s.Changed())
	}
	for {
		p.Apply(p.build())
		p.once.Do(func() { close(p.ready) })
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		}
	}
}

func (p *Proxy) build() *routes.Table {
	var tables []*routes.Table
	for _, s := range p.cfg.Sources {
		tables = append(tables, s.Build())
	}
	return routes.Merge(tables...)
}

// Apply serves a table (Run calls it on every change; tests may call it
// directly after Start).
func (p *Proxy) Apply(t *routes.Table) {
	ct := &compiledTable{listeners: map[int32]*compiledListener{}}
	for _, l := range t.Listeners {
		port := p.listenPort(l.Port)
		cl := &compiledListener{port: port, proto: l.Protocol, certs: newCertIndex(l)}
		compiled := map[*routes.Route]*compiledRoute{}
		for _, vh := range l.Hosts {
			ch := &compiledHost{vh: vh, pattern: vh.Hostname, redirect: vh.RedirectToHTTPS}
			for _, r := range vh.Routes {
				cr := compiled[r]
				if cr == nil {
					cr = p.compileRoute(r)
					compiled[r] = cr
				}
				for i := range r.Matches {
					ch.entries = append(ch.entries, entry{route: cr, match: &r.Matches[i], matchIx: i})
				}
				if len(r.Matches) == 0 {
					ch.entries = append(ch.entries, entry{route: cr, match: &routes.Match{PathType: routes.PathPrefix, Path: "/"}})
				}
			}
			sortEntries(ch.entries)
			cl.hosts = append(cl.hosts, ch)
		}
		cl.indexHosts()
		ct.listeners[port] = cl
	}
	p.table.Store(ct)
	// Listeners on ports other than the two standard ones are opened
	// (and closed when no longer used).
	p.mu.Lock()
	var closing []*portServer
	for port, s := range p.servers {
		if port == int32(p.cfg.HTTPPort) || port == int32(p.cfg.HTTPSPort) {
			continue
		}
		if l := ct.listeners[port]; l == nil || l.proto != s.proto {
			closing = append(closing, s)
			delete(p.servers, port)
		}
	}
	p.mu.Unlock()
	for _, s := range closing {
		_ = s.srv.Close()
	}
	for port, l := range ct.listeners {
		if err := p.ensureServer(port, l.proto); err != nil {
			slog.Warn("ingress proxy: cannot listen on a listener's port", "port", port, "err", err)
		}
	}
}

// Start listens on the two standard ports without sources (tests).
func (p *Proxy) Start() error {
	if err := p.ensureServer(int32(p.cfg.HTTPPort), routes.HTTP); err != nil {
		return err
	}
	return p.ensureServer(int32(p.cfg.HTTPSPort), routes.HTTPS)
}

// Close stops every listener.
func (p *Proxy) Close() { p.closeAll() }

// Addr returns the address a port is listened on (nil: not listened on).
func (p *Proxy) Addr(port int32) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.servers[port]; s != nil {
		return s.ln.Addr()
	}
	return nil
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	servers := p.servers
	p.servers = map[int32]*portServer{}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if s.srv.Shutdown(ctx) != nil {
				_ = s.srv.Close()
			}
		})
	}
	wg.Wait()
	p.upstreams.closeIdle()
}

func (p *Proxy) ensureServer(port int32, proto routes.Protocol) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.servers[port]; s != nil {
		if s.proto != proto {
			return fmt.Errorf("port %d is served as %s, not %s", port, s.proto, proto)
		}
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(p.cfg.Address, strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	if port == 0 { // tests: an ephemeral port
		port = int32(ln.Addr().(*net.TCPAddr).Port)
		if proto == routes.HTTP {
			p.cfg.HTTPPort = int(port)
		} else {
			p.cfg.HTTPSPort = int(port)
		}
	}
	srv := &http.Server{
		Handler:           &portHandler{p: p, port: port, tls: proto == routes.HTTPS},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          debugLog(),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	s := &portServer{srv: srv, ln: ln, proto: proto}
	if proto == routes.HTTPS {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1", acmeTLS1},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return p.certificate(port, hello) },
		}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
		go func() { _ = srv.Serve(ln) }()
	}
	p.servers[port] = s
	return nil
}

const acmeTLS1 = "acme-tls/1"

// certificate chooses the certificate of a TLS handshake: the acme-tls/1
// challenge certificate when the client asks for that protocol, else by
// SNI among the listener's certificates, else the fake certificate.
func (p *Proxy) certificate(port int32, hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, acmeTLS1) {
		if p.cfg.Challenges != nil {
			if c, ok := p.cfg.Challenges.TLSALPN01(strings.ToLower(hello.ServerName)); ok {
				return c, nil
			}
		}
		return nil, fmt.Errorf("no acme-tls/1 challenge for %q", hello.ServerName)
	}
	if l := p.table.Load().listeners[port]; l != nil {
		if c := l.certs.get(hello.ServerName); c != nil {
			return c, nil
		}
	}
	return p.fake, nil
}

// portHandler serves one port.
type portHandler struct {
	p    *Proxy
	port int32
	tls  bool
}

const acmeChallengePath = "/.well-known/acme-challenge/"

func (h *portHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	host := requestHost(r)
	if !h.tls && p.cfg.Challenges != nil {
		if token, ok := strings.CutPrefix(r.URL.Path, acmeChallengePath); ok && token != "" && !strings.Contains(token, "/") {
			if ka, ok := p.cfg.Challenges.HTTP01(host, token); ok {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte(ka))
				return
			}
		}
	}
	l := p.table.Load().listeners[h.port]
	var vh *compiledHost
	if l != nil {
		vh = l.host(host)
	}
	if vh == nil {
		p.notFound(w, r)
		return
	}
	if !h.tls && vh.redirect {
		target := "https://" + hostForURL(host)
		if p.cfg.HTTPSPort != 443 {
			target += ":" + strconv.Itoa(p.cfg.HTTPSPort)
		}
		target += r.URL.RequestURI()
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
		return
	}
	if c := cleanPath(r.URL.Path); c != r.URL.Path {
		r.URL.Path, r.URL.RawPath = c, ""
	}
	e, groups := vh.route(r, r.URL.Path)
	if e == nil {
		p.notFound(w, r)
		return
	}
	e.route.serve(w, r, e, groups, h.tls)
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// notFound answers a request no route matches.
func (p *Proxy) notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "404 page not found", http.StatusNotFound)
	if p.cfg.AccessLog != nil {
		p.cfg.AccessLog.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "proto", r.Proto, "status", http.StatusNotFound,
			"remote", r.RemoteAddr, "route", "")
	}
}
