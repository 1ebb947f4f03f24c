package annotations

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

func TestExternalAuth(t *testing.T) {
	var mu sync.Mutex
	var seen *http.Request
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Clone(r.Context())
		mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("X-Auth-Request-User", "alice")
			w.Header().Set("X-Auth-Request-Email", "alice@example.com")
			w.WriteHeader(http.StatusAccepted)
		case "Bearer nobody":
			w.WriteHeader(http.StatusOK)
		case "Bearer forbidden":
			w.WriteHeader(http.StatusForbidden)
		case "Bearer broken":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="sso"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer auth.Close()
	cfg := Config{AuthClient: auth.Client()}
	base := map[string]string{"auth-url": auth.URL + "/oauth2/auth", "auth-response-headers": "X-Auth-Request-User, X-Auth-Request-Email"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tokenReq := func(token string) request {
		return request{target: "http://web.example/app?x=1", headers: map[string]string{"Authorization": "Bearer " + token}}
	}
	echoUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend-User", r.Header.Get("X-Auth-Request-User"))
			next.ServeHTTP(w, r)
		})
	}
	tests := []struct {
		name     string
		ann      map[string]string
		cfg      *Config
		req      request
		want     want
		warnings []string
		check    func(t *testing.T, r *http.Request)
	}{
		{name: "2xx lets the request through with the auth-response-headers", ann: base, req: tokenReq("good"),
			want: want{status: 200, backend: true, headers: map[string]string{"X-Backend-User": "alice"}}, warnings: []string{},
			check: func(t *testing.T, r *http.Request) {
				h := map[string]string{
					"X-Original-Url": "http://web.example/app?x=1", "X-Original-Method": "GET", "X-Sent-From": "nginx-ingress-controller",
					"X-Real-Ip": "192.0.2.1", "X-Forwarded-For": "192.0.2.1", "X-Auth-Request-Redirect": "/app?x=1", "Authorization": "Bearer good",
				}
				for k, v := range h {
					if got := r.Header.Get(k); got != v {
						t.Errorf("auth request header %s = %q, want %q", k, got, v)
					}
				}
				if r.Method != "GET" || r.URL.Path != "/oauth2/auth" {
					t.Errorf("auth request %s %s", r.Method, r.URL)
				}
			}},
		{name: "a forged response header is removed", ann: base,
			req:  request{headers: map[string]string{"Authorization": "Bearer nobody", "X-Auth-Request-User": "root"}},
			want: want{status: 200, backend: true, headers: map[string]string{"X-Backend-User": ""}}},
		{name: "401 with the service's challenge", ann: base, req: tokenReq("bad"),
			want: want{status: 401, headers: map[string]string{"WWW-Authenticate": `Bearer realm="sso"`}}},
		{name: "401 with auth-signin redirects", ann: with(map[string]string{"auth-signin": "https://$host/oauth2/start"}), req: tokenReq("bad"),
			want: want{status: 302, headers: map[string]string{"Location": "https://web.example/oauth2/start?rd=" + url.QueryEscape("http://web.example/app?x=1")}}},
		{name: "auth-signin with a query and its own parameter name", ann: with(map[string]string{"auth-signin": "https://sso.example/start?a=b", "auth-signin-redirect-param": "return"}),
			req:  tokenReq("bad"),
			want: want{status: 302, headers: map[string]string{"Location": "https://sso.example/start?a=b&return=" + url.QueryEscape("http://web.example/app?x=1")}}},
		{name: "403", ann: base, req: tokenReq("forbidden"), want: want{status: 403}},
		{name: "other status: 500", ann: base, req: tokenReq("broken"), want: want{status: 500}},
		{name: "auth-method", ann: with(map[string]string{"auth-method": "POST"}), req: tokenReq("good"), want: want{status: 200, backend: true},
			check: func(t *testing.T, r *http.Request) {
				if r.Method != "POST" {
					t.Errorf("method %s", r.Method)
				}
			}},
		{name: "variables in auth-url", ann: map[string]string{"auth-url": auth.URL + "/check?uri=$escaped_request_uri"}, req: tokenReq("good"), want: want{status: 200, backend: true},
			check: func(t *testing.T, r *http.Request) {
				if got := r.URL.Query().Get("uri"); got != "/app?x=1" {
					t.Errorf("uri %q", got)
				}
			}},
		{name: "invalid auth-url denies", ann: map[string]string{"auth-url": "/relative"}, req: tokenReq("good"), want: want{status: 503},
			warnings: []string{"auth-url: invalid value"}},
		{name: "auth-signin without auth-url", ann: map[string]string{"auth-signin": "https://x.example/"}, want: want{status: 200, backend: true},
			warnings: []string{"auth-signin: no auth-url"}},
		{name: "the default client refuses loopback", ann: base, cfg: &Config{}, req: tokenReq("good"), want: want{status: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg != nil {
				c = *tt.cfg
			}
			mw, _, warnings := New(c).Parse(ingress(tt.ann))
			if tt.warnings != nil {
				checkWarnings(t, warnings, tt.warnings)
			}
			mu.Lock()
			seen = nil
			mu.Unlock()
			h := echoUser(backend)
			if mw != nil {
				h = mw(h)
			}
			check(t, do(t, h, tt.req), tt.want)
			if tt.check != nil {
				mu.Lock()
				r := seen
				mu.Unlock()
				if r == nil {
					t.Fatal("auth service not called")
				}
				tt.check(t, r)
			}
		})
	}
}
