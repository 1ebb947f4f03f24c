package ingress

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// compiledRoute is a route ready to serve: its filters, middleware and
// backends in one handler.
type compiledRoute struct {
	p        *Proxy
	r        *routes.Route
	handler  http.Handler
	backends []*compiledBackend
	total    int64 // sum of weights
	origin   string
	requests *prometheus.CounterVec
	duration prometheus.Observer
}

type compiledBackend struct {
	b       routes.Backend
	handler http.Handler // the backend's filters, then the upstream
}

type matchKey struct{}

// matched is the match a request took, for filters that replace the
// matched prefix or expand capture groups.
type matched struct {
	match  *routes.Match
	groups []int
	path   string // the request path matched
	tls    bool
}

func (p *Proxy) compileRoute(r *routes.Route) *compiledRoute {
	cr := &compiledRoute{p: p, r: r}
	o := r.Origin
	cr.origin = o.Kind + " " + o.Namespace + "/" + o.Name
	labels := prometheus.Labels{"kind": o.Kind, "namespace": o.Namespace, "name": o.Name}
	cr.requests = p.metrics.requests.MustCurryWith(labels)
	cr.duration = p.metrics.duration.With(labels)
	for _, b := range r.Backends {
		w := b.Weight
		if w < 0 {
			w = 0
		}
		cb := &compiledBackend{b: b}
		cb.handler = p.filterChain(b.Filters, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { cr.upstream(w, req, cb) }))
		cr.backends = append(cr.backends, cb)
		cr.total += int64(w)
	}
	var h http.Handler = http.HandlerFunc(cr.toBackend)
	if r.Middleware != nil {
		h = r.Middleware(h)
	}
	cr.handler = p.filterChain(r.Filters, h)
	return cr
}

// serve serves a request matched to the route.
func (cr *compiledRoute) serve(w http.ResponseWriter, r *http.Request, e *entry, groups []int, isTLS bool) {
	t0 := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), matchKey{}, &matched{match: e.match, groups: groups, path: r.URL.Path, tls: isTLS})
	if cr.r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cr.r.Timeout)
		defer cancel()
	}
	info := &upstreamInfo{}
	ctx = context.WithValue(ctx, upstreamKey{}, info)
	r = r.WithContext(ctx)
	if max := cr.r.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			http.Error(sw, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
			cr.done(sw, r, t0, info)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(sw, r.Body, max)
		}
	}
	cr.handler.ServeHTTP(sw, r)
	cr.done(sw, r, t0, info)
}

func (cr *compiledRoute) done(sw *statusWriter, r *http.Request, t0 time.Time, info *upstreamInfo) {
	status := sw.status
	if status == 0 {
		if sw.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK
		}
	}
	d := time.Since(t0)
	cr.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	cr.duration.Observe(d.Seconds())
	if l := cr.p.cfg.AccessLog; l != nil {
		l.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "proto", r.Proto, "status", status, "bytes", sw.bytes,
			"remote", r.RemoteAddr, "duration", d.String(), "route", cr.origin, "rule", cr.r.Origin.Rule, "upstream", info.addr, "tries", info.tries)
	}
}

// toBackend chooses a backend by weight.
func (cr *compiledRoute) toBackend(w http.ResponseWriter, r *http.Request) {
	if len(cr.backends) == 0 {
		http.Error(w, "500 Internal Server Error: the route has no backend", http.StatusInternalServerError)
		return
	}
	cb := cr.backends[0]
	if cr.total > 0 {
		n := rand.Int64N(cr.total)
		for _, b := range cr.backends {
			if w := int64(max(b.b.Weight, 0)); n < w {
				cb = b
				break
			} else {
				n -= w
			}
		}
	} else if len(cr.backends) > 1 {
		// All weights 0: Gateway API says no traffic; Ingress never
		// sets weights (one backend of weight 0 takes all).
		http.Error(w, "500 Internal Server Error: every backend has weight 0", http.StatusInternalServerError)
		return
	}
	cb.handler.ServeHTTP(w, r)
}

func (cr *compiledRoute) upstream(w http.ResponseWriter, r *http.Request, cb *compiledBackend) {
	b := cb.b
	if b.Invalid != "" {
		http.Error(w, "500 Internal Server Error: "+b.Invalid, http.StatusInternalServerError)
		return
	}
	pool, found := cr.p.cfg.Endpoints.Lookup(b.Service, b.Port, b.PortName)
	if !found && cr.r.Origin.Kind != "Ingress" {
		http.Error(w, "500 Internal Server Error: service "+b.Service.String()+" not found", http.StatusInternalServerError)
		return
	}
	if pool == nil || len(pool.Addrs) == 0 {
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	}
	info, _ := r.Context().Value(upstreamKey{}).(*upstreamInfo)
	info.pool, info.retries, info.tryTimeout, info.affinity = pool, cr.r.Retries, cr.r.BackendTimeout, cr.r.Affinity
	info.connectTimeout, info.readTimeout = cr.r.ConnectTimeout, cr.r.ReadTimeout
	cr.p.upstreams.proxy(b.Protocol).ServeHTTP(w, r)
}

// filterChain runs Gateway API filters in order before next.
func (p *Proxy) filterChain(filters []routes.Filter, next http.Handler) http.Handler {
	if len(filters) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, _ := r.Context().Value(matchKey{}).(*matched)
		var mirrors []*routes.Backend
		for _, f := range filters {
			switch f.Type {
			case routes.RequestHeaderModifier:
				modifyHeaders(r.Header, f.RequestHeader)
				if f.RequestHeader != nil {
					for _, h := range f.RequestHeader.Set {
						if strings.EqualFold(h.Name, "Host") {
							r.Host = h.Value
						}
					}
				}
			case routes.ResponseHeaderModifier:
				if f.ResponseHeader != nil {
					w = &headerModWriter{ResponseWriter: w, mod: f.ResponseHeader}
				}
			case routes.RequestRedirect:
				if f.Redirect != nil {
					redirect(w, r, f.Redirect, m)
					return
				}
			case routes.URLRewrite:
				if rw := f.Rewrite; rw != nil {
					if rw.Hostname != "" {
						r.Host = rw.Hostname
					}
					if rw.Path != nil {
						r.URL.Path, r.URL.RawPath = modifyPath(r.URL.Path, rw.Path, m), ""
					}
				}
			case routes.RequestMirror:
				if f.Mirror != nil {
					mirrors = append(mirrors, f.Mirror)
				}
			}
		}
		if len(mirrors) > 0 {
			for _, b := range mirrors {
				p.upstreams.mirror(r, *b)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func modifyHeaders(h http.Header, m *routes.HeaderModifier) {
	if m == nil {
		return
	}
	for _, x := range m.Set {
		h.Set(x.Name, x.Value)
	}
	for _, x := range m.Add {
		h.Add(x.Name, x.Value)
	}
	for _, n := range m.Remove {
		h.Del(n)
	}
}

// modifyPath applies a path modifier to a request path.
func modifyPath(p string, pm *routes.PathModifier, m *matched) string {
	switch {
	case pm.RegexTemplate != "" && m != nil && m.match.Regex != nil && m.groups != nil:
		out := string(m.match.Regex.ExpandString(nil, nginxTemplate(pm.RegexTemplate), m.path, m.groups))
		if !strings.HasPrefix(out, "/") {
			out = "/" + out
		}
		return out
	case pm.ReplacePrefix && m != nil:
		prefix := strings.TrimRight(m.match.Path, "/")
		if !strings.HasPrefix(p, prefix) {
			return p
		}
		rest := p[len(prefix):]
		v := strings.TrimRight(pm.Value, "/")
		out := v + rest
		if out == "" {
			return "/"
		}
		if !strings.HasPrefix(out, "/") {
			out = "/" + out
		}
		return out
	case !pm.ReplacePrefix:
		return pm.Value
	}
	return p
}

// redirect answers a RequestRedirect filter.
func redirect(w http.ResponseWriter, r *http.Request, rd *routes.Redirect, m *matched) {
	scheme := "http"
	if m != nil && m.tls {
		scheme = "https"
	}
	host, port := r.Host, ""
	if h, pt, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, pt
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	if rd.Port != 0 {
		port = strconv.Itoa(int(rd.Port))
	}
	u := url.URL{Scheme: scheme, Host: hostForURL(host), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if (scheme == "http" && port != "80") || (scheme == "https" && port != "443") {
		u.Host = net.JoinHostPort(host, port)
	}
	if rd.Path != nil {
		u.Path = modifyPath(r.URL.Path, rd.Path, m)
	}
	code := rd.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(code)
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// headerModWriter applies a ResponseHeaderModifier when the header is
// written.
type headerModWriter struct {
	http.ResponseWriter
	mod   *routes.HeaderModifier
	wrote bool
}

func (w *headerModWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		modifyHeaders(w.Header(), w.mod)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerModWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *headerModWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *headerModWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

var _ io.Writer = (*statusWriter)(nil)

// nginxTemplate turns nginx's $1..$9 into Go's ${1}..${9} (Go reads
// "$1abc" as the group named "1abc"); ${N} and $$ stay.
func nginxTemplate(t string) string {
	if !strings.Contains(t, "$") {
		return t
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] == '$' && i+1 < len(t) && t[i+1] >= '0' && t[i+1] <= '9' {
			b.WriteString("${")
			b.WriteByte(t[i+1])
			b.WriteByte('}')
			i++
			continue
		}
		b.WriteByte(t[i])
	}
	return b.String()
}
