package ingress

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// upstreams are the reverse proxies and connection pools to backends, one
// per protocol.
type upstreams struct {
	p       *Proxy
	proxies map[routes.AppProtocol]*httputil.ReverseProxy
	trs     []*http.Transport
}

type upstreamKey struct{}

// upstreamInfo carries a request's backend choice to the transport and
// what happened back to the access log.
type upstreamInfo struct {
	pool       *Pool
	retries    int
	tryTimeout time.Duration
	affinity   *routes.CookieAffinity
	// connectTimeout bounds connecting (0: defaultConnectTimeout);
	// readTimeout the wait for the backend's next bytes (0: none).
	connectTimeout, readTimeout time.Duration
	addr                        string
	tries                       int
}

var errNoEndpoint = errors.New("no endpoint available")

// debugLog takes net/http's messages (clients' TLS handshake errors, cut
// bodies) to slog at debug level: the access log says what matters.
// (The default logger when it is called: set up logging first.)
func debugLog() *log.Logger { return slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug) }

// defaultConnectTimeout is ingress-nginx's proxy-connect-timeout default.
const defaultConnectTimeout = 5 * time.Second

// errReadTimeout: the backend sent nothing for the route's ReadTimeout.
var errReadTimeout = fmt.Errorf("backend read timeout: %w", context.DeadlineExceeded)

func newUpstreams(p *Proxy) *upstreams {
	u := &upstreams{p: p, proxies: map[routes.AppProtocol]*httputil.ReverseProxy{}}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := defaultConnectTimeout
		if info, ok := ctx.Value(upstreamKey{}).(*upstreamInfo); ok && info.connectTimeout > 0 {
			d = info.connectTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return dialer.DialContext(ctx, network, addr)
	}
	mk := func(tlsOn, h2c bool) *http.Transport {
		t := &http.Transport{
			DialContext:           dial,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			Protocols:             new(http.Protocols),
			// The client's Accept-Encoding goes to the backend as it
			// came: none added (Go's transport would ask for gzip and
			// decompress the answer itself, changing what backends see
			// and spending the proxy's CPU), as nginx.
			DisableCompression: true,
		}
		switch {
		case h2c:
			t.Protocols.SetUnencryptedHTTP2(true)
		case tlsOn:
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // backends' certificates are not verified, as ingress-nginx's proxy_ssl_verify off
			t.Protocols.SetHTTP1(true)
			t.Protocols.SetHTTP2(true)
		default:
			t.Protocols.SetHTTP1(true)
		}
		u.trs = append(u.trs, t)
		return t
	}
	h1, h2c, tlsT := mk(false, false), mk(false, true), mk(true, false)
	for proto, tr := range map[routes.AppProtocol]*http.Transport{
		routes.ProtoHTTP1: h1, "": h1, routes.ProtoH2C: h2c, routes.ProtoGRPC: h2c, routes.ProtoHTTPS: tlsT, routes.ProtoGRPCS: tlsT,
	} {
		scheme := "http"
		if tr == tlsT {
			scheme = "https"
		}
		u.proxies[proto] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme = scheme
				pr.Out.URL.Host = "upstream" // the transport puts an endpoint
				pr.SetXForwarded()
				if m, ok := pr.In.Context().Value(matchKey{}).(*matched); ok && m.tls {
					pr.Out.Header.Set("X-Forwarded-Proto", "https")
				}
			},
			Transport: &endpointTransport{base: tr},
			// Responses of unknown length (streams, gRPC, server-sent
			// events) are flushed at each write by ReverseProxy itself;
			// others go out in as few writes as they can.
			FlushInterval: 0,
			ErrorHandler:  u.errorHandler,
			ErrorLog:      debugLog(),
			// Without a pool ReverseProxy allocates 32 KiB per response
			// for the copy: most of the proxy's garbage.
			BufferPool: copyBuffers,
		}
	}
	return u
}

// bufferPool lends ReverseProxy its body copy buffers.
type bufferPool struct{ p sync.Pool }

// copyBuffers are shared by every proxy of the process.
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

func (b *bufferPool) Get() []byte { return *b.p.Get().(*[]byte) }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == 32<<10 {
		b.p.Put(&buf)
	}
}

func (u *upstreams) proxy(p routes.AppProtocol) *httputil.ReverseProxy {
	if rp := u.proxies[p]; rp != nil {
		return rp
	}
	return u.proxies[routes.ProtoHTTP1]
}

// closeIdle drops idle connections (endpoints left a pool: none is kept
// to a pod going away).
func (u *upstreams) closeIdle() {
	for _, t := range u.trs {
		t.CloseIdleConnections()
	}
}

func (u *upstreams) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
	case errors.Is(err, errNoEndpoint):
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "504 Gateway Time-out", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		w.WriteHeader(499) // the client went away (nginx's 499)
	default:
		slog.Debug("ingress proxy: upstream error", "host", r.Host, "path", r.URL.Path, "err", err)
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
	}
}

// mirror sends a copy of a request without body to a backend, answer
// ignored.
func (u *upstreams) mirror(r *http.Request, b routes.Backend) {
	pool, _ := u.p.cfg.Endpoints.Lookup(b.Service, b.Port, b.PortName)
	addr := pool.Pick(nil)
	if addr == "" {
		return
	}
	out := r.Clone(context.WithoutCancel(r.Context()))
	out.RequestURI, out.Body, out.ContentLength = "", http.NoBody, 0
	out.URL.Scheme, out.URL.Host = "http", addr
	go func() {
		ctx, cancel := context.WithTimeout(out.Context(), 10*time.Second)
		defer cancel()
		resp, err := u.trs[0].RoundTrip(out.WithContext(ctx))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
}

// endpointTransport sends each try to an endpoint of the request's pool:
// a try that could not connect is always repeated on another endpoint
// (nothing was sent); idempotent requests without a body are also
// retried, up to the route's Retries, after errors and 502/503/504.
type endpointTransport struct{ base http.RoundTripper }

func (t *endpointTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, _ := req.Context().Value(upstreamKey{}).(*upstreamInfo)
	if info == nil || info.pool == nil {
		return nil, errNoEndpoint
	}
	var body *keptBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &keptBody{rc: req.Body}
	}
	replayable := body == nil && idempotent(req.Method)
	var tried []string
	var lastErr error
	maxDial := min(len(info.pool.Addrs), 3)
	dialFailures := 0
	for attempt := 0; ; attempt++ {
		addr := ""
		var cookie *http.Cookie
		if info.affinity != nil && attempt == 0 {
			addr, cookie = affinityPick(req, info.pool, info.affinity)
		} else {
			addr = info.pool.Pick(tried)
		}
		if addr == "" {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, errNoEndpoint
		}
		tried = append(tried, addr)
		info.addr, info.tries = addr, attempt+1
		out := *req
		u := *req.URL
		u.Host = addr
		out.URL = &u
		if body != nil {
			out.Body = body
		}
		cancel, idle := tryContext(&out, info.tryTimeout, info.readTimeout)
		resp, err := t.base.RoundTrip(&out)
		if err != nil {
			if idle != nil && idle.expired.Load() {
				err = errReadTimeout
			}
			cancel()
			lastErr = err
			if isDialError(err) && (body == nil || !body.read.Load()) && dialFailures < maxDial {
				dialFailures++
				continue
			}
			if replayable && attempt < info.retries && req.Context().Err() == nil {
				continue
			}
			return nil, err
		}
		if replayable && attempt < info.retries && (resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504) &&
			len(tried) < len(info.pool.Addrs) {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			cancel()
			continue
		}
		if idle != nil {
			idle.touch()
			resp.Body = &idleBody{ReadCloser: resp.Body, idle: idle}
		}
		if info.tryTimeout > 0 || idle != nil {
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		}
		if cookie != nil {
			resp.Header.Add("Set-Cookie", cookie.String())
		}
		return resp, nil
	}
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// keptBody is a request body that survives a try that never read it:
// the transport closes a request's body on every error.
type keptBody struct {
	rc   io.ReadCloser
	read atomic.Bool // the transport reads and closes on goroutines of its own
}

func (b *keptBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *keptBody) Close() error {
	if b.read.Load() {
		return b.rc.Close()
	}
	return nil
}

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// affinityPick returns the endpoint the request's affinity cookie names
// if it is in the pool, else the next one with a cookie to set.
func affinityPick(req *http.Request, pool *Pool, a *routes.CookieAffinity) (string, *http.Cookie) {
	if c, err := req.Cookie(a.Name); err == nil {
		for _, addr := range pool.Addrs {
			if endpointHash(addr) == c.Value {
				return addr, nil
			}
		}
	}
	addr := pool.Pick(nil)
	if addr == "" {
		return "", nil
	}
	c := &http.Cookie{Name: a.Name, Value: endpointHash(addr), Path: a.Path, HttpOnly: true}
	if c.Path == "" {
		c.Path = "/"
	}
	if a.MaxAge > 0 {
		c.MaxAge = int(a.MaxAge / time.Second)
		c.Expires = time.Now().Add(a.MaxAge)
	}
	return addr, c
}

func endpointHash(addr string) string {
	s := sha256.Sum256([]byte(addr))
	return hex.EncodeToString(s[:10])
}

// tryContext bounds a try by Gateway API's backendRequest timeout (the
// whole exchange with the backend, response body included) and by
// ReadTimeout between the backend's bytes (idle, nil when none); the
// returned function releases it.
func tryContext(out *http.Request, d, read time.Duration) (context.CancelFunc, *idleTimer) {
	if d <= 0 && read <= 0 {
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(out.Context())
	if d > 0 {
		ctx, cancel = context.WithTimeout(out.Context(), d)
	}
	*out = *out.WithContext(ctx)
	if read <= 0 {
		return cancel, nil
	}
	it := &idleTimer{d: read}
	it.t = time.AfterFunc(read, func() { it.expired.Store(true); cancel() })
	return func() { it.t.Stop(); cancel() }, it
}

// idleTimer cancels a try when the backend is silent too long.
type idleTimer struct {
	d       time.Duration
	t       *time.Timer
	expired atomic.Bool
}

func (i *idleTimer) touch() { i.t.Reset(i.d) }

type idleBody struct {
	io.ReadCloser
	idle *idleTimer
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.idle.touch()
	}
	if err != nil && err != io.EOF && b.idle.expired.Load() {
		err = errReadTimeout
	}
	return n, err
}
