package annotations

import (
	"reflect"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func ingress(ann map[string]string) *networkingv1.Ingress {
	full := map[string]string{}
	for k, v := range ann {
		if !strings.Contains(k, "/") {
			k = NginxPrefix + k
		}
		full[k] = v
	}
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web", Annotations: full}}
}

func boolp(b bool) *bool { return &b }

func TestParseTuning(t *testing.T) {
	def := RouteTuning{Retries: -1}
	with := func(f func(*RouteTuning)) RouteTuning {
		t := def
		f(&t)
		return t
	}
	tests := []struct {
		name     string
		ann      map[string]string
		want     RouteTuning
		warnings []string // substrings, in order
		mw       bool
	}{
		{name: "none", want: def},
		{name: "foreign annotations are not ours", ann: map[string]string{"kubernetes.io/ingress.class": "nginx", "cert-manager.io/cluster-issuer": "le"}, want: def},
		{name: "ssl-redirect false", ann: map[string]string{"ssl-redirect": "false"}, want: with(func(t *RouteTuning) { t.SSLRedirect = boolp(false) })},
		{name: "ssl-redirect true", ann: map[string]string{"ssl-redirect": "true"}, want: with(func(t *RouteTuning) { t.SSLRedirect = boolp(true) })},
		{name: "ssl-redirect invalid", ann: map[string]string{"ssl-redirect": "yes please"}, want: def, warnings: []string{`ssl-redirect: invalid value "yes please"`}},
		{name: "force-ssl-redirect", ann: map[string]string{"force-ssl-redirect": "true"}, want: with(func(t *RouteTuning) { t.ForceSSLRedirect = true }), mw: true},
		{name: "use-regex", ann: map[string]string{"use-regex": "true"}, want: with(func(t *RouteTuning) { t.UseRegex = true })},
		{name: "rewrite-target implies regex", ann: map[string]string{"rewrite-target": "/$2"}, want: with(func(t *RouteTuning) { t.UseRegex, t.RewriteTarget = true, "/$2" })},
		{name: "rewrite-target braces", ann: map[string]string{"rewrite-target": "/api/${1}/x"}, want: with(func(t *RouteTuning) { t.UseRegex, t.RewriteTarget = true, "/api/${1}/x" })},
		{name: "rewrite-target nginx variable refused", ann: map[string]string{"rewrite-target": "/$host/x"}, want: def, warnings: []string{"rewrite-target: invalid value"}},
		{name: "rewrite-target redirect refused", ann: map[string]string{"rewrite-target": "https://evil/"}, want: def, warnings: []string{"rewrite-target: invalid value"}},
		{name: "backend-protocol GRPC", ann: map[string]string{"backend-protocol": "GRPC"}, want: with(func(t *RouteTuning) { t.BackendProtocol = routes.ProtoGRPC })},
		{name: "backend-protocol https lower case", ann: map[string]string{"backend-protocol": "https"}, want: with(func(t *RouteTuning) { t.BackendProtocol = routes.ProtoHTTPS })},
		{name: "backend-protocol GRPCS", ann: map[string]string{"backend-protocol": "GRPCS"}, want: with(func(t *RouteTuning) { t.BackendProtocol = routes.ProtoGRPCS })},
		{name: "backend-protocol AUTO_HTTP", ann: map[string]string{"backend-protocol": "AUTO_HTTP"}, want: with(func(t *RouteTuning) { t.BackendProtocol = routes.ProtoHTTP1 })},
		{name: "backend-protocol FCGI", ann: map[string]string{"backend-protocol": "FCGI"}, want: def, warnings: []string{"FCGI is not supported"}},
		{name: "backend-protocol junk", ann: map[string]string{"backend-protocol": "SPDY"}, want: def, warnings: []string{"backend-protocol: invalid value"}},
		{name: "proxy-body-size 8m", ann: map[string]string{"proxy-body-size": "8m"}, want: with(func(t *RouteTuning) { t.MaxBodyBytes = 8 << 20 })},
		{name: "proxy-body-size 512K", ann: map[string]string{"proxy-body-size": "512K"}, want: with(func(t *RouteTuning) { t.MaxBodyBytes = 512 << 10 })},
		{name: "proxy-body-size 1g", ann: map[string]string{"proxy-body-size": "1g"}, want: with(func(t *RouteTuning) { t.MaxBodyBytes = 1 << 30 })},
		{name: "proxy-body-size bytes", ann: map[string]string{"proxy-body-size": "1000"}, want: with(func(t *RouteTuning) { t.MaxBodyBytes = 1000 })},
		{name: "proxy-body-size 0 is unlimited", ann: map[string]string{"proxy-body-size": "0"}, want: with(func(t *RouteTuning) { t.MaxBodyBytes = -1 })},
		{name: "proxy-body-size junk", ann: map[string]string{"proxy-body-size": "8 MB"}, want: def, warnings: []string{"proxy-body-size: invalid value"}},
		{name: "timeouts", ann: map[string]string{"proxy-read-timeout": "3600", "proxy-connect-timeout": "5s"}, want: with(func(t *RouteTuning) { t.ReadTimeout, t.ConnectTimeout = time.Hour, 5*time.Second })},
		{name: "timeout invalid", ann: map[string]string{"proxy-read-timeout": "-1"}, want: def, warnings: []string{"proxy-read-timeout: invalid value"}},
		{name: "next-upstream-tries", ann: map[string]string{"proxy-next-upstream-tries": "3"}, want: with(func(t *RouteTuning) { t.Retries = 2 })},
		{name: "next-upstream-tries 1: no retry", ann: map[string]string{"proxy-next-upstream-tries": "1"}, want: with(func(t *RouteTuning) { t.Retries = 0 })},
		{name: "next-upstream-tries 0: the proxy's bound", ann: map[string]string{"proxy-next-upstream-tries": "0"}, want: def},
		{name: "affinity defaults", ann: map[string]string{"affinity": "cookie"}, want: with(func(t *RouteTuning) { t.Affinity = &routes.CookieAffinity{Name: "INGRESSCOOKIE"} })},
		{name: "affinity full", ann: map[string]string{"affinity": "cookie", "affinity-mode": "persistent", "session-cookie-name": "route", "session-cookie-path": "/app", "session-cookie-max-age": "172800"},
			want: with(func(t *RouteTuning) {
				t.Affinity = &routes.CookieAffinity{Name: "route", Path: "/app", MaxAge: 48 * time.Hour}
			})},
		{name: "affinity expires", ann: map[string]string{"affinity": "cookie", "session-cookie-expires": "60"}, want: with(func(t *RouteTuning) { t.Affinity = &routes.CookieAffinity{Name: "INGRESSCOOKIE", MaxAge: time.Minute} })},
		{name: "affinity bad name", ann: map[string]string{"affinity": "cookie", "session-cookie-name": "a;b"}, want: with(func(t *RouteTuning) { t.Affinity = &routes.CookieAffinity{Name: "INGRESSCOOKIE"} }), warnings: []string{"session-cookie-name: invalid value"}},
		{name: "affinity other kind", ann: map[string]string{"affinity": "ip"}, want: def, warnings: []string{`affinity: invalid value "ip"`}},
		{name: "snippets are never applied", ann: map[string]string{"configuration-snippet": "more_set_headers x", "server-snippet": "location / {}"}, want: def,
			warnings: []string{"configuration-snippet: snippets are never applied", "server-snippet: snippets are never applied"}},
		{name: "unknown nginx annotation", ann: map[string]string{"proxy-ssl-verify": "on", "mirror-target": "x"}, want: def,
			warnings: []string{"mirror-target is not supported by Havre", "proxy-ssl-verify is not supported by Havre"}},
		{name: "canary Ingress not served", ann: map[string]string{"canary": "true", "canary-weight": "10"},
			want: with(func(t *RouteTuning) {
				t.NotServed = "canary Ingresses are not supported by Havre: this one is not served, its main Ingress gets all the traffic"
			}), warnings: []string{"canary: canary Ingresses are not supported by Havre"}},
		{name: "canary false", ann: map[string]string{"canary": "false"}, want: def},
		{name: "nginx tuning without effect", ann: map[string]string{"proxy-buffer-size": "16k"}, want: def,
			warnings: []string{"proxy-buffer-size has no effect in Havre: header sizes are not bound to nginx buffers"}},
		{name: "cors", ann: map[string]string{"enable-cors": "true"}, want: def, mw: true},
		{name: "cors off", ann: map[string]string{"enable-cors": "false", "cors-allow-origin": "https://a.example"}, want: def},
		{name: "allow list", ann: map[string]string{"whitelist-source-range": "10.0.0.0/8"}, want: def, mw: true},
		{name: "hsts", ann: map[string]string{"havre.io/hsts": "true"}, want: def, mw: true},
		{name: "hsts false", ann: map[string]string{"havre.io/hsts": "false"}, want: def},
		{name: "hsts invalid", ann: map[string]string{"havre.io/hsts": "forever"}, want: def, warnings: []string{`havre.io/hsts: invalid value "forever"`}},
		{name: "auth without type", ann: map[string]string{"auth-secret": "s"}, want: def, warnings: []string{"auth-secret: no auth-type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, tune, warnings := New(Config{}).Parse(ingress(tt.ann))
			if !reflect.DeepEqual(tune, tt.want) {
				t.Errorf("tuning:\n got %+v\nwant %+v", tune, tt.want)
			}
			if tune.Affinity != nil && tt.want.Affinity != nil && *tune.Affinity != *tt.want.Affinity {
				t.Errorf("affinity %+v, want %+v", *tune.Affinity, *tt.want.Affinity)
			}
			checkWarnings(t, warnings, tt.warnings)
			if (mw != nil) != tt.mw {
				t.Errorf("middleware: got %v, want %v", mw != nil, tt.mw)
			}
		})
	}
}

func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("warnings %q, want %d matching %q", got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestApply(t *testing.T) {
	svc := types.NamespacedName{Namespace: "app", Name: "api"}
	base := func(pt routes.PathMatchType, path string) *routes.Route {
		return &routes.Route{
			Matches:  []routes.Match{{PathType: pt, Path: path}},
			Backends: []routes.Backend{{Service: svc, Port: 80, Weight: 1, Protocol: routes.ProtoHTTP1}},
			Timeout:  time.Minute,
		}
	}
	tests := []struct {
		name    string
		tune    RouteTuning
		route   *routes.Route
		check   func(t *testing.T, r *routes.Route)
		wantErr string
	}{
		{
			name: "nothing set keeps the route", tune: RouteTuning{Retries: -1}, route: base(routes.PathPrefix, "/api"),
			check: func(t *testing.T, r *routes.Route) {
				if !reflect.DeepEqual(r, base(routes.PathPrefix, "/api")) {
					t.Errorf("route changed: %+v", r)
				}
			},
		},
		{
			name:  "tuning copied",
			tune:  RouteTuning{BackendProtocol: routes.ProtoGRPC, ConnectTimeout: time.Second, ReadTimeout: time.Hour, MaxBodyBytes: 1 << 20, Retries: 2},
			route: base(routes.PathPrefix, "/api"),
			check: func(t *testing.T, r *routes.Route) {
				if r.Backends[0].Protocol != routes.ProtoGRPC || r.ConnectTimeout != time.Second || r.ReadTimeout != time.Hour || r.MaxBodyBytes != 1<<20 || r.Retries != 2 || r.Timeout != time.Minute {
					t.Errorf("route %+v", r)
				}
			},
		},
		{
			name: "explicit unlimited body", tune: RouteTuning{MaxBodyBytes: -1, Retries: -1},
			route: func() *routes.Route { r := base(routes.PathPrefix, "/"); r.MaxBodyBytes = 1 << 20; return r }(),
			check: func(t *testing.T, r *routes.Route) {
				if r.MaxBodyBytes != 0 {
					t.Errorf("MaxBodyBytes %d", r.MaxBodyBytes)
				}
			},
		},
		{
			name: "affinity path defaults to the ingress path", tune: RouteTuning{Affinity: &routes.CookieAffinity{Name: "c"}, Retries: -1},
			route: base(routes.PathPrefix, "/shop"),
			check: func(t *testing.T, r *routes.Route) {
				if r.Affinity == nil || *r.Affinity != (routes.CookieAffinity{Name: "c", Path: "/shop"}) {
					t.Errorf("affinity %+v", r.Affinity)
				}
			},
		},
		{
			name: "affinity path of a regex route is /", tune: RouteTuning{Affinity: &routes.CookieAffinity{Name: "c"}, UseRegex: true, Retries: -1},
			route: base(routes.PathPrefix, "/shop/.*"),
			check: func(t *testing.T, r *routes.Route) {
				if r.Affinity == nil || r.Affinity.Path != "/" {
					t.Errorf("affinity %+v", r.Affinity)
				}
			},
		},
		{
			name: "use-regex prefix", tune: RouteTuning{UseRegex: true, Retries: -1}, route: base(routes.PathPrefix, "/api/v[0-9]+"),
			check: func(t *testing.T, r *routes.Route) {
				m := r.Matches[0]
				if m.PathType != routes.PathRegex || m.Regex == nil {
					t.Fatalf("match %+v", m)
				}
				for path, want := range map[string]bool{"/api/v1": true, "/API/V2/users": true, "/api/vx": false, "/x/api/v1": false} {
					if got := m.Regex.MatchString(path); got != want {
						t.Errorf("%s: match %v, want %v", path, got, want)
					}
				}
				if len(r.Filters) != 0 {
					t.Errorf("filters %+v", r.Filters)
				}
			},
		},
		{
			name: "use-regex keeps exact", tune: RouteTuning{UseRegex: true, Retries: -1}, route: base(routes.PathExact, "/a.b"),
			check: func(t *testing.T, r *routes.Route) {
				if r.Matches[0].PathType != routes.PathExact {
					t.Errorf("match %+v", r.Matches[0])
				}
			},
		},
		{
			name: "rewrite-target", tune: RouteTuning{UseRegex: true, RewriteTarget: "/$2", Retries: -1}, route: base(routes.PathPrefix, "/something(/|$)(.*)"),
			check: func(t *testing.T, r *routes.Route) {
				m := r.Matches[0]
				if m.PathType != routes.PathRegex || len(r.Filters) != 1 || r.Filters[0].Type != routes.URLRewrite ||
					r.Filters[0].Rewrite.Path.RegexTemplate != "/$2" {
					t.Fatalf("route %+v", r)
				}
				got, ok := ExpandRewrite(m.Regex, "/$2", "/something/new")
				if !ok || got != "/new" {
					t.Errorf("expand = %q, %v", got, ok)
				}
			},
		},
		{
			name: "rewrite-target on an exact path", tune: RouteTuning{UseRegex: true, RewriteTarget: "/", Retries: -1}, route: base(routes.PathExact, "/old.html"),
			check: func(t *testing.T, r *routes.Route) {
				m := r.Matches[0]
				if m.PathType != routes.PathRegex || !m.Regex.MatchString("/old.html") || m.Regex.MatchString("/oldXhtml") || m.Regex.MatchString("/old.html/x") {
					t.Errorf("match %+v", m)
				}
			},
		},
		{
			name: "a canary's routes are refused", tune: RouteTuning{NotServed: "canary", Retries: -1}, route: base(routes.PathPrefix, "/"),
			wantErr: "canary",
			check:   func(*testing.T, *routes.Route) {},
		},
		{
			name: "invalid regex", tune: RouteTuning{UseRegex: true, Retries: -1}, route: base(routes.PathPrefix, "/(?=look)"),
			wantErr: "not a regular expression Havre accepts",
			check: func(t *testing.T, r *routes.Route) {
				if r.Matches[0].PathType != routes.PathPrefix {
					t.Errorf("route changed on error: %+v", r.Matches[0])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tune.Apply(tt.route)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			tt.check(t, tt.route)
		})
	}
}

func TestApplyDoesNotShareSlices(t *testing.T) {
	bs := []routes.Backend{{Port: 80, Protocol: routes.ProtoHTTP1}}
	ms := []routes.Match{{PathType: routes.PathPrefix, Path: "/a"}}
	r := &routes.Route{Matches: ms, Backends: bs}
	if err := (RouteTuning{BackendProtocol: routes.ProtoH2C, UseRegex: true, Retries: -1}).Apply(r); err != nil {
		t.Fatal(err)
	}
	if bs[0].Protocol != routes.ProtoHTTP1 || ms[0].PathType != routes.PathPrefix {
		t.Errorf("Apply wrote through the translator's slices")
	}
}

func TestPathRegex(t *testing.T) {
	re, err := PathRegex("/a|/b")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{"/a": true, "/b/x": true, "/c/b": false} {
		if got := re.MatchString(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	// A whole-path match (as the router may ask) agrees.
	if loc := re.FindStringIndex("/b/x"); loc == nil || loc[0] != 0 || loc[1] != len("/b/x") {
		t.Errorf("not a whole-path match: %v", loc)
	}
}
