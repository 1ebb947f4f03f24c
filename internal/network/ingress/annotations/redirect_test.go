package annotations

import (
	"net/http"
	"testing"
)

func TestRedirects(t *testing.T) {
	runMiddleware(t, []middlewareCase{
		{name: "permanent-redirect", ann: map[string]string{"permanent-redirect": "https://new.example/"}, req: request{target: "http://web.example/a?b=1"},
			want: want{status: 301, headers: map[string]string{"Location": "https://new.example/"}}, warnings: []string{}},
		{name: "permanent-redirect with nginx variables", ann: map[string]string{"permanent-redirect": "https://new.example$request_uri"}, req: request{target: "http://web.example/a?b=1"},
			want: want{status: 301, headers: map[string]string{"Location": "https://new.example/a?b=1"}}},
		{name: "permanent-redirect-code", ann: map[string]string{"permanent-redirect": "https://new.example$uri$is_args$args", "permanent-redirect-code": "308"}, req: request{target: "http://web.example/p"},
			want: want{status: 308, headers: map[string]string{"Location": "https://new.example/p"}}},
		{name: "temporal-redirect wins", ann: map[string]string{"permanent-redirect": "https://p.example/", "temporal-redirect": "$scheme://$host:8080/x"},
			req: request{target: "https://web.example:8443/", https: true}, want: want{status: 302, headers: map[string]string{"Location": "https://web.example:8080/x"}}},
		{name: "temporal-redirect-code", ann: map[string]string{"temporal-redirect": "https://t.example/", "temporal-redirect-code": "307"},
			want: want{status: 307, headers: map[string]string{"Location": "https://t.example/"}}},
		{name: "bad code keeps the default", ann: map[string]string{"permanent-redirect": "https://p.example/", "permanent-redirect-code": "200"},
			want: want{status: 301, headers: map[string]string{"Location": "https://p.example/"}}, warnings: []string{"permanent-redirect-code: invalid value"}},
		{name: "relative URL refused", ann: map[string]string{"permanent-redirect": "/elsewhere"}, want: want{status: 200, backend: true},
			warnings: []string{"permanent-redirect: invalid value"}},
		{name: "unknown variable refused", ann: map[string]string{"permanent-redirect": "https://x.example/$cookie_session"}, want: want{status: 200, backend: true},
			warnings: []string{"$cookie_session is not supported"}},
		{name: "redirect before auth and allow list", ann: map[string]string{"permanent-redirect": "https://p.example/", "whitelist-source-range": "10.0.0.1", "auth-type": "basic", "auth-secret": "s"},
			req: request{remote: "192.0.2.9:1"}, want: want{status: 301}},
		{name: "app-root", ann: map[string]string{"app-root": "/app1"}, req: request{target: "http://web.example/"},
			want: want{status: 302, headers: map[string]string{"Location": "http://web.example/app1"}}},
		{name: "app-root keeps the port and scheme", ann: map[string]string{"app-root": "/app1"}, req: request{target: "https://web.example:8443/", https: true},
			want: want{status: 302, headers: map[string]string{"Location": "https://web.example:8443/app1"}}},
		{name: "app-root only for /", ann: map[string]string{"app-root": "/app1"}, req: request{target: "http://web.example/app1/x"},
			want: want{status: 200, backend: true}},
		{name: "app-root must be a path", ann: map[string]string{"app-root": "//evil.example"}, want: want{status: 200, backend: true},
			warnings: []string{"app-root: invalid value"}},
		{name: "upstream-vhost", ann: map[string]string{"upstream-vhost": "internal.svc:8080", "x-forwarded-prefix": "/api"},
			req: request{target: "http://web.example/v"}, want: want{status: 200, backend: true, headers: map[string]string{"X-Backend-Host": "internal.svc:8080", "X-Backend-Prefix": "/api"}}},
		{name: "upstream-vhost invalid", ann: map[string]string{"upstream-vhost": "a b"}, want: want{status: 200, backend: true, headers: map[string]string{"X-Backend-Host": "web.example"}},
			warnings: []string{"upstream-vhost: invalid value"}},
	})
}

func init() {
	inner := backend
	backend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Host", r.Host)
		if p := r.Header.Get("X-Forwarded-Prefix"); p != "" {
			w.Header().Set("X-Backend-Prefix", p)
		}
		inner(w, r)
	})
}
