// Package gateway translates Gateway API v1 (GatewayClass, Gateway,
// HTTPRoute, GRPCRoute, ReferenceGrant) into the routes.Table a node's
// proxy serves, and computes the statuses Gateway API asks for (which the
// server-side gateway controller writes). Both come from one function,
// Resolve, so that what the proxy serves and what the status says agree.
//
// Only Gateways of a GatewayClass whose controllerName is
// routes.GatewayController are considered; a route's parentRefs to other
// Gateways are left to their controllers.
package gateway

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// Group is Gateway API's group.
const Group = "gateway.networking.k8s.io"

// Kinds of routes.
const (
	KindHTTPRoute = "HTTPRoute"
	KindGRPCRoute = "GRPCRoute"
)

// SupportedFeatures are the Gateway API features (pkg/features) Havre's
// GatewayClass reports in status.supportedFeatures, which the conformance
// suite reads to choose its tests: the core features of the Gateway-HTTP
// and Gateway-GRPC profiles. Extended features the proxy implements
// (method and query matching, redirects, rewrites, timeouts...) are to be
// added once the suite has passed their tests.
var SupportedFeatures = []gatewayv1.FeatureName{"GRPCRoute", "Gateway", "HTTPRoute", "ReferenceGrant"}

// Snapshot is everything Resolve reads.
type Snapshot struct {
	Classes         []*gatewayv1.GatewayClass
	Gateways        []*gatewayv1.Gateway
	HTTPRoutes      []*gatewayv1.HTTPRoute
	GRPCRoutes      []*gatewayv1.GRPCRoute
	ReferenceGrants []*gatewayv1.ReferenceGrant
	// Services by namespace/name.
	Services map[types.NamespacedName]*corev1.Service
	// NamespaceLabels by namespace name (allowedRoutes selectors).
	NamespaceLabels map[string]map[string]string
	// Secret returns a Secret or nil (listener certificateRefs).
	Secret func(types.NamespacedName) *corev1.Secret
	// HTTPPort and HTTPSPort are the table's ports of Gateway listeners
	// of ports 80 and 443 (the proxy's convention: 80 and 443, which it
	// serves on the node's ingress ports); other ports are as they are.
	HTTPPort, HTTPSPort int32
}

// RouteKey names a route.
type RouteKey struct {
	Kind      string
	Namespace string
	Name      string
}

// Condition is one status condition to write.
type Condition struct {
	Type    string
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// ParentStatus is a route's status for one of its parentRefs to a Gateway
// of Havre's.
type ParentStatus struct {
	Ref        gatewayv1.ParentReference
	Conditions []Condition
	// Attached is set when the route is served through this parent.
	Attached bool
}

// ListenerStatus is a Gateway listener's status.
type ListenerStatus struct {
	Name           gatewayv1.SectionName
	AttachedRoutes int32
	SupportedKinds []gatewayv1.RouteGroupKind
	Conditions     []Condition
	valid          bool
	port           int32 // served on
}

// GatewayStatus is a Gateway's status.
type GatewayStatus struct {
	Conditions []Condition
	Listeners  []*ListenerStatus
}

// Result is what Resolve computes.
type Result struct {
	Table    *routes.Table
	Gateways map[types.NamespacedName]*GatewayStatus
	// Routes holds, for each route with a parentRef to a Gateway of
	// Havre's, the status of each such parentRef.
	Routes map[RouteKey][]*ParentStatus
}

func cond(t string, ok bool, reason, msg string) Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

// Ours reports whether a GatewayClass is implemented by Havre.
func Ours(c *gatewayv1.GatewayClass) bool {
	return c != nil && string(c.Spec.ControllerName) == routes.GatewayController
}

// resolver holds one Resolve's state.
type resolver struct {
	s        *Snapshot
	gateways map[types.NamespacedName]*gatewayv1.Gateway
	result   *Result
	// hosts[port][hostname] collects entries.
	hosts     map[int32]map[string]*hostEntries
	protocols map[int32]routes.Protocol
	listeners map[int32]*routes.Listener
}

type hostEntries struct {
	entries []entry
	seen    map[RouteKey]bool
}

// entry is one match of one rule of one route, with what orders it.
type entry struct {
	route   *routes.Route
	created time.Time
	key     RouteKey
	rule    int
	match   int
}

// Resolve translates a snapshot.
func Resolve(s *Snapshot) *Result {
	r := &resolver{
		s:         s,
		gateways:  map[types.NamespacedName]*gatewayv1.Gateway{},
		result:    &Result{Table: &routes.Table{}, Gateways: map[types.NamespacedName]*GatewayStatus{}, Routes: map[RouteKey][]*ParentStatus{}},
		hosts:     map[int32]map[string]*hostEntries{},
		protocols: map[int32]routes.Protocol{s.HTTPPort: routes.HTTP, s.HTTPSPort: routes.HTTPS},
		listeners: map[int32]*routes.Listener{},
	}
	ours := map[string]bool{}
	for _, c := range s.Classes {
		if Ours(c) {
			ours[c.Name] = true
		}
	}
	gws := slices.Clone(s.Gateways)
	slices.SortFunc(gws, func(a, b *gatewayv1.Gateway) int { return older(&a.ObjectMeta, &b.ObjectMeta) })
	for _, g := range gws {
		if !ours[string(g.Spec.GatewayClassName)] {
			continue
		}
		key := types.NamespacedName{Namespace: g.Namespace, Name: g.Name}
		r.gateways[key] = g
		r.result.Gateways[key] = r.gateway(g)
	}
	for _, rt := range s.HTTPRoutes {
		r.route(KindHTTPRoute, &rt.ObjectMeta, rt.Spec.ParentRefs, rt.Spec.Hostnames, func() built { return r.httpEntries(rt) })
	}
	for _, rt := range s.GRPCRoutes {
		r.route(KindGRPCRoute, &rt.ObjectMeta, rt.Spec.ParentRefs, rt.Spec.Hostnames, func() built { return r.grpcEntries(rt) })
	}
	r.table()
	return r.result
}

// older orders objects oldest first, then by namespace/name.
func older(a, b *metav1.ObjectMeta) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// servedPort is the proxy port a Gateway listener port is served on.
func (r *resolver) servedPort(p gatewayv1.PortNumber) int32 {
	switch p {
	case 80:
		return r.s.HTTPPort
	case 443:
		return r.s.HTTPSPort
	}
	return int32(p)
}

func (r *resolver) gateway(g *gatewayv1.Gateway) *GatewayStatus {
	st := &GatewayStatus{}
	if len(g.Spec.Addresses) > 0 {
		msg := "spec.addresses is not supported: the Gateway is served on the addresses of the nodes serving ingress"
		st.Conditions = []Condition{
			cond(string(gatewayv1.GatewayConditionAccepted), false, string(gatewayv1.GatewayReasonUnsupportedAddress), msg),
			cond(string(gatewayv1.GatewayConditionProgrammed), false, string(gatewayv1.GatewayReasonAddressNotUsable), msg),
		}
		for _, l := range g.Spec.Listeners {
			st.Listeners = append(st.Listeners, &ListenerStatus{Name: l.Name, SupportedKinds: []gatewayv1.RouteGroupKind{},
				Conditions: []Condition{
					cond(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonInvalid), msg),
					cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), msg),
				}})
		}
		return st
	}
	valid, programmed := 0, 0
	for _, l := range g.Spec.Listeners {
		ls := r.listener(g, l)
		st.Listeners = append(st.Listeners, ls)
		if ls.valid {
			valid++
		}
		for _, c := range ls.Conditions {
			if c.Type == string(gatewayv1.ListenerConditionProgrammed) && c.Status == metav1.ConditionTrue {
				programmed++
			}
		}
	}
	if valid == len(g.Spec.Listeners) {
		st.Conditions = append(st.Conditions, cond(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted), "Accepted by "+routes.GatewayController))
	} else {
		st.Conditions = append(st.Conditions, cond(string(gatewayv1.GatewayConditionAccepted), valid > 0, string(gatewayv1.GatewayReasonListenersNotValid),
			fmt.Sprintf("%d of %d listeners are not valid", len(g.Spec.Listeners)-valid, len(g.Spec.Listeners))))
	}
	if programmed > 0 {
		st.Conditions = append(st.Conditions, cond(string(gatewayv1.GatewayConditionProgrammed), true, string(gatewayv1.GatewayReasonProgrammed),
			fmt.Sprintf("%d of %d listeners served by the nodes' proxies", programmed, len(g.Spec.Listeners))))
	} else {
		st.Conditions = append(st.Conditions, cond(string(gatewayv1.GatewayConditionProgrammed), false, string(gatewayv1.GatewayReasonInvalid), "no listener can be served"))
	}
	return st
}

var supportedKinds = []gatewayv1.RouteGroupKind{
	{Group: new(gatewayv1.Group(Group)), Kind: KindHTTPRoute},
	{Group: new(gatewayv1.Group(Group)), Kind: KindGRPCRoute},
}

func groupOr(g *gatewayv1.Group, def string) string {
	if g == nil {
		return def
	}
	return string(*g)
}

func kindOr(k *gatewayv1.Kind, def string) string {
	if k == nil {
		return def
	}
	return string(*k)
}

func (r *resolver) listener(g *gatewayv1.Gateway, l gatewayv1.Listener) *ListenerStatus {
	ls := &ListenerStatus{Name: l.Name, SupportedKinds: []gatewayv1.RouteGroupKind{}}
	var proto routes.Protocol
	switch l.Protocol {
	case gatewayv1.HTTPProtocolType:
		proto = routes.HTTP
	case gatewayv1.HTTPSProtocolType:
		proto = routes.HTTPS
	default:
		msg := fmt.Sprintf("protocol %s is not supported (HTTP and HTTPS are)", l.Protocol)
		ls.Conditions = []Condition{
			cond(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonUnsupportedProtocol), msg),
			cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), msg),
			cond(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), ""),
			cond(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), ""),
		}
		return ls
	}
	refsOK, refsReason, refsMsg := true, string(gatewayv1.ListenerReasonResolvedRefs), ""
	// Route kinds.
	if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
		for _, k := range l.AllowedRoutes.Kinds {
			if groupOr(k.Group, Group) == Group && (k.Kind == KindHTTPRoute || k.Kind == KindGRPCRoute) {
				ls.SupportedKinds = append(ls.SupportedKinds, gatewayv1.RouteGroupKind{Group: new(gatewayv1.Group(Group)), Kind: k.Kind})
			} else {
				refsOK, refsReason, refsMsg = false, string(gatewayv1.ListenerReasonInvalidRouteKinds), fmt.Sprintf("route kind %s/%s is not supported", groupOr(k.Group, Group), k.Kind)
			}
		}
	} else {
		ls.SupportedKinds = slices.Clone(supportedKinds)
	}
	port := r.servedPort(l.Port)
	ls.port = port
	// Certificates.
	var certs []*routes.Certificate
	if proto == routes.HTTPS {
		if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gatewayv1.TLSModeTerminate {
			msg := "only tls mode Terminate is supported"
			ls.Conditions = []Condition{
				cond(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonUnsupportedValue), msg),
				cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), msg),
				cond(string(gatewayv1.ListenerConditionResolvedRefs), refsOK, refsReason, refsMsg),
				cond(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), ""),
			}
			return ls
		}
		var refs []gatewayv1.SecretObjectReference
		if l.TLS != nil {
			refs = l.TLS.CertificateRefs
		}
		for _, ref := range refs {
			c, reason, msg := r.certificate(g, l, ref)
			if reason != "" {
				if refsOK {
					refsOK, refsReason, refsMsg = false, reason, msg
				}
				continue
			}
			certs = append(certs, c)
		}
		if len(refs) == 0 && refsOK {
			refsOK, refsReason, refsMsg = false, string(gatewayv1.ListenerReasonInvalidCertificateRef), "an HTTPS listener needs tls.certificateRefs"
		}
	}
	// Conflicts between protocols on one served port.
	conflicted := false
	if p, ok := r.protocols[port]; ok && p != proto {
		conflicted = true
	}
	accepted := !conflicted
	ls.valid = accepted
	programmed := accepted && (proto == routes.HTTP || len(certs) > 0)
	conflictCond := cond(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), "")
	if conflicted {
		conflictCond = cond(string(gatewayv1.ListenerConditionConflicted), true, string(gatewayv1.ListenerReasonProtocolConflict),
			fmt.Sprintf("port %d is served as %s", port, r.protocols[port]))
	}
	acceptedCond := cond(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "")
	if conflicted {
		acceptedCond = cond(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonProtocolConflict), conflictCond.Message)
	}
	programmedCond := cond(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), fmt.Sprintf("served on port %d", port))
	if !programmed {
		programmedCond = cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), cmp.Or(conflictCond.Message, refsMsg))
	}
	ls.Conditions = []Condition{acceptedCond, programmedCond, cond(string(gatewayv1.ListenerConditionResolvedRefs), refsOK, refsReason, refsMsg), conflictCond}
	if !accepted {
		return ls
	}
	r.protocols[port] = proto
	pl := r.listenerAt(port, proto)
	for _, c := range certs {
		if l.Hostname != nil {
			c.Hosts = []string{string(*l.Hostname)}
		} else if pl.Default == nil {
			pl.Default = c
		}
		pl.Certificates = append(pl.Certificates, c)
	}
	return ls
}

func (r *resolver) listenerAt(port int32, proto routes.Protocol) *routes.Listener {
	if pl, ok := r.listeners[port]; ok {
		return pl
	}
	pl := &routes.Listener{Port: port, Protocol: proto}
	r.listeners[port] = pl
	return pl
}

// certificate loads a listener's certificateRef.
func (r *resolver) certificate(g *gatewayv1.Gateway, l gatewayv1.Listener, ref gatewayv1.SecretObjectReference) (*routes.Certificate, string, string) {
	if groupOr(ref.Group, "") != "" || kindOr(ref.Kind, "Secret") != "Secret" {
		return nil, string(gatewayv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("certificateRef %s/%s is not a Secret", groupOr(ref.Group, ""), kindOr(ref.Kind, "Secret"))
	}
	ns := g.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if ns != g.Namespace && !r.granted(Group, "Gateway", g.Namespace, "", "Secret", ns, string(ref.Name)) {
		return nil, string(gatewayv1.ListenerReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in %s allows a Gateway in %s to refer to Secret %s", ns, g.Namespace, ref.Name)
	}
	name := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	var secret *corev1.Secret
	if r.s.Secret != nil {
		secret = r.s.Secret(name)
	}
	if secret == nil {
		return nil, string(gatewayv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("Secret %s not found", name)
	}
	c, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, string(gatewayv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("Secret %s: %v", name, err)
	}
	cert := &routes.Certificate{Cert: &c, Source: name}
	if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil {
		c.Leaf = leaf
		cert.Hosts = slices.Clone(leaf.DNSNames)
	}
	return cert, "", ""
}

// granted reports whether a ReferenceGrant in toNS allows the reference.
func (r *resolver) granted(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	for _, g := range r.s.ReferenceGrants {
		if g.Namespace != toNS {
			continue
		}
		from := slices.ContainsFunc(g.Spec.From, func(f gatewayv1.ReferenceGrantFrom) bool {
			return string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS
		})
		to := slices.ContainsFunc(g.Spec.To, func(t gatewayv1.ReferenceGrantTo) bool {
			return string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || string(*t.Name) == toName)
		})
		if from && to {
			return true
		}
	}
	return false
}
