package gateway

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// built is what a route's rules translate into, whatever its parents.
type built struct {
	entries []entry
	// rejected, when set, is why the route is not accepted at all.
	rejected *Condition
	refs     Condition
}

func (r *resolver) route(kind string, m *metav1.ObjectMeta, refs []gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, build func() built) {
	key := RouteKey{Kind: kind, Namespace: m.Namespace, Name: m.Name}
	var b *built
	for _, ref := range refs {
		if groupOr(ref.Group, Group) != Group || kindOr(ref.Kind, "Gateway") != "Gateway" {
			continue
		}
		ns := m.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		gk := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
		g, ok := r.gateways[gk]
		if !ok {
			continue
		}
		if b == nil {
			bb := build()
			for i := range bb.entries {
				bb.entries[i].key, bb.entries[i].created = key, m.CreationTimestamp.Time
			}
			b = &bb
		}
		gs := r.result.Gateways[gk]
		ps := &ParentStatus{Ref: ref}
		r.result.Routes[key] = append(r.result.Routes[key], ps)
		accepted := func(ok bool, reason gatewayv1.RouteConditionReason, msg string) {
			ps.Conditions = []Condition{cond(string(gatewayv1.RouteConditionAccepted), ok, string(reason), msg), b.refs}
		}
		var matched []int
		for i, l := range g.Spec.Listeners {
			if (ref.SectionName == nil || *ref.SectionName == l.Name) && (ref.Port == nil || *ref.Port == l.Port) {
				matched = append(matched, i)
			}
		}
		if len(matched) == 0 {
			accepted(false, gatewayv1.RouteReasonNoMatchingParent, "no listener of the Gateway matches the parentRef's sectionName and port")
			continue
		}
		type target struct {
			ls    *ListenerStatus
			hosts []string
		}
		var allowed, targets []target
		for _, i := range matched {
			l, ls := g.Spec.Listeners[i], gs.Listeners[i]
			if !ls.valid || !kindAllowed(ls.SupportedKinds, kind) || !r.namespaceAllowed(g, l, m.Namespace) {
				continue
			}
			t := target{ls: ls, hosts: Intersect(l.Hostname, hostnames)}
			allowed = append(allowed, t)
			if len(t.hosts) > 0 {
				targets = append(targets, t)
			}
		}
		switch {
		case len(allowed) == 0:
			accepted(false, gatewayv1.RouteReasonNotAllowedByListeners, "no listener of the Gateway allows this route (namespace, kind or listener not valid)")
			continue
		case len(targets) == 0:
			accepted(false, gatewayv1.RouteReasonNoMatchingListenerHostname, "no hostname of the route matches a listener's hostname")
			continue
		case b.rejected != nil:
			ps.Conditions = []Condition{*b.rejected, b.refs}
			continue
		}
		accepted(true, gatewayv1.RouteReasonAccepted, "Accepted by "+routes.GatewayController)
		ps.Attached = true
		for _, t := range targets {
			t.ls.AttachedRoutes++
			for _, h := range t.hosts {
				r.add(t.ls.port, h, key, b.entries)
			}
		}
	}
}

func (r *resolver) add(port int32, host string, key RouteKey, entries []entry) {
	byHost := r.hosts[port]
	if byHost == nil {
		byHost = map[string]*hostEntries{}
		r.hosts[port] = byHost
	}
	he := byHost[host]
	if he == nil {
		he = &hostEntries{seen: map[RouteKey]bool{}}
		byHost[host] = he
	}
	if he.seen[key] {
		return
	}
	he.seen[key] = true
	he.entries = append(he.entries, entries...)
}

func kindAllowed(kinds []gatewayv1.RouteGroupKind, kind string) bool {
	return slices.ContainsFunc(kinds, func(k gatewayv1.RouteGroupKind) bool { return string(k.Kind) == kind })
}

func (r *resolver) namespaceAllowed(g *gatewayv1.Gateway, l gatewayv1.Listener, ns string) bool {
	from := gatewayv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil {
		if l.AllowedRoutes.Namespaces.From != nil {
			from = *l.AllowedRoutes.Namespaces.From
		}
		sel = l.AllowedRoutes.Namespaces.Selector
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return ns == g.Namespace
	case gatewayv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		return s.Matches(labels.Set(r.s.NamespaceLabels[ns]))
	}
	return false
}

// Intersect returns the hostnames a route serves through a listener, as
// Gateway API defines their intersection: nil when none; [""] when both
// allow any.
func Intersect(listener *gatewayv1.Hostname, route []gatewayv1.Hostname) []string {
	lh := ""
	if listener != nil {
		lh = string(*listener)
	}
	if len(route) == 0 {
		return []string{lh}
	}
	var out []string
	for _, h := range route {
		rh := string(h)
		var got string
		switch {
		case lh == "" || rh == lh:
			got = rh
		case wildcardCovers(lh, rh):
			got = rh
		case wildcardCovers(rh, lh):
			got = lh
		}
		if got != "" && !slices.Contains(out, got) {
			out = append(out, got)
		}
	}
	return out
}

// wildcardCovers reports whether pattern "*.suffix" covers host (a name
// or a narrower wildcard): one or more labels in front of the suffix.
func wildcardCovers(pattern, host string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*")
	if !ok {
		return false
	}
	return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
}

// rule is what an HTTPRoute's and a GRPCRoute's rules share, translated
// by refs in the order references are checked: the rule's filters, then
// each backend's.
type rule[M any] struct {
	filters        []routes.Filter
	backends       []routes.Backend
	matches        []M
	timeout        time.Duration
	backendTimeout time.Duration
}

// entries translates a route's rules: one entry per match (a rule without
// matches matches everything); a match that cannot be served rejects the
// route.
func entries[M any](r *resolver, kind string, m *metav1.ObjectMeta, rules int, translate func(refs *refChecker, i int) rule[M], translateMatch func(M) (routes.Match, error)) built {
	b := built{refs: cond(string(gatewayv1.RouteConditionResolvedRefs), true, string(gatewayv1.RouteReasonResolvedRefs), "")}
	refs := &refChecker{r: r, kind: kind, ns: m.Namespace, b: &b}
	for ri := range rules {
		rl := translate(refs, ri)
		route := &routes.Route{Origin: routes.Origin{Kind: kind, Namespace: m.Namespace, Name: m.Name, Rule: ri},
			Filters: rl.filters, Backends: rl.backends, Timeout: rl.timeout, BackendTimeout: rl.backendTimeout}
		if refs.unresolvedExtension {
			route.Backends = nil
			refs.unresolvedExtension = false
		}
		matches := rl.matches
		if len(matches) == 0 {
			matches = make([]M, 1)
		}
		for mi, mt := range matches {
			match, err := translateMatch(mt)
			if err != nil {
				b.rejected = &Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionFalse,
					Reason: string(gatewayv1.RouteReasonUnsupportedValue), Message: fmt.Sprintf("rule %d match %d: %v", ri, mi, err)}
				continue
			}
			one := *route
			one.Matches = []routes.Match{match}
			b.entries = append(b.entries, entry{route: &one, rule: ri, match: mi})
		}
	}
	return b
}

// httpEntries translates an HTTPRoute's rules.
func (r *resolver) httpEntries(rt *gatewayv1.HTTPRoute) built {
	return entries(r, KindHTTPRoute, &rt.ObjectMeta, len(rt.Spec.Rules), func(refs *refChecker, i int) rule[gatewayv1.HTTPRouteMatch] {
		in := rt.Spec.Rules[i]
		out := rule[gatewayv1.HTTPRouteMatch]{filters: refs.httpFilters(in.Filters), matches: in.Matches}
		for _, br := range in.BackendRefs {
			if be, ok := refs.backend(br.BackendObjectReference, br.Weight, routes.ProtoHTTP1); ok {
				be.Filters = refs.httpFilters(br.Filters)
				out.backends = append(out.backends, be)
			}
		}
		if t := in.Timeouts; t != nil {
			out.timeout, out.backendTimeout = duration(t.Request), duration(t.BackendRequest)
		}
		return out
	}, httpMatch)
}

func duration(d *gatewayv1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// anchored compiles a Gateway API regular expression as a full match.
func anchored(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}

func httpMatch(m gatewayv1.HTTPRouteMatch) (routes.Match, error) {
	out := routes.Match{PathType: routes.PathPrefix, Path: "/"}
	if p := m.Path; p != nil {
		if p.Value != nil {
			out.Path = *p.Value
		}
		if p.Type != nil {
			switch *p.Type {
			case gatewayv1.PathMatchExact:
				out.PathType = routes.PathExact
			case gatewayv1.PathMatchPathPrefix:
			case gatewayv1.PathMatchRegularExpression:
				re, err := anchored(out.Path)
				if err != nil {
					return out, fmt.Errorf("path regular expression: %v", err)
				}
				out.PathType, out.Regex = routes.PathRegex, re
			default:
				return out, fmt.Errorf("path match type %s is not supported", *p.Type)
			}
		}
	}
	for _, h := range m.Headers {
		vm, err := valueMatch(string(h.Name), h.Value, h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression)
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, vm)
	}
	for _, q := range m.QueryParams {
		vm, err := valueMatch(string(q.Name), q.Value, q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression)
		if err != nil {
			return out, err
		}
		out.QueryParams = append(out.QueryParams, vm)
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out, nil
}

func valueMatch(name, value string, regex bool) (routes.ValueMatch, error) {
	vm := routes.ValueMatch{Name: name, Value: value}
	if regex {
		re, err := regexp.Compile(value)
		if err != nil {
			return vm, fmt.Errorf("%s regular expression: %v", name, err)
		}
		vm.Regex = re
	}
	return vm, nil
}

// grpcEntries translates a GRPCRoute's rules: a method match is a match
// on the request path /service/method.
func (r *resolver) grpcEntries(rt *gatewayv1.GRPCRoute) built {
	return entries(r, KindGRPCRoute, &rt.ObjectMeta, len(rt.Spec.Rules), func(refs *refChecker, i int) rule[gatewayv1.GRPCRouteMatch] {
		in := rt.Spec.Rules[i]
		out := rule[gatewayv1.GRPCRouteMatch]{filters: refs.grpcFilters(in.Filters), matches: in.Matches}
		for _, br := range in.BackendRefs {
			if be, ok := refs.backend(br.BackendObjectReference, br.Weight, routes.ProtoGRPC); ok {
				be.Filters = refs.grpcFilters(br.Filters)
				out.backends = append(out.backends, be)
			}
		}
		return out
	}, grpcMatch)
}

func grpcMatch(m gatewayv1.GRPCRouteMatch) (routes.Match, error) {
	out := routes.Match{PathType: routes.PathPrefix, Path: "/"}
	if mm := m.Method; mm != nil {
		service, method := "", ""
		if mm.Service != nil {
			service = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		regex := mm.Type != nil && *mm.Type == gatewayv1.GRPCMethodMatchRegularExpression
		switch {
		case regex:
			expr := "/" + cmp.Or(service, "[^/]+") + "/" + cmp.Or(method, "[^/]+")
			re, err := anchored(expr)
			if err != nil {
				return out, fmt.Errorf("method regular expression: %v", err)
			}
			out.PathType, out.Path, out.Regex = routes.PathRegex, expr, re
		case service != "" && method != "":
			out.PathType, out.Path = routes.PathExact, "/"+service+"/"+method
		case service != "":
			out.Path = "/" + service
		case method != "":
			expr := "/[^/]+/" + regexp.QuoteMeta(method)
			out.PathType, out.Path, out.Regex = routes.PathRegex, expr, regexp.MustCompile("^(?:"+expr+")$")
		}
	}
	for _, h := range m.Headers {
		vm, err := valueMatch(string(h.Name), h.Value, h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression)
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, vm)
	}
	return out, nil
}

// refChecker resolves a route's references, recording the first failure
// in the route's ResolvedRefs condition.
type refChecker struct {
	r    *resolver
	kind string
	ns   string
	b    *built
	// unresolvedExtension: the current rule has an ExtensionRef filter,
	// which Havre cannot resolve: the rule answers 500.
	unresolvedExtension bool
}

func (c *refChecker) fail(reason gatewayv1.RouteConditionReason, msg string) {
	if c.b.refs.Status == metav1.ConditionTrue {
		c.b.refs = cond(string(gatewayv1.RouteConditionResolvedRefs), false, string(reason), msg)
	}
}

func (c *refChecker) reject(msg string) {
	if c.b.rejected == nil {
		c.b.rejected = &Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionFalse,
			Reason: string(gatewayv1.RouteReasonUnsupportedValue), Message: msg}
	}
}

// backend resolves a backendRef; ok is false when it takes no traffic
// (weight 0).
func (c *refChecker) backend(ref gatewayv1.BackendObjectReference, weight *int32, proto routes.AppProtocol) (routes.Backend, bool) {
	w := int32(1)
	if weight != nil {
		w = *weight
	}
	ns := c.ns
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	be := routes.Backend{Service: types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, Weight: w, Protocol: proto}
	if ref.Port != nil {
		be.Port = int32(*ref.Port)
	}
	if w == 0 {
		return be, false
	}
	group, kind := groupOr(ref.Group, ""), kindOr(ref.Kind, "Service")
	if group != "" || kind != "Service" {
		be.Invalid = fmt.Sprintf("backendRef kind %s/%s is not supported", group, kind)
		c.fail(gatewayv1.RouteReasonInvalidKind, be.Invalid)
		return be, true
	}
	if ns != c.ns && !c.r.granted(Group, c.kind, c.ns, "", "Service", ns, string(ref.Name)) {
		be.Invalid = fmt.Sprintf("no ReferenceGrant in %s allows a %s in %s to refer to Service %s", ns, c.kind, c.ns, ref.Name)
		c.fail(gatewayv1.RouteReasonRefNotPermitted, be.Invalid)
		return be, true
	}
	svc := c.r.s.Services[be.Service]
	if svc == nil {
		be.Invalid = fmt.Sprintf("Service %s not found", be.Service)
		c.fail(gatewayv1.RouteReasonBackendNotFound, be.Invalid)
		return be, true
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == be.Port {
			port = &svc.Spec.Ports[i]
		}
	}
	if port == nil {
		be.Invalid = fmt.Sprintf("Service %s has no port %d", be.Service, be.Port)
		c.fail(gatewayv1.RouteReasonBackendNotFound, be.Invalid)
		return be, true
	}
	be.PortName = port.Name
	if proto == routes.ProtoHTTP1 && port.AppProtocol != nil {
		switch strings.ToLower(*port.AppProtocol) {
		case "kubernetes.io/h2c":
			be.Protocol = routes.ProtoH2C
		case "https", "kubernetes.io/wss":
			be.Protocol = routes.ProtoHTTPS
		}
	}
	return be, true
}

func headerModifier(f *gatewayv1.HTTPHeaderFilter) *routes.HeaderModifier {
	if f == nil {
		return &routes.HeaderModifier{}
	}
	hm := &routes.HeaderModifier{Remove: slices.Clone(f.Remove)}
	for _, h := range f.Set {
		hm.Set = append(hm.Set, routes.Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		hm.Add = append(hm.Add, routes.Header{Name: string(h.Name), Value: h.Value})
	}
	return hm
}

func pathModifier(p *gatewayv1.HTTPPathModifier) *routes.PathModifier {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath != nil {
			return &routes.PathModifier{Value: *p.ReplaceFullPath}
		}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch != nil {
			return &routes.PathModifier{Value: *p.ReplacePrefixMatch, ReplacePrefix: true}
		}
	}
	return nil
}

func (c *refChecker) mirror(m *gatewayv1.HTTPRequestMirrorFilter) *routes.Backend {
	if m == nil {
		return nil
	}
	be, _ := c.backend(m.BackendRef, nil, routes.ProtoHTTP1)
	return &be
}

func (c *refChecker) httpFilters(in []gatewayv1.HTTPRouteFilter) []routes.Filter {
	var out []routes.Filter
	for _, f := range in {
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			out = append(out, routes.Filter{Type: routes.RequestHeaderModifier, RequestHeader: headerModifier(f.RequestHeaderModifier)})
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			out = append(out, routes.Filter{Type: routes.ResponseHeaderModifier, ResponseHeader: headerModifier(f.ResponseHeaderModifier)})
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			rd := &routes.Redirect{StatusCode: 302}
			if x := f.RequestRedirect; x != nil {
				if x.Scheme != nil {
					rd.Scheme = *x.Scheme
				}
				if x.Hostname != nil {
					rd.Hostname = string(*x.Hostname)
				}
				if x.Port != nil {
					rd.Port = int32(*x.Port)
				}
				if x.StatusCode != nil {
					rd.StatusCode = *x.StatusCode
				}
				rd.Path = pathModifier(x.Path)
			}
			out = append(out, routes.Filter{Type: routes.RequestRedirect, Redirect: rd})
		case gatewayv1.HTTPRouteFilterURLRewrite:
			rw := &routes.Rewrite{}
			if x := f.URLRewrite; x != nil {
				if x.Hostname != nil {
					rw.Hostname = string(*x.Hostname)
				}
				rw.Path = pathModifier(x.Path)
			}
			out = append(out, routes.Filter{Type: routes.URLRewrite, Rewrite: rw})
		case gatewayv1.HTTPRouteFilterRequestMirror:
			out = append(out, routes.Filter{Type: routes.RequestMirror, Mirror: c.mirror(f.RequestMirror)})
		case gatewayv1.HTTPRouteFilterExtensionRef:
			c.unresolvedExtension = true
			c.fail(gatewayv1.RouteReasonInvalidKind, "extensionRef filters are not supported")
		default:
			c.reject(fmt.Sprintf("filter type %s is not supported", f.Type))
		}
	}
	return out
}

func (c *refChecker) grpcFilters(in []gatewayv1.GRPCRouteFilter) []routes.Filter {
	var out []routes.Filter
	for _, f := range in {
		switch f.Type {
		case gatewayv1.GRPCRouteFilterRequestHeaderModifier:
			out = append(out, routes.Filter{Type: routes.RequestHeaderModifier, RequestHeader: headerModifier(f.RequestHeaderModifier)})
		case gatewayv1.GRPCRouteFilterResponseHeaderModifier:
			out = append(out, routes.Filter{Type: routes.ResponseHeaderModifier, ResponseHeader: headerModifier(f.ResponseHeaderModifier)})
		case gatewayv1.GRPCRouteFilterRequestMirror:
			out = append(out, routes.Filter{Type: routes.RequestMirror, Mirror: c.mirror(f.RequestMirror)})
		case gatewayv1.GRPCRouteFilterExtensionRef:
			c.unresolvedExtension = true
			c.fail(gatewayv1.RouteReasonInvalidKind, "extensionRef filters are not supported")
		default:
			c.reject(fmt.Sprintf("filter type %s is not supported", f.Type))
		}
	}
	return out
}

// precedence orders entries as Gateway API's HTTPRoute rule precedence:
// Exact path, then the longest prefix (regular expressions after), then a
// method match, then the most header matches, then the most query
// parameter matches; ties go to the oldest route, then namespace/name,
// then rule and match order.
func precedence(a, b entry) int {
	ma, mb := a.route.Matches[0], b.route.Matches[0]
	rank := func(m routes.Match) int {
		switch m.PathType {
		case routes.PathExact:
			return 0
		case routes.PathPrefix:
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(ma), rank(mb)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.Path), len(ma.Path)); c != 0 {
		return c
	}
	if c := cmp.Compare(boolRank(ma.Method != ""), boolRank(mb.Method != "")); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.Headers), len(ma.Headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.QueryParams), len(ma.QueryParams)); c != 0 {
		return c
	}
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.key.Namespace, b.key.Namespace), strings.Compare(a.key.Name, b.key.Name),
		strings.Compare(a.key.Kind, b.key.Kind), cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match))
}

func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}

// hostOrder: exact names first, then wildcards (longest first), then "".
func hostOrder(a, b string) int {
	class := func(h string) int {
		switch {
		case h == "":
			return 2
		case strings.HasPrefix(h, "*"):
			return 1
		}
		return 0
	}
	if c := cmp.Compare(class(a), class(b)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b), len(a)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func (r *resolver) table() {
	for port, byHost := range r.hosts {
		pl := r.listenerAt(port, r.protocols[port])
		for host, he := range byHost {
			slices.SortStableFunc(he.entries, precedence)
			vh := &routes.VirtualHost{Hostname: host}
			for _, e := range he.entries {
				vh.Routes = append(vh.Routes, e.route)
			}
			pl.Hosts = append(pl.Hosts, vh)
		}
	}
	for _, pl := range r.listeners {
		slices.SortFunc(pl.Hosts, func(a, b *routes.VirtualHost) int { return hostOrder(a.Hostname, b.Hostname) })
		r.result.Table.Listeners = append(r.result.Table.Listeners, pl)
	}
	slices.SortFunc(r.result.Table.Listeners, func(a, b *routes.Listener) int { return cmp.Compare(a.Port, b.Port) })
}
