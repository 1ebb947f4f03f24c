package annotations

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func secretLister(t testing.TB, secrets ...*corev1.Secret) (corelisters.SecretLister, cache.Indexer) {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range secrets {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewSecretLister(idx), idx
}

func secret(ns, name, rv string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv, UID: types.UID("u-" + name)}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// backend answers 200 "backend" and echoes what it saw in headers.
var backend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend-Path", r.URL.RequestURI())
	if a := r.Header.Get("Authorization"); a != "" {
		w.Header().Set("X-Backend-Authorization", a)
	}
	if r.URL.Query().Get("acao") != "" {
		w.Header().Set("Access-Control-Allow-Origin", "https://backend.example")
		w.Header().Set("Strict-Transport-Security", "max-age=1")
	}
	io.WriteString(w, "backend")
})

type request struct {
	method   string
	target   string // default http://web.example/
	https    bool
	remote   string
	headers  map[string]string
	user     string
	password string
}

type want struct {
	status  int
	headers map[string]string // "" : absent
	backend bool
}

func do(t *testing.T, h http.Handler, rq request) *httptest.ResponseRecorder {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	if rq.target == "" {
		rq.target = "http://web.example/"
	}
	r := httptest.NewRequest(rq.method, rq.target, nil)
	if rq.https {
		r.TLS = &tls.ConnectionState{}
	}
	if rq.remote != "" {
		r.RemoteAddr = rq.remote
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	if rq.user != "" {
		r.SetBasicAuth(rq.user, rq.password)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func check(t *testing.T, rec *httptest.ResponseRecorder, w want) {
	t.Helper()
	if rec.Code != w.status {
		t.Errorf("status %d, want %d (body %q)", rec.Code, w.status, rec.Body.String())
	}
	if got := rec.Body.String() == "backend"; got != w.backend {
		t.Errorf("backend reached: %v, want %v (body %q)", got, w.backend, rec.Body.String())
	}
	for k, v := range w.headers {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
		if v != "" && len(rec.Header().Values(k)) != 1 {
			t.Errorf("header %s has several values: %q", k, rec.Header().Values(k))
		}
	}
}

type middlewareCase struct {
	name     string
	ann      map[string]string
	cfg      Config
	req      request
	want     want
	warnings []string // checked when non-nil
}

func runMiddleware(t *testing.T, tests []middlewareCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, _, warnings := New(tt.cfg).Parse(ingress(tt.ann))
			if tt.warnings != nil {
				checkWarnings(t, warnings, tt.warnings)
			}
			h := http.Handler(backend)
			if mw != nil {
				h = mw(backend)
			}
			check(t, do(t, h, tt.req), tt.want)
		})
	}
}

func TestForceSSLRedirect(t *testing.T) {
	force := map[string]string{"force-ssl-redirect": "true"}
	runMiddleware(t, []middlewareCase{
		{name: "plain http redirected with 308", ann: force, req: request{target: "http://web.example/a/b?x=1"},
			want: want{status: 308, headers: map[string]string{"Location": "https://web.example/a/b?x=1"}}},
		{name: "the proxy's https port", ann: force, cfg: Config{HTTPSPort: 8443}, req: request{target: "http://web.example:8080/a"},
			want: want{status: 308, headers: map[string]string{"Location": "https://web.example:8443/a"}}},
		{name: "port 443 omitted", ann: force, cfg: Config{HTTPSPort: 443}, req: request{target: "http://web.example:80/"},
			want: want{status: 308, headers: map[string]string{"Location": "https://web.example/"}}},
		{name: "IPv6 host", ann: force, cfg: Config{HTTPSPort: 8443}, req: request{target: "http://[2001:db8::1]:8080/"},
			want: want{status: 308, headers: map[string]string{"Location": "https://[2001:db8::1]:8443/"}}},
		{name: "https passes", ann: force, req: request{https: true}, want: want{status: 200, backend: true}},
		{name: "ACME HTTP-01 never redirected", ann: force, req: request{target: "http://web.example/.well-known/acme-challenge/tok"},
			want: want{status: 200, backend: true}},
		{name: "ssl-redirect alone is the translator's (no middleware)", ann: map[string]string{"ssl-redirect": "true"},
			want: want{status: 200, backend: true}},
		{name: "force-ssl-redirect false", ann: map[string]string{"force-ssl-redirect": "false"}, want: want{status: 200, backend: true}},
	})
}

func TestSourceRange(t *testing.T) {
	allow := map[string]string{"whitelist-source-range": "10.0.0.0/8, 192.168.1.7,2001:db8::/32"}
	runMiddleware(t, []middlewareCase{
		{name: "allowed network", ann: allow, req: request{remote: "10.1.2.3:5555"}, want: want{status: 200, backend: true}, warnings: []string{}},
		{name: "allowed address", ann: allow, req: request{remote: "192.168.1.7:5555"}, want: want{status: 200, backend: true}},
		{name: "allowed IPv6", ann: allow, req: request{remote: "[2001:db8:1::5]:5555"}, want: want{status: 200, backend: true}},
		{name: "IPv4-mapped IPv6 client", ann: allow, req: request{remote: "[::ffff:10.9.9.9]:5555"}, want: want{status: 200, backend: true}},
		{name: "other client denied 403", ann: allow, req: request{remote: "192.168.1.8:5555"}, want: want{status: 403}},
		{name: "allowlist-source-range", ann: map[string]string{"allowlist-source-range": "127.0.0.1/32"}, req: request{remote: "127.0.0.1:1"}, want: want{status: 200, backend: true}},
		{name: "allowlist-source-range denies", ann: map[string]string{"allowlist-source-range": "127.0.0.1/32"}, req: request{remote: "127.0.0.2:1"}, want: want{status: 403}},
		{name: "allowlist wins over whitelist", ann: map[string]string{"allowlist-source-range": "127.0.0.1", "whitelist-source-range": "0.0.0.0/0"},
			req: request{remote: "10.0.0.1:1"}, want: want{status: 403}, warnings: []string{"allowlist-source-range is set and takes precedence"}},
		{name: "invalid entries skipped", ann: map[string]string{"whitelist-source-range": "10.0.0.0/33,10.0.0.0/8"}, req: request{remote: "10.0.0.1:1"},
			want: want{status: 200, backend: true}, warnings: []string{`whitelist-source-range: invalid value "10.0.0.0/33"`}},
		{name: "nothing valid denies everybody", ann: map[string]string{"whitelist-source-range": "everyone"}, req: request{remote: "10.0.0.1:1"},
			want: want{status: 403}, warnings: []string{"invalid value", "every client is denied"}},
		{name: "deny list", ann: map[string]string{"denylist-source-range": "10.0.0.0/8"}, req: request{remote: "10.0.0.1:1"}, want: want{status: 403}},
		{name: "deny list lets others through", ann: map[string]string{"denylist-source-range": "10.0.0.0/8"}, req: request{remote: "11.0.0.1:1"}, want: want{status: 200, backend: true}},
		{name: "deny within allow", ann: map[string]string{"whitelist-source-range": "10.0.0.0/8", "denylist-source-range": "10.0.0.0/24"},
			req: request{remote: "10.0.0.1:1"}, want: want{status: 403}},
	})
}

func TestHSTS(t *testing.T) {
	sts := "Strict-Transport-Security"
	runMiddleware(t, []middlewareCase{
		{name: "havre.io/hsts true", ann: map[string]string{"havre.io/hsts": "true"}, req: request{https: true},
			want: want{status: 200, backend: true, headers: map[string]string{sts: "max-age=31536000; includeSubDomains"}}},
		{name: "not on plain http", ann: map[string]string{"havre.io/hsts": "true"},
			want: want{status: 200, backend: true, headers: map[string]string{sts: ""}}},
		{name: "havre.io/hsts value", ann: map[string]string{"havre.io/hsts": "max-age=600; preload"}, req: request{https: true},
			want: want{status: 200, backend: true, headers: map[string]string{sts: "max-age=600; preload"}}},
		{name: "replaces the backend's", ann: map[string]string{"havre.io/hsts": "true"}, req: request{https: true, target: "https://web.example/?acao=1"},
			want: want{status: 200, backend: true, headers: map[string]string{sts: "max-age=31536000; includeSubDomains"}}},
		{name: "nginx hsts keys", ann: map[string]string{"hsts": "true", "hsts-max-age": "300", "hsts-include-subdomains": "false", "hsts-preload": "true"}, req: request{https: true},
			want: want{status: 200, backend: true, headers: map[string]string{sts: "max-age=300; preload"}}},
		{name: "nginx hsts defaults", ann: map[string]string{"hsts": "true"}, req: request{https: true},
			want: want{status: 200, backend: true, headers: map[string]string{sts: "max-age=31536000; includeSubDomains"}}},
		{name: "havre.io/hsts false wins", ann: map[string]string{"havre.io/hsts": "false", "hsts": "true"}, req: request{https: true},
			want: want{status: 200, backend: true, headers: map[string]string{sts: ""}}},
	})
}

func TestCORS(t *testing.T) {
	on := map[string]string{"enable-cors": "true"}
	list := map[string]string{"enable-cors": "true", "cors-allow-origin": "https://app.example, https://*.example.org:8443"}
	preflight := func(origin string) request {
		return request{method: http.MethodOptions, headers: map[string]string{"Origin": origin, "Access-Control-Request-Method": "PUT"}}
	}
	defaults := map[string]string{
		"Access-Control-Allow-Origin":      "*",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, PUT, POST, DELETE, PATCH, OPTIONS",
		"Access-Control-Allow-Headers":     "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
		"Access-Control-Max-Age":           "1728000",
		"Access-Control-Expose-Headers":    "",
	}
	runMiddleware(t, []middlewareCase{
		{name: "defaults on a GET", ann: on, req: request{headers: map[string]string{"Origin": "https://any.example"}}, want: want{status: 200, backend: true, headers: defaults}},
		{name: "defaults on a preflight", ann: on, req: preflight("https://any.example"), want: want{status: 204, headers: defaults}},
		{name: "the backend's header replaced", ann: on, req: request{target: "http://web.example/?acao=1", headers: map[string]string{"Origin": "https://x.example"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": "*"}}},
		{name: "listed origin echoed", ann: list, req: request{headers: map[string]string{"Origin": "https://app.example"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": "https://app.example"}}},
		{name: "listed origin case-insensitive", ann: list, req: request{headers: map[string]string{"Origin": "https://APP.example"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": "https://APP.example"}}},
		{name: "wildcard subdomain", ann: list, req: preflight("https://api.example.org:8443"),
			want: want{status: 204, headers: map[string]string{"Access-Control-Allow-Origin": "https://api.example.org:8443"}}},
		{name: "wildcard is one label", ann: list, req: request{headers: map[string]string{"Origin": "https://a.b.example.org:8443"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": ""}}},
		{name: "no suffix trick", ann: list, req: request{headers: map[string]string{"Origin": "https://app.example.evil"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": ""}}},
		{name: "other origin: no headers", ann: list, req: request{headers: map[string]string{"Origin": "https://evil.example"}},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}}},
		{name: "other origin's OPTIONS goes to the backend", ann: list, req: preflight("https://evil.example"), want: want{status: 200, backend: true}},
		{name: "custom values", ann: map[string]string{"enable-cors": "true", "cors-allow-methods": "GET, POST", "cors-allow-headers": "X-Token, Content-Type",
			"cors-expose-headers": "X-Total, X-Page", "cors-allow-credentials": "false", "cors-max-age": "600"},
			req: preflight("https://a.example"),
			want: want{status: 204, headers: map[string]string{"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "X-Token, Content-Type",
				"Access-Control-Expose-Headers": "X-Total, X-Page", "Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "600"}}},
		{name: "invalid origin ignored", ann: map[string]string{"enable-cors": "true", "cors-allow-origin": "javascript:alert(1), https://ok.example"},
			req: request{headers: map[string]string{"Origin": "https://ok.example"}}, warnings: []string{"cors-allow-origin: invalid value"},
			want: want{status: 200, backend: true, headers: map[string]string{"Access-Control-Allow-Origin": "https://ok.example"}}},
		{name: "invalid methods keep the default", ann: map[string]string{"enable-cors": "true", "cors-allow-methods": "GET; rm -rf"},
			req: preflight("https://a.example"), warnings: []string{"cors-allow-methods: invalid value"},
			want: want{status: 204, headers: map[string]string{"Access-Control-Allow-Methods": "GET, PUT, POST, DELETE, PATCH, OPTIONS"}}},
		{name: "preflight answered before auth", ann: map[string]string{"enable-cors": "true", "auth-type": "basic", "auth-secret": "missing"},
			req: preflight("https://a.example"), want: want{status: 204}},
	})
}

func TestBasicAuth(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("p@ss word"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := strings.Join([]string{
		"# users",
		"bob:" + string(bc),
		"apr:$apr1$saltsalt$11QAx5Oiaores.cTy1Ple.",
		"md5:$1$saltsalt$udhjyzAR8DFF1nZeQyefc/",
		"sha256:$5$saltsalt$xT/mmNsB7RkfxwWivwoAAuhS8/HYXy7f5BbVNc.I2UA",
		"sha512:$6$saltsalt$rHbw6H85dPLwWyAejtsT7gFv4MivikOUnBq0j/bHstEdzTUmB2yzY3O2Hk0HiFiskcuGvrOLwmNHBrDZLstZ50",
		"sha1:{SHA}sBKkJl3+0/ZJlTnZyV6He0ZjMq0=",
		"ssha:{SSHA}a9NGeSmizcqhYsMSr37nYsWwpLMBAgME",
		"plain:{PLAIN}p@ss word",
		"commented:{PLAIN}p@ss word:the comment nginx allows",
		"",
	}, "\r\n")
	lister, _ := secretLister(t,
		secret("app", "basic", "1", map[string]string{"auth": htpasswd}),
		secret("app", "map", "1", map[string]string{"alice": "{PLAIN}wonder", "bob": string(bc)}),
		secret("app", "noauth", "1", map[string]string{"users": "x"}),
		secret("app", "des", "1", map[string]string{"auth": "old:abJnggxhB/yWI\nok:{PLAIN}ok\n"}),
		secret("other", "basic", "1", map[string]string{"auth": htpasswd}),
	)
	cfg := Config{Secrets: lister}
	basic := map[string]string{"auth-type": "basic", "auth-secret": "basic", "auth-realm": `Authentication Required - "web"`}
	challenge := map[string]string{"WWW-Authenticate": `Basic realm="Authentication Required - \"web\""`}
	tests := []middlewareCase{
		{name: "no credentials", ann: basic, cfg: cfg, want: want{status: 401, headers: challenge}, warnings: []string{}},
		{name: "unknown user", ann: basic, cfg: cfg, req: request{user: "eve", password: "p@ss word"}, want: want{status: 401, headers: challenge}},
		{name: "wrong password", ann: basic, cfg: cfg, req: request{user: "bob", password: "nope"}, want: want{status: 401, headers: challenge}},
		{name: "default realm", ann: map[string]string{"auth-type": "basic", "auth-secret": "basic"}, cfg: cfg,
			want: want{status: 401, headers: map[string]string{"WWW-Authenticate": `Basic realm=""`}}},
		{name: "namespace/name in the Ingress's namespace", ann: map[string]string{"auth-type": "basic", "auth-secret": "app/basic"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 200, backend: true}},
		{name: "Secret of another namespace refused", ann: map[string]string{"auth-type": "basic", "auth-secret": "other/basic"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 503}, warnings: []string{"not in the Ingress's namespace"}},
		{name: "missing Secret", ann: map[string]string{"auth-type": "basic", "auth-secret": "gone"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 503}, warnings: []string{`"gone" not found`}},
		{name: "no key auth", ann: map[string]string{"auth-type": "basic", "auth-secret": "noauth"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 503}, warnings: []string{`has no key "auth"`}},
		{name: "no lister", ann: basic, req: request{user: "bob", password: "p@ss word"}, want: want{status: 503}, warnings: []string{"no Secret lister"}},
		{name: "digest not supported: denied", ann: map[string]string{"auth-type": "digest", "auth-secret": "basic"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 503}, warnings: []string{"digest is not supported"}},
		{name: "no auth-secret: denied", ann: map[string]string{"auth-type": "basic"}, cfg: cfg, want: want{status: 503}, warnings: []string{"auth-secret: missing"}},
		{name: "auth-map", ann: map[string]string{"auth-type": "basic", "auth-secret": "map", "auth-secret-type": "auth-map"}, cfg: cfg,
			req: request{user: "alice", password: "wonder"}, want: want{status: 200, backend: true}},
		{name: "auth-map bcrypt", ann: map[string]string{"auth-type": "basic", "auth-secret": "map", "auth-secret-type": "auth-map"}, cfg: cfg,
			req: request{user: "bob", password: "p@ss word"}, want: want{status: 200, backend: true}},
		{name: "bad auth-secret-type", ann: map[string]string{"auth-type": "basic", "auth-secret": "map", "auth-secret-type": "ldap"}, cfg: cfg,
			want: want{status: 503}, warnings: []string{"auth-secret-type: invalid value"}},
		{name: "DES crypt reported, other users work", ann: map[string]string{"auth-type": "basic", "auth-secret": "des"}, cfg: cfg,
			req: request{user: "ok", password: "ok"}, want: want{status: 200, backend: true}, warnings: []string{"line 1: unsupported password hash"}},
	}
	for _, user := range []string{"bob", "apr", "md5", "sha256", "sha512", "sha1", "ssha", "plain", "commented"} {
		tests = append(tests,
			middlewareCase{name: "hash " + user, ann: basic, cfg: cfg, req: request{user: user, password: "p@ss word"},
				want: want{status: 200, backend: true, headers: map[string]string{"X-Backend-Authorization": "Basic " + basicCreds(user, "p@ss word")}}},
			middlewareCase{name: "hash " + user + " wrong password", ann: basic, cfg: cfg, req: request{user: user, password: "p@ss wore"}, want: want{status: 401}})
	}
	runMiddleware(t, tests)
}

func basicCreds(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// A changed Secret is read again (by resourceVersion), with no new Parse.
func TestBasicAuthSecretChange(t *testing.T) {
	lister, idx := secretLister(t, secret("app", "basic", "1", map[string]string{"auth": "u:{PLAIN}one"}))
	p := New(Config{Secrets: lister})
	mw, _, _ := p.Parse(ingress(map[string]string{"auth-type": "basic", "auth-secret": "basic"}))
	h := mw(backend)
	check(t, do(t, h, request{user: "u", password: "one"}), want{status: 200, backend: true})
	if err := idx.Update(secret("app", "basic", "2", map[string]string{"auth": "u:{PLAIN}two"})); err != nil {
		t.Fatal(err)
	}
	check(t, do(t, h, request{user: "u", password: "one"}), want{status: 401})
	check(t, do(t, h, request{user: "u", password: "two"}), want{status: 200, backend: true})
	if err := idx.Delete(secret("app", "basic", "2", nil)); err != nil {
		t.Fatal(err)
	}
	check(t, do(t, h, request{user: "u", password: "two"}), want{status: 503})
}

func TestVerifyHash(t *testing.T) {
	tests := []struct {
		hash, pass string
		ok         bool
	}{
		{"$5$rounds=1200$abc$sK9scCSCzVUrykLvXlo/XO0R.pJys6UjhMt7Llt.UN9", "p@ss word", true},
		{"$6$rounds=1000$abc$.lCbCGTNcLarNQXA3s3q7719qvVaRPKO9Vk0eJkvp61mb1jeyeURcpRyvSnGCmL8te4xRzQyNRi/WOfBIlmRY0", "p@ss word", true},
		{"$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD.", "", true},
		{"$5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/", strings.Repeat("x", 70), true},
		{"$1$abc$FoNte5ujhRkvOF4h1f0/u1", strings.Repeat("x", 70), true},
		{"$5$toolongsaltstrin$37tCxOq5xshRncIKBOJ8buhNCuZ0PBFBUwb3XaEPn08", "secret", true},
		{"$5$abc$5ox4QOf8XoCKLSxoCXvmgZ1th6KC4nDv0o9/Fj2v2E/", strings.Repeat("x", 69), false},
		{"{SSHA}a9NGeSmizcqhYsMSr37nYsWwpLMBAgME", "p@ss word", true},
		{"{SSHA}!!", "p@ss word", false},
		{"abJnggxhB/yWI", "test", false},
	}
	for _, tt := range tests {
		if got := verifyHash(tt.hash, tt.pass); got != tt.ok {
			t.Errorf("verifyHash(%s, %q) = %v, want %v", tt.hash, tt.pass, got, tt.ok)
		}
	}
	// Costs that would tie the proxy up are refused when the Secret is read.
	for _, h := range []string{"$5$rounds=5000000$abc$x", "$2a$15$" + strings.Repeat("a", 53)} {
		if supportedHash(h) {
			t.Errorf("%s accepted", h)
		}
	}
}

// The response writer wrapper keeps streaming and protocol upgrades
// working through a reverse proxy (WebSockets behind CORS and HSTS).
func TestMiddlewareKeepsUpgradesAndFlushes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			fmt.Fprint(brw, "echo: "+line)
			brw.Flush()
			return
		}
		fmt.Fprint(w, "first\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	mw, _, _ := New(Config{}).Parse(ingress(map[string]string{"enable-cors": "true", "havre.io/hsts": "true"}))
	front := httptest.NewTLSServer(mw(httputil.NewSingleHostReverseProxy(u)))
	defer front.Close()

	// Upgrade.
	conn, err := tls.Dial("tcp", front.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: web.example\r\nOrigin: https://a.example\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("upgrade response %d %v", resp.StatusCode, resp.Header)
	}
	fmt.Fprint(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("echo %q %v", line, err)
	}

	// Streaming: the first chunk arrives while the backend still holds the response.
	c := front.Client()
	r, err := c.Get(front.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	line, err := bufio.NewReader(r.Body).ReadString('\n')
	if err != nil || line != "first\n" || r.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("stream %q %v %v", line, err, r.Header)
	}
}

func TestBcryptLongPassword(t *testing.T) {
	long := strings.Repeat("a", 80)
	h, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !verifyHash(string(h), long) || verifyHash(string(h), long[:71]) {
		t.Error("a password longer than 72 bytes is checked on its first 72, as crypt(3)")
	}
}

// Headers are set on a response whose handler wrote nothing, on errors,
// and replace the backend's.
func TestHeadersOnEveryResponse(t *testing.T) {
	mw, _, _ := New(Config{}).Parse(ingress(map[string]string{"enable-cors": "true", "havre.io/hsts": "true"}))
	for name, h := range map[string]http.Handler{
		"empty":   http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		"error":   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) }),
		"flushed": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NewResponseController(w).Flush() }),
		"backend's": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=0")
			w.Header().Add("Access-Control-Allow-Origin", "https://other.example")
			w.WriteHeader(200)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(mw(h))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Origin", "https://a.example")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != "max-age=31536000; includeSubDomains" {
				t.Errorf("HSTS %q", got)
			}
			if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
		})
	}
}

func TestSatisfy(t *testing.T) {
	lister, _ := secretLister(t, secret("app", "basic", "1", map[string]string{"auth": "u:{PLAIN}pw"}))
	cfg := Config{Secrets: lister}
	ann := func(satisfy string) map[string]string {
		m := map[string]string{"whitelist-source-range": "10.0.0.0/8", "auth-type": "basic", "auth-secret": "basic"}
		if satisfy != "" {
			m["satisfy"] = satisfy
		}
		return m
	}
	inside, outside := "10.0.0.1:1", "192.0.2.1:1"
	runMiddleware(t, []middlewareCase{
		{name: "any: an allowed address needs no credentials", ann: ann("any"), cfg: cfg, req: request{remote: inside}, want: want{status: 200, backend: true}, warnings: []string{}},
		{name: "any: others must authenticate", ann: ann("any"), cfg: cfg, req: request{remote: outside}, want: want{status: 401}},
		{name: "any: others with credentials", ann: ann("any"), cfg: cfg, req: request{remote: outside, user: "u", password: "pw"}, want: want{status: 200, backend: true}},
		{name: "all (default): an allowed address must authenticate", ann: ann(""), cfg: cfg, req: request{remote: inside}, want: want{status: 401}},
		{name: "all: credentials from elsewhere are refused", ann: ann("all"), cfg: cfg, req: request{remote: outside, user: "u", password: "pw"}, want: want{status: 403}},
		{name: "all: both", ann: ann("all"), cfg: cfg, req: request{remote: inside, user: "u", password: "pw"}, want: want{status: 200, backend: true}},
		{name: "invalid satisfy is all", ann: ann("either"), cfg: cfg, req: request{remote: inside}, want: want{status: 401}, warnings: []string{"satisfy: invalid value"}},
	})
}

// Client certificate authentication is not supported: the Ingress's
// routes are refused rather than served unprotected.
func TestAuthTLSFailsClosed(t *testing.T) {
	runMiddleware(t, []middlewareCase{
		{name: "auth-tls-secret", ann: map[string]string{"auth-tls-secret": "ns/ca", "auth-tls-verify-depth": "1"}, req: request{https: true},
			want: want{status: 503}, warnings: []string{"auth-tls-verify-depth is not supported", "client certificate authentication is not supported by Havre: requests are denied (503)"}},
		{name: "optional is denied too", ann: map[string]string{"auth-tls-secret": "ns/ca", "auth-tls-verify-client": "optional"}, req: request{https: true},
			want: want{status: 503}},
		{name: "verification off", ann: map[string]string{"auth-tls-secret": "ns/ca", "auth-tls-verify-client": "off"}, req: request{https: true},
			want: want{status: 200, backend: true}, warnings: []string{"auth-tls-secret: client certificate authentication is not supported by Havre (ignored: auth-tls-verify-client is off)"}},
	})
}
