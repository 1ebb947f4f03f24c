package ingress

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// fakeEndpoints maps a Service name to addresses.
type fakeEndpoints struct {
	mu    sync.Mutex
	pools map[string]*Pool
}

func (f *fakeEndpoints) Lookup(svc types.NamespacedName, _ int32, _ string) (*Pool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pools[svc.Name]
	return p, ok
}

func (f *fakeEndpoints) set(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pools == nil {
		f.pools = map[string]*Pool{}
	}
	f.pools[name] = &Pool{Addrs: addrs}
}

// backend answers with its name, the path and the Host it got.
func backend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s %s", name, r.URL.RequestURI(), r.Host, r.Header.Get("X-Test"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func startProxy(t *testing.T, eps Endpoints, ch Challenges) *Proxy {
	t.Helper()
	p, err := New(Config{HTTPPort: -1, HTTPSPort: -1, Address: "127.0.0.1", Endpoints: eps, Challenges: ch})
	if err != nil {
		t.Fatal(err)
	}
	p.cfg.HTTPPort, p.cfg.HTTPSPort = 0, 0
	if err := p.ensureServer(0, routes.HTTP); err != nil {
		t.Fatal(err)
	}
	if err := p.ensureServer(0, routes.HTTPS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) httpURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", p.cfg.HTTPPort, path)
}

func svcBackend(name string) routes.Backend {
	return routes.Backend{Service: types.NamespacedName{Namespace: "ns", Name: name}, Port: 80, Weight: 1, Protocol: routes.ProtoHTTP1}
}

func route(name string, pt routes.PathMatchType, path string, backends ...string) *routes.Route {
	r := &routes.Route{Origin: routes.Origin{Kind: "Ingress", Namespace: "ns", Name: name}, Matches: []routes.Match{{PathType: pt, Path: path}}}
	for _, b := range backends {
		r.Backends = append(r.Backends, svcBackend(b))
	}
	return r
}

func table(hosts ...*routes.VirtualHost) *routes.Table {
	return routes.Merge(&routes.Table{Listeners: []*routes.Listener{
		{Port: routes.HTTPPort, Protocol: routes.HTTP, Hosts: hosts},
		{Port: routes.HTTPSPort, Protocol: routes.HTTPS, Hosts: hosts},
	}})
}

func get(t *testing.T, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouting(t *testing.T) {
	eps := &fakeEndpoints{}
	for _, n := range []string{"a", "b", "c", "wild", "def", "exact"} {
		eps.set(n, backend(t, n))
	}
	eps.set("empty")
	p := startProxy(t, eps, nil)
	p.Apply(table(
		&routes.VirtualHost{Hostname: "foo.example", Routes: []*routes.Route{
			route("i1", routes.PathPrefix, "/", "a"),
			route("i1", routes.PathPrefix, "/api/", "b"),
			route("i1", routes.PathExact, "/api", "exact"),
			route("i1", routes.PathPrefix, "/none", "empty"),
			route("i1", routes.PathPrefix, "/unknown", "nosuch"),
		}},
		&routes.VirtualHost{Hostname: "*.example", Routes: []*routes.Route{route("i2", routes.PathPrefix, "/", "wild")}},
		&routes.VirtualHost{Hostname: "", Routes: []*routes.Route{route("i3", routes.PathPrefix, "/", "def")}},
	))
	c := &http.Client{}
	for _, tc := range []struct {
		host, path string
		code       int
		prefix     string
	}{
		{"foo.example", "/", 200, "a /"},
		{"FOO.example:80", "/x", 200, "a /x"},
		{"foo.example", "/api", 200, "exact /api"},
		{"foo.example", "/api/", 200, "b /api/"},
		{"foo.example", "/api/v1?q=1", 200, "b /api/v1?q=1"},
		{"foo.example", "/apiv1", 200, "a /apiv1"},
		{"foo.example", "/api/../secret", 200, "a /secret"},
		{"bar.example", "/", 200, "wild /"},
		{"a.b.example", "/", 200, "wild /"},
		{"other", "/z", 200, "def /z"},
		{"foo.example", "/none", 503, ""},
		{"foo.example", "/unknown", 503, ""},
	} {
		code, body := get(t, c, p.httpURL(tc.path), tc.host)
		if code != tc.code || !strings.HasPrefix(body, tc.prefix) {
			t.Errorf("%s%s: %d %q, want %d %q...", tc.host, tc.path, code, body, tc.code, tc.prefix)
		}
	}
	// Without a catch-all host: 404.
	p.Apply(table(&routes.VirtualHost{Hostname: "foo.example", Routes: []*routes.Route{route("i1", routes.PathExact, "/only", "a")}}))
	if code, _ := get(t, c, p.httpURL("/"), "nope"); code != 404 {
		t.Errorf("unknown host: %d, want 404", code)
	}
	if code, _ := get(t, c, p.httpURL("/other"), "foo.example"); code != 404 {
		t.Errorf("unmatched path: %d, want 404", code)
	}
}

func TestRetriesAndDeadEndpoints(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	eps := &fakeEndpoints{}
	eps.set("a", deadAddr, backend(t, "a"), deadAddr+"0")
	p := startProxy(t, eps, nil)
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}}))
	c := &http.Client{}
	for i := 0; i < 20; i++ {
		if code, body := get(t, c, p.httpURL("/"), "x"); code != 200 {
			t.Fatalf("try %d: %d %s", i, code, body)
		}
		// A POST with a body is repeated when the connection was refused.
		resp, err := c.Post(p.httpURL("/post"), "text/plain", strings.NewReader("hello"))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
}

func TestBodyLimit(t *testing.T) {
	eps := &fakeEndpoints{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprint(w, n)
	}))
	defer srv.Close()
	eps.set("a", srv.Listener.Addr().String())
	p := startProxy(t, eps, nil)
	r := route("i", routes.PathPrefix, "/", "a")
	r.MaxBodyBytes = 1000
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{r}}))
	for _, tc := range []struct {
		n       int
		chunked bool
		code    int
	}{{1000, false, 200}, {1001, false, 413}, {500, true, 200}, {5000, true, 413}} {
		var body io.Reader = bytes.NewReader(make([]byte, tc.n))
		if tc.chunked {
			body = io.MultiReader(body) // unknown length
		}
		req, _ := http.NewRequest("POST", p.httpURL("/"), body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%d bytes (chunked %v): %d, want %d", tc.n, tc.chunked, resp.StatusCode, tc.code)
		}
	}
}

func selfSigned(t *testing.T, names ...string) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func pemPair(t *testing.T, c *tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
}

type fakeChallenges struct{ cert *tls.Certificate }

func (f fakeChallenges) HTTP01(host, token string) (string, bool) {
	if host == "acme.example" && token == "tok" {
		return "tok.thumb", true
	}
	return "", false
}

func (f fakeChallenges) TLSALPN01(name string) (*tls.Certificate, bool) {
	return f.cert, name == "acme.example"
}

func TestTLSRedirectAndChallenges(t *testing.T) {
	eps := &fakeEndpoints{}
	eps.set("a", backend(t, "a"))
	eps.set("b", backend(t, "b"))
	acmeCert := selfSigned(t, "acme.example")
	p := startProxy(t, eps, fakeChallenges{cert: acmeCert})
	certA, certWild := selfSigned(t, "a.example"), selfSigned(t, "*.wild.example")
	tb := table(
		&routes.VirtualHost{Hostname: "a.example", RedirectToHTTPS: true, Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}},
		&routes.VirtualHost{Hostname: "*.wild.example", Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "b")}},
		&routes.VirtualHost{Hostname: "acme.example", RedirectToHTTPS: true, Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}},
	)
	for _, l := range tb.Listeners {
		if l.Protocol == routes.HTTPS {
			l.Certificates = []*routes.Certificate{{Hosts: []string{"a.example"}, Cert: certA}, {Hosts: []string{"*.wild.example"}, Cert: certWild}}
			for _, h := range l.Hosts {
				h.RedirectToHTTPS = false
			}
		}
	}
	p.Apply(tb)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", p.httpURL("/x?y=1"), nil)
	req.Host = "a.example"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf("https://a.example:%d/x?y=1", p.cfg.HTTPSPort)
	if resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// HTTP-01 is answered before the redirect.
	if code, body := get(t, noRedirect, p.httpURL("/.well-known/acme-challenge/tok"), "acme.example"); code != 200 || body != "tok.thumb" {
		t.Errorf("HTTP-01: %d %q", code, body)
	}
	// SNI.
	addr := fmt.Sprintf("127.0.0.1:%d", p.cfg.HTTPSPort)
	for name, want := range map[string]*tls.Certificate{"a.example": certA, "x.wild.example": certWild, "acme.example": p.fake, "": p.fake} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := conn.ConnectionState().PeerCertificates[0]
		if !bytes.Equal(got.Raw, want.Certificate[0]) {
			t.Errorf("SNI %q: got certificate %v", name, got.DNSNames)
		}
		if conn.ConnectionState().NegotiatedProtocol != "h2" {
			t.Errorf("SNI %q: ALPN %q, want h2", name, conn.ConnectionState().NegotiatedProtocol)
		}
		conn.Close()
	}
	// TLS-ALPN-01.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "acme.example", InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := conn.ConnectionState(); st.NegotiatedProtocol != "acme-tls/1" || !bytes.Equal(st.PeerCertificates[0].Raw, acmeCert.Certificate[0]) {
		t.Errorf("acme-tls/1: %q %v", st.NegotiatedProtocol, st.PeerCertificates[0].DNSNames)
	}
	conn.Close()
	// HTTPS request through h2.
	pool := x509.NewCertPool()
	pool.AddCert(certA.Leaf)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}}
	resp, err = c.Get("https://a.example/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(string(b), "a /hello a.example") {
		t.Errorf("https: %s %q", resp.Proto, b)
	}
}

func TestWebSocketAndH2C(t *testing.T) {
	up := websocket.Upgrader{}
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			_ = c.WriteMessage(mt, m)
		}
	}))
	defer ws.Close()
	h2 := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		fmt.Fprint(w, r.Proto)
		w.Header().Set("Grpc-Status", "0")
	}), Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = h2.Serve(ln) }()
	defer h2.Close()
	eps := &fakeEndpoints{}
	eps.set("ws", ws.Listener.Addr().String())
	eps.set("grpc", ln.Addr().String())
	p := startProxy(t, eps, nil)
	g := route("g", routes.PathPrefix, "/grpc", "grpc")
	g.Backends[0].Protocol = routes.ProtoGRPC
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{route("w", routes.PathPrefix, "/", "ws"), g}}))

	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/echo", p.cfg.HTTPPort), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != m {
			t.Fatalf("echo %q: %q %v", m, got, err)
		}
	}
	c.Close()

	// h2c client (prior knowledge) → proxy → h2c backend, trailers kept.
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Post(p.httpURL("/grpc/x"), "application/grpc", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "HTTP/2.0" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("h2c: %s %q trailer %v", resp.Proto, b, resp.Trailer)
	}
}

func TestFilters(t *testing.T) {
	eps := &fakeEndpoints{}
	eps.set("a", backend(t, "a"))
	p := startProxy(t, eps, nil)
	rw := route("i", routes.PathPrefix, "/old", "a")
	rw.Filters = []routes.Filter{
		{Type: routes.RequestHeaderModifier, RequestHeader: &routes.HeaderModifier{Set: []routes.Header{{Name: "X-Test", Value: "set"}}}},
		{Type: routes.URLRewrite, Rewrite: &routes.Rewrite{Hostname: "rewritten", Path: &routes.PathModifier{Value: "/new", ReplacePrefix: true}}},
		{Type: routes.ResponseHeaderModifier, ResponseHeader: &routes.HeaderModifier{Add: []routes.Header{{Name: "X-Resp", Value: "1"}}}},
	}
	re := regexp.MustCompile(`(?i)^(?:/re(/|$)(.*)).*`)
	rx := &routes.Route{Origin: routes.Origin{Kind: "Ingress"}, Matches: []routes.Match{{PathType: routes.PathRegex, Path: "/re(/|$)(.*)", Regex: re}},
		Backends: []routes.Backend{svcBackend("a")},
		Filters:  []routes.Filter{{Type: routes.URLRewrite, Rewrite: &routes.Rewrite{Path: &routes.PathModifier{RegexTemplate: "/$2x"}}}}}
	rd := route("i", routes.PathExact, "/go", "a")
	rd.Filters = []routes.Filter{{Type: routes.RequestRedirect, Redirect: &routes.Redirect{Scheme: "https", Hostname: "else.where", StatusCode: 301,
		Path: &routes.PathModifier{Value: "/there"}}}}
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{rw, rx, rd}}))
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, body := get(t, c, p.httpURL("/old/x?q"), "h"); code != 200 || body != "a /new/x?q rewritten set" {
		t.Errorf("rewrite: %d %q", code, body)
	}
	if code, body := get(t, c, p.httpURL("/old"), "h"); code != 200 || body != "a /new rewritten set" {
		t.Errorf("rewrite of the prefix itself: %d %q", code, body)
	}
	if code, body := get(t, c, p.httpURL("/RE/abc"), "h"); code != 200 || body != "a /abcx h " {
		t.Errorf("regex rewrite: %d %q", code, body)
	}
	resp, err := c.Get(p.httpURL("/go"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://else.where/there" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAffinityAndWeights(t *testing.T) {
	eps := &fakeEndpoints{}
	eps.set("a", backend(t, "a1"), backend(t, "a2"), backend(t, "a3"))
	p := startProxy(t, eps, nil)
	r := route("i", routes.PathPrefix, "/", "a")
	r.Affinity = &routes.CookieAffinity{Name: "route"}
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{r}}))
	resp, err := http.Get(p.httpURL("/"))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "route" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no affinity cookie: %v", resp.Header)
	}
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("GET", p.httpURL("/"), nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b)[:2] != string(first)[:2] {
			t.Fatalf("affinity lost: %q then %q", first, b)
		}
	}
}

func TestPrefixMatches(t *testing.T) {
	for _, tc := range []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/anything", true}, {"/foo", "/foo", true}, {"/foo", "/foo/", true}, {"/foo", "/foo/bar", true},
		{"/foo", "/foobar", false}, {"/foo/", "/foo", true}, {"/foo/bar", "/foo", false},
	} {
		if got := prefixMatches(tc.prefix, tc.path); got != tc.want {
			t.Errorf("prefix %q path %q: %v", tc.prefix, tc.path, got)
		}
	}
}

// TestContentEncodingPassesThrough: the proxy neither asks backends for gzip
// on a client's behalf nor decompresses what they send.
func TestContentEncodingPassesThrough(t *testing.T) {
	eps := &fakeEndpoints{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ae := r.Header.Get("Accept-Encoding")
		if ae == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, "compressed")
			zw.Close()
			return
		}
		fmt.Fprintf(w, "Accept-Encoding %q", ae)
	}))
	defer srv.Close()
	eps.set("a", srv.Listener.Addr().String())
	p := startProxy(t, eps, nil)
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}}))
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tc := range []struct {
		acceptEncoding, wantEncoding, wantBody string
	}{
		{"", "", `Accept-Encoding ""`},
		{"gzip", "gzip", "compressed"},
	} {
		req, _ := http.NewRequest("GET", p.httpURL("/"), nil)
		if tc.acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", tc.acceptEncoding)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(body)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding"); got != tc.wantEncoding || string(b) != tc.wantBody {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, body %q; want %q, %q", tc.acceptEncoding, got, b, tc.wantEncoding, tc.wantBody)
		}
	}
}
