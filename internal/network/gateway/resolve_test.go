package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func hn(s string) *gatewayv1.Hostname { h := gatewayv1.Hostname(s); return &h }

func TestIntersect(t *testing.T) {
	tests := []struct {
		listener string
		route    []gatewayv1.Hostname
		want     []string
	}{
		{"", nil, []string{""}},
		{"foo.com", nil, []string{"foo.com"}},
		{"", []gatewayv1.Hostname{"a.com", "*.b.com"}, []string{"a.com", "*.b.com"}},
		{"foo.com", []gatewayv1.Hostname{"foo.com", "bar.com"}, []string{"foo.com"}},
		{"foo.com", []gatewayv1.Hostname{"bar.com"}, nil},
		{"*.example.com", []gatewayv1.Hostname{"foo.example.com", "a.b.example.com", "example.com", "bar.com"}, []string{"foo.example.com", "a.b.example.com"}},
		{"*.example.com", []gatewayv1.Hostname{"*.foo.example.com"}, []string{"*.foo.example.com"}},
		{"*.example.com", []gatewayv1.Hostname{"*.example.com"}, []string{"*.example.com"}},
		{"*.foo.example.com", []gatewayv1.Hostname{"*.example.com"}, []string{"*.foo.example.com"}},
		{"foo.example.com", []gatewayv1.Hostname{"*.example.com", "foo.example.com"}, []string{"foo.example.com"}},
		{"example.com", []gatewayv1.Hostname{"*.example.com"}, nil},
		{"*.com", []gatewayv1.Hostname{"*.example.com", "*.net"}, []string{"*.example.com"}},
	}
	for _, tt := range tests {
		var l *gatewayv1.Hostname
		if tt.listener != "" {
			l = hn(tt.listener)
		}
		if got := Intersect(l, tt.route); !slices.Equal(got, tt.want) {
			t.Errorf("Intersect(%q, %v) = %q, want %q", tt.listener, tt.route, got, tt.want)
		}
	}
}

// fixture helpers

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func meta(ns, name string, age int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))}
}

func havreClass() *gatewayv1.GatewayClass {
	return &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "havre"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: routes.GatewayController}}
}

func otherClass() *gatewayv1.GatewayClass {
	return &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/other"}}
}

func gw(ns, name string, listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{ObjectMeta: meta(ns, name, 0), Spec: gatewayv1.GatewaySpec{GatewayClassName: "havre", Listeners: listeners}}
}

func httpListener(name string, port int32, host string) gatewayv1.Listener {
	l := gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType}
	if host != "" {
		l.Hostname = hn(host)
	}
	return l
}

func fromAll(l gatewayv1.Listener) gatewayv1.Listener {
	l.AllowedRoutes = &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: new(gatewayv1.NamespacesFromAll)}}
	return l
}

func parent(ns, name string) gatewayv1.ParentReference {
	p := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)}
	if ns != "" {
		p.Namespace = new(gatewayv1.Namespace(ns))
	}
	return p
}

func backend(name string, port int32, weight *int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: new(gatewayv1.PortNumber(port))},
		Weight:                 weight}}
}

func prefix(p string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new(p)}}
}

func exact(p string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchExact), Value: new(p)}}
}

func httpRoute(ns, name string, age int, parents []gatewayv1.ParentReference, hosts []gatewayv1.Hostname, rules ...gatewayv1.HTTPRouteRule) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{ObjectMeta: meta(ns, name, age), Spec: gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents}, Hostnames: hosts, Rules: rules}}
}

func svc(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func snapshot(objs ...any) *Snapshot {
	s := &Snapshot{Services: map[types.NamespacedName]*corev1.Service{}, NamespaceLabels: map[string]map[string]string{}, HTTPPort: 8080, HTTPSPort: 8443}
	for _, o := range objs {
		switch o := o.(type) {
		case *gatewayv1.GatewayClass:
			s.Classes = append(s.Classes, o)
		case *gatewayv1.Gateway:
			s.Gateways = append(s.Gateways, o)
		case *gatewayv1.HTTPRoute:
			s.HTTPRoutes = append(s.HTTPRoutes, o)
		case *gatewayv1.GRPCRoute:
			s.GRPCRoutes = append(s.GRPCRoutes, o)
		case *gatewayv1.ReferenceGrant:
			s.ReferenceGrants = append(s.ReferenceGrants, o)
		case *corev1.Service:
			s.Services[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}] = o
		case *corev1.Namespace:
			s.NamespaceLabels[o.Name] = o.Labels
		default:
			panic(o)
		}
	}
	return s
}

// hostRoutes describes the table: port → host → "origin rule path" lines.
func describe(t *routes.Table) map[int32]map[string][]string {
	out := map[int32]map[string][]string{}
	for _, l := range t.Listeners {
		out[l.Port] = map[string][]string{}
		for _, h := range l.Hosts {
			for _, r := range h.Routes {
				m := r.Matches[0]
				d := r.Origin.Namespace + "/" + r.Origin.Name + "#" + string(rune('0'+r.Origin.Rule)) + " " + string(m.PathType) + " " + m.Path
				if m.Method != "" {
					d += " " + m.Method
				}
				for _, h := range m.Headers {
					d += " h:" + h.Name
				}
				for _, q := range m.QueryParams {
					d += " q:" + q.Name
				}
				out[l.Port][h.Hostname] = append(out[l.Port][h.Hostname], d)
			}
			if len(h.Routes) == 0 {
				out[l.Port][h.Hostname] = []string{}
			}
		}
	}
	return out
}

func conds(cs []Condition) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		out[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return out
}

func parentConds(t *testing.T, res *Result, kind, ns, name string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, p := range res.Routes[RouteKey{Kind: kind, Namespace: ns, Name: name}] {
		out = append(out, conds(p.Conditions))
	}
	return out
}

func TestAttachment(t *testing.T) {
	rule := gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}}
	tests := []struct {
		name     string
		objs     []any
		accepted string // the route's Accepted condition on its first parent, "" none
		attached int32  // the listener's attachedRoutes (first listener)
		hosts    []string
	}{
		{"same namespace, any host", []any{gw("ns", "g", httpListener("http", 80, "")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, nil, rule)}, "True/Accepted", 1, []string{""}},
		{"other namespace refused by default (from Same)", []any{gw("infra", "g", httpListener("http", 80, "")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("infra", "g")}, nil, rule)}, "False/NotAllowedByListeners", 0, nil},
		{"other namespace allowed with from All", []any{gw("infra", "g", fromAll(httpListener("http", 80, ""))),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("infra", "g")}, nil, rule)}, "True/Accepted", 1, []string{""}},
		{"namespace selector", []any{
			gw("infra", "g", gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: &gatewayv1.AllowedRoutes{
				Namespaces: &gatewayv1.RouteNamespaces{From: new(gatewayv1.NamespacesFromSelector), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"edge": "yes"}}}}}),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"edge": "yes"}}},
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("infra", "g")}, nil, rule)}, "True/Accepted", 1, []string{""}},
		{"hostnames that do not intersect", []any{gw("ns", "g", httpListener("http", 80, "*.example.com")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, []gatewayv1.Hostname{"foo.other.com"}, rule)}, "False/NoMatchingListenerHostname", 0, nil},
		{"hostnames intersect with a wildcard listener", []any{gw("ns", "g", httpListener("http", 80, "*.example.com")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, []gatewayv1.Hostname{"foo.example.com", "bar.com"}, rule)}, "True/Accepted", 1, []string{"foo.example.com"}},
		{"sectionName that names no listener", []any{gw("ns", "g", httpListener("http", 80, "")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{{Name: "g", SectionName: new(gatewayv1.SectionName("nope"))}}, nil, rule)}, "False/NoMatchingParent", 0, nil},
		{"port that matches no listener", []any{gw("ns", "g", httpListener("http", 80, "")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{{Name: "g", Port: new(gatewayv1.PortNumber(81))}}, nil, rule)}, "False/NoMatchingParent", 0, nil},
		{"a Gateway of another class is not ours", []any{otherClass(),
			&gatewayv1.Gateway{ObjectMeta: meta("ns", "g", 0), Spec: gatewayv1.GatewaySpec{GatewayClassName: "other", Listeners: []gatewayv1.Listener{httpListener("http", 80, "")}}},
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, nil, rule)}, "", -1, nil},
		{"listener kinds exclude HTTPRoute", []any{
			gw("ns", "g", gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "GRPCRoute"}}}}),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, nil, rule)}, "False/NotAllowedByListeners", 0, nil},
		{"unsupported filter", []any{gw("ns", "g", httpListener("http", 80, "")),
			httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, nil, gatewayv1.HTTPRouteRule{Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS}}})},
			"False/UnsupportedValue", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := append([]any{havreClass(), svc("ns", "web")}, tt.objs...)
			res := Resolve(snapshot(objs...))
			pc := parentConds(t, res, KindHTTPRoute, "ns", "r")
			if tt.accepted == "" {
				if len(pc) != 0 {
					t.Errorf("route statuses %v, want none", pc)
				}
			} else if len(pc) != 1 || pc[0]["Accepted"] != tt.accepted {
				t.Errorf("route statuses %v, want Accepted %s", pc, tt.accepted)
			}
			for _, gs := range res.Gateways {
				if got := gs.Listeners[0].AttachedRoutes; got != tt.attached {
					t.Errorf("attachedRoutes %d, want %d", got, tt.attached)
				}
			}
			var hosts []string
			for _, l := range res.Table.Listeners {
				for _, h := range l.Hosts {
					hosts = append(hosts, h.Hostname)
				}
			}
			if !slices.Equal(hosts, tt.hosts) {
				t.Errorf("hosts served %q, want %q", hosts, tt.hosts)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	p := []gatewayv1.ParentReference{parent("", "g")}
	be := []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}
	older := httpRoute("ns", "older", 0, p, nil,
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/")}, BackendRefs: be},
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/api")}, BackendRefs: be},
	)
	newer := httpRoute("ns", "newer", 5, p, nil,
		gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{
			prefix("/api"),
			exact("/api"),
			{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")}, Method: new(gatewayv1.HTTPMethodPost)},
			{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")}, Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-a", Value: "1"}, {Name: "x-b", Value: "2"}}},
			{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")}, Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-a", Value: "1"}}},
			{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")}, QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: "q", Value: "1"}}},
			prefix("/api/v1"),
			{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchRegularExpression), Value: new("/api/v[0-9]+/items")}},
		}, BackendRefs: be},
	)
	sameAgeB := httpRoute("ns", "b", 0, p, nil, gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{exact("/same")}, BackendRefs: be})
	sameAgeA := httpRoute("ns", "a", 0, p, nil, gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{exact("/same")}, BackendRefs: be})
	res := Resolve(snapshot(havreClass(), svc("ns", "web"), gw("ns", "g", httpListener("http", 80, "")), newer, older, sameAgeB, sameAgeA))
	got := describe(res.Table)[8080][""]
	want := []string{
		"ns/a#0 Exact /same", // the longer exact path first (they never overlap); same age: by name
		"ns/b#0 Exact /same",
		"ns/newer#0 Exact /api",
		"ns/newer#0 PathPrefix /api/v1",
		"ns/newer#0 PathPrefix /api POST",
		"ns/newer#0 PathPrefix /api h:x-a h:x-b",
		"ns/newer#0 PathPrefix /api h:x-a",
		"ns/newer#0 PathPrefix /api q:q",
		"ns/older#1 PathPrefix /api",
		"ns/newer#0 PathPrefix /api",
		"ns/older#0 PathPrefix /",
		"ns/newer#0 RegularExpression /api/v[0-9]+/items",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := res.Table.Listeners[0].Hosts[0].Routes[len(want)-1]; !r.Matches[0].Regex.MatchString("/api/v2/items") || r.Matches[0].Regex.MatchString("/x/api/v2/items") {
		t.Errorf("regex %v is not a full match", r.Matches[0].Regex)
	}
}

func TestHostsMergeAcrossRoutesAndOrder(t *testing.T) {
	p := []gatewayv1.ParentReference{parent("", "g")}
	be := []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}
	res := Resolve(snapshot(havreClass(), svc("ns", "web"),
		gw("ns", "g", httpListener("http", 80, ""), httpListener("wild", 80, "*.example.com")),
		httpRoute("ns", "any", 0, []gatewayv1.ParentReference{{Name: "g", SectionName: new(gatewayv1.SectionName("http"))}}, nil, gatewayv1.HTTPRouteRule{BackendRefs: be}),
		httpRoute("ns", "named", 0, p, []gatewayv1.Hostname{"a.example.com", "*.x.example.com"}, gatewayv1.HTTPRouteRule{BackendRefs: be}),
	))
	var hosts []string
	for _, h := range res.Table.Listeners[0].Hosts {
		hosts = append(hosts, h.Hostname)
	}
	// "named" attaches to both listeners; served once per host.
	if want := []string{"a.example.com", "*.x.example.com", ""}; !slices.Equal(hosts, want) {
		t.Errorf("hosts %q, want %q", hosts, want)
	}
	if n := len(res.Table.Listeners[0].Hosts[0].Routes); n != 1 {
		t.Errorf("a.example.com has %d routes, want 1 (one route attached through two listeners)", n)
	}
	if ls := res.Gateways[types.NamespacedName{Namespace: "ns", Name: "g"}].Listeners; ls[0].AttachedRoutes != 2 || ls[1].AttachedRoutes != 1 {
		t.Errorf("attachedRoutes %d, %d, want 2, 1", ls[0].AttachedRoutes, ls[1].AttachedRoutes)
	}
}

func TestBackendsAndReferenceGrants(t *testing.T) {
	p := []gatewayv1.ParentReference{parent("", "g")}
	grant := &gatewayv1.ReferenceGrant{ObjectMeta: meta("other", "allow", 0), Spec: gatewayv1.ReferenceGrantSpec{
		From: []gatewayv1.ReferenceGrantFrom{{Group: Group, Kind: KindHTTPRoute, Namespace: "ns"}},
		To:   []gatewayv1.ReferenceGrantTo{{Group: "", Kind: "Service", Name: new(gatewayv1.ObjectName("granted"))}},
	}}
	cross := func(name string) gatewayv1.HTTPBackendRef {
		b := backend(name, 80, nil)
		b.Namespace = new(gatewayv1.Namespace("other"))
		return b
	}
	tests := []struct {
		name     string
		refs     []gatewayv1.HTTPBackendRef
		backends []string // service weight [invalid]
		resolved string
	}{
		{"weights, zero dropped", []gatewayv1.HTTPBackendRef{backend("web", 80, new(int32(3))), backend("web2", 80, nil), backend("web", 80, new(int32(0)))},
			[]string{"ns/web:80/http w3", "ns/web2:80/http w1"}, "True/ResolvedRefs"},
		{"unknown Service", []gatewayv1.HTTPBackendRef{backend("nope", 80, nil)}, []string{"ns/nope:80/ w1 invalid"}, "False/BackendNotFound"},
		{"unknown port", []gatewayv1.HTTPBackendRef{backend("web", 81, nil)}, []string{"ns/web:81/ w1 invalid"}, "False/BackendNotFound"},
		{"cross-namespace granted", []gatewayv1.HTTPBackendRef{cross("granted")}, []string{"other/granted:80/http w1"}, "True/ResolvedRefs"},
		{"cross-namespace not granted", []gatewayv1.HTTPBackendRef{cross("web")}, []string{"other/web:80/ w1 invalid"}, "False/RefNotPermitted"},
		{"unsupported kind", []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: new(gatewayv1.Group("example.com")), Kind: new(gatewayv1.Kind("Bucket")), Name: "b"}}}}, []string{"ns/b:0/ w1 invalid"}, "False/InvalidKind"},
		{"all weights zero: no backends (500)", []gatewayv1.HTTPBackendRef{backend("web", 80, new(int32(0)))}, nil, "True/ResolvedRefs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Resolve(snapshot(havreClass(), svc("ns", "web"), svc("ns", "web2"), svc("other", "granted"), svc("other", "web"), grant,
				gw("ns", "g", httpListener("http", 80, "")), httpRoute("ns", "r", 0, p, nil, gatewayv1.HTTPRouteRule{BackendRefs: tt.refs})))
			pc := parentConds(t, res, KindHTTPRoute, "ns", "r")
			if len(pc) != 1 || pc[0]["ResolvedRefs"] != tt.resolved || pc[0]["Accepted"] != "True/Accepted" {
				t.Errorf("conditions %v, want ResolvedRefs %s and Accepted", pc, tt.resolved)
			}
			var got []string
			for _, b := range res.Table.Listeners[0].Hosts[0].Routes[0].Backends {
				d := b.Service.String() + ":" + itoa(b.Port) + "/" + b.PortName + " w" + itoa(b.Weight)
				if b.Invalid != "" {
					d += " invalid"
				}
				got = append(got, d)
			}
			if !slices.Equal(got, tt.backends) {
				t.Errorf("backends %q, want %q", got, tt.backends)
			}
		})
	}
}

func itoa(i int32) string { return big.NewInt(int64(i)).String() }

func TestFilters(t *testing.T) {
	p := []gatewayv1.ParentReference{parent("", "g")}
	rule := gatewayv1.HTTPRouteRule{
		Filters: []gatewayv1.HTTPRouteFilter{
			{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
				Set: []gatewayv1.HTTPHeader{{Name: "x-set", Value: "1"}}, Add: []gatewayv1.HTTPHeader{{Name: "x-add", Value: "2"}}, Remove: []string{"x-gone"}}},
			{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "x-resp", Value: "3"}}}},
			{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: new(gatewayv1.PreciseHostname("internal")),
				Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: new("/v2")}}},
			{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "web2", Port: new(gatewayv1.PortNumber(80))}}},
		},
		Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: new(gatewayv1.Duration("10s")), BackendRequest: new(gatewayv1.Duration("2s"))},
		BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)},
	}
	redirect := gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/old")}, Filters: []gatewayv1.HTTPRouteFilter{
		{Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{Scheme: new("https"),
			Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: new("/new")}, StatusCode: new(301)}}}}
	extension := gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/ext")}, Filters: []gatewayv1.HTTPRouteFilter{
		{Type: gatewayv1.HTTPRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{Group: "example.com", Kind: "Thing", Name: "x"}}},
		BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}}
	res := Resolve(snapshot(havreClass(), svc("ns", "web"), svc("ns", "web2"), gw("ns", "g", httpListener("http", 80, "")), httpRoute("ns", "r", 0, p, nil, rule, redirect, extension)))
	rs := res.Table.Listeners[0].Hosts[0].Routes
	if len(rs) != 3 {
		t.Fatalf("%d routes", len(rs))
	}
	old, ext, main := rs[0], rs[1], rs[2] // same path length: rule order
	if len(ext.Backends) != 0 {
		t.Errorf("a rule with an unresolvable extensionRef has backends %v (must answer 500)", ext.Backends)
	}
	if pc := parentConds(t, res, KindHTTPRoute, "ns", "r"); pc[0]["ResolvedRefs"] != "False/InvalidKind" || pc[0]["Accepted"] != "True/Accepted" {
		t.Errorf("conditions %v", pc)
	}
	if f := old.Filters; len(f) != 1 || f[0].Type != routes.RequestRedirect || f[0].Redirect.Scheme != "https" || f[0].Redirect.StatusCode != 301 ||
		f[0].Redirect.Path.Value != "/new" || f[0].Redirect.Path.ReplacePrefix || f[0].Redirect.Port != 0 {
		t.Errorf("redirect %+v", f)
	}
	f := main.Filters
	if len(f) != 4 || f[0].RequestHeader.Set[0] != (routes.Header{Name: "x-set", Value: "1"}) || f[0].RequestHeader.Add[0].Name != "x-add" || f[0].RequestHeader.Remove[0] != "x-gone" ||
		f[1].ResponseHeader.Set[0].Name != "x-resp" || f[2].Rewrite.Hostname != "internal" || !f[2].Rewrite.Path.ReplacePrefix || f[2].Rewrite.Path.Value != "/v2" ||
		f[3].Mirror.Service.Name != "web2" || f[3].Mirror.Invalid != "" {
		t.Errorf("filters %+v", f)
	}
	if main.Timeout != 10*time.Second || main.BackendTimeout != 2*time.Second {
		t.Errorf("timeouts %v %v", main.Timeout, main.BackendTimeout)
	}
}

func TestGRPCRoute(t *testing.T) {
	gr := &gatewayv1.GRPCRoute{ObjectMeta: meta("ns", "g1", 0), Spec: gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{parent("", "g")}},
		Hostnames:       []gatewayv1.Hostname{"grpc.example.com"},
		Rules: []gatewayv1.GRPCRouteRule{{
			Matches: []gatewayv1.GRPCRouteMatch{
				{Method: &gatewayv1.GRPCMethodMatch{Service: new("echo.Echo"), Method: new("Say")}},
				{Method: &gatewayv1.GRPCMethodMatch{Service: new("health.Health")}},
			},
			BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: new(gatewayv1.PortNumber(80))}}}},
		}},
	}}
	res := Resolve(snapshot(havreClass(), svc("ns", "web"), gw("ns", "g", httpListener("http", 80, "")), gr))
	got := describe(res.Table)[8080]["grpc.example.com"]
	if want := []string{"ns/g1#0 Exact /echo.Echo/Say", "ns/g1#0 PathPrefix /health.Health"}; !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q", got, want)
	}
	if b := res.Table.Listeners[0].Hosts[0].Routes[0].Backends[0]; b.Protocol != routes.ProtoGRPC {
		t.Errorf("backend protocol %s", b.Protocol)
	}
	if pc := parentConds(t, res, KindGRPCRoute, "ns", "g1"); len(pc) != 1 || pc[0]["Accepted"] != "True/Accepted" {
		t.Errorf("conditions %v", pc)
	}
}

func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestListeners(t *testing.T) {
	crt, key := selfSigned(t, "a.example.com")
	secrets := map[types.NamespacedName]*corev1.Secret{
		{Namespace: "ns", Name: "cert"}:    {Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": key}},
		{Namespace: "certs", Name: "cert"}: {Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": key}},
		{Namespace: "ns", Name: "bad"}:     {Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("x"), "tls.key": key}},
	}
	https := func(name string, host string, refs ...gatewayv1.SecretObjectReference) gatewayv1.Listener {
		l := gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: 443, Protocol: gatewayv1.HTTPSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: refs}}
		if host != "" {
			l.Hostname = hn(host)
		}
		return l
	}
	ref := func(ns, name string) gatewayv1.SecretObjectReference {
		r := gatewayv1.SecretObjectReference{Name: gatewayv1.ObjectName(name)}
		if ns != "" {
			r.Namespace = new(gatewayv1.Namespace(ns))
		}
		return r
	}
	grant := &gatewayv1.ReferenceGrant{ObjectMeta: meta("certs", "allow", 0), Spec: gatewayv1.ReferenceGrantSpec{
		From: []gatewayv1.ReferenceGrantFrom{{Group: Group, Kind: "Gateway", Namespace: "ns"}},
		To:   []gatewayv1.ReferenceGrantTo{{Group: "", Kind: "Secret"}},
	}}
	tests := []struct {
		name     string
		listener gatewayv1.Listener
		grant    bool
		want     map[string]string
		certs    int
	}{
		{"HTTP", httpListener("http", 80, ""), false, map[string]string{"Accepted": "True/Accepted", "Programmed": "True/Programmed", "ResolvedRefs": "True/ResolvedRefs", "Conflicted": "False/NoConflicts"}, 0},
		{"HTTPS with its certificate", https("https", "a.example.com", ref("", "cert")), false, map[string]string{"Accepted": "True/Accepted", "Programmed": "True/Programmed", "ResolvedRefs": "True/ResolvedRefs"}, 1},
		{"HTTPS with a missing Secret", https("https", "a.example.com", ref("", "nope")), false, map[string]string{"Accepted": "True/Accepted", "Programmed": "False/Invalid", "ResolvedRefs": "False/InvalidCertificateRef"}, 0},
		{"HTTPS with a broken certificate", https("https", "", ref("", "bad")), false, map[string]string{"Programmed": "False/Invalid", "ResolvedRefs": "False/InvalidCertificateRef"}, 0},
		{"HTTPS, Secret in another namespace, no grant", https("https", "", ref("certs", "cert")), false, map[string]string{"Programmed": "False/Invalid", "ResolvedRefs": "False/RefNotPermitted"}, 0},
		{"HTTPS, Secret in another namespace, granted", https("https", "", ref("certs", "cert")), true, map[string]string{"Programmed": "True/Programmed", "ResolvedRefs": "True/ResolvedRefs"}, 1},
		{"TCP", gatewayv1.Listener{Name: "tcp", Port: 5432, Protocol: gatewayv1.TCPProtocolType}, false, map[string]string{"Accepted": "False/UnsupportedProtocol", "Programmed": "False/Invalid"}, 0},
		{"HTTP on the HTTPS port", httpListener("http", 443, ""), false, map[string]string{"Accepted": "False/ProtocolConflict", "Conflicted": "True/ProtocolConflict"}, 0},
		{"unsupported route kind", gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: &gatewayv1.AllowedRoutes{Kinds: []gatewayv1.RouteGroupKind{{Kind: "TCPRoute"}}}},
			false, map[string]string{"Accepted": "True/Accepted", "ResolvedRefs": "False/InvalidRouteKinds"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []any{havreClass(), gw("ns", "g", tt.listener)}
			if tt.grant {
				objs = append(objs, grant)
			}
			s := snapshot(objs...)
			s.Secret = func(n types.NamespacedName) *corev1.Secret { return secrets[n] }
			res := Resolve(s)
			ls := res.Gateways[types.NamespacedName{Namespace: "ns", Name: "g"}].Listeners[0]
			got := conds(ls.Conditions)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %s, want %s (all: %v)", k, got[k], v, got)
				}
			}
			n := 0
			for _, l := range res.Table.Listeners {
				n += len(l.Certificates)
				if l.Port == 8443 && len(l.Certificates) > 0 && tt.listener.Hostname == nil && l.Default == nil {
					t.Error("a listener without hostname: its certificate is not the default")
				}
			}
			if n != tt.certs {
				t.Errorf("%d certificates served, want %d", n, tt.certs)
			}
		})
	}
}

func TestGatewayConditions(t *testing.T) {
	g := gw("ns", "g", httpListener("http", 80, ""), gatewayv1.Listener{Name: "tcp", Port: 5432, Protocol: gatewayv1.TCPProtocolType})
	res := Resolve(snapshot(havreClass(), g))
	got := conds(res.Gateways[types.NamespacedName{Namespace: "ns", Name: "g"}].Conditions)
	if got["Accepted"] != "True/ListenersNotValid" || got["Programmed"] != "True/Programmed" {
		t.Errorf("one valid listener of two: %v", got)
	}
	g.Spec.Addresses = []gatewayv1.GatewaySpecAddress{{Value: "10.0.0.1"}}
	res = Resolve(snapshot(havreClass(), g))
	got = conds(res.Gateways[types.NamespacedName{Namespace: "ns", Name: "g"}].Conditions)
	if got["Accepted"] != "False/UnsupportedAddress" || got["Programmed"] != "False/AddressNotUsable" {
		t.Errorf("with spec.addresses: %v", got)
	}
}
