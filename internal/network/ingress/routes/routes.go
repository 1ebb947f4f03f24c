// Package routes is the model a node's HTTP(S) proxy serves: what
// Ingresses and Gateway API routes translate into, shaped after HTTPRoute
// (the richer of the two), so that one proxy serves both. Translators
// (internal/network/ingress for Ingress v1, internal/network/gateway for
// Gateway API) produce VirtualHosts; the proxy merges them into a Table.
//
// Every value is immutable once handed to the proxy: a change builds new
// values, and the proxy swaps its whole table atomically.
package routes

import (
	"crypto/tls"
	"net/http"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Table is everything one proxy node serves.
type Table struct {
	// Listeners are the ports the proxy serves and what each serves. The
	// node's ingress HTTP and HTTPS ports always have one, even empty.
	Listeners []*Listener
}

// Protocol of a listener.
type Protocol string

const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
)

// Listener is one port of the proxy.
type Listener struct {
	// Port the proxy listens on (on every address of the node).
	Port     int32
	Protocol Protocol
	// Hosts in the order they are matched: exact names first, then
	// wildcards (longest suffix first), then the catch-all "" host.
	Hosts []*VirtualHost
	// Certificates are the listener's TLS certificates (HTTPS only),
	// chosen by SNI: exact name, then wildcard, then Default.
	Certificates []*Certificate
	Default      *Certificate
}

// Certificate is a TLS certificate and the names it is served for.
type Certificate struct {
	// Hosts are the SNI names (a leading "*." is a wildcard of one label).
	Hosts []string
	Cert  *tls.Certificate
	// Source is the Secret the certificate came from.
	Source types.NamespacedName
}

// VirtualHost is what a host name serves.
type VirtualHost struct {
	// Hostname is an exact name, a wildcard "*.example.com" (one or more
	// labels in front, as Ingress and Gateway API define it) or "" (any).
	Hostname string
	// Routes in precedence order (the translator sorts them as its API
	// says: Gateway API's rule precedence, Ingress's longest path first).
	Routes []*Route
	// RedirectToHTTPS: requests on the HTTP listener get a 308 to https
	// (a host with a certificate, unless its Ingress opts out).
	RedirectToHTTPS bool
}

// Origin names the object a route comes from, for access logs, metrics
// and Events.
type Origin struct {
	Kind      string // "Ingress", "HTTPRoute", "GRPCRoute"
	Namespace string
	Name      string
	Rule      int // index of the rule within the object
}

// PathMatchType is how a request path is matched.
type PathMatchType string

const (
	// PathExact matches the path exactly (case-sensitive).
	PathExact PathMatchType = "Exact"
	// PathPrefix matches element-wise on "/"-separated elements: /foo
	// matches /foo, /foo/ and /foo/bar, not /foobar.
	PathPrefix PathMatchType = "PathPrefix"
	// PathRegex matches a regular expression against the whole path.
	PathRegex PathMatchType = "RegularExpression"
)

// Match is one way a request matches a route: every set field must match.
type Match struct {
	PathType PathMatchType
	Path     string
	Regex    *regexp.Regexp // PathRegex only
	// Headers and QueryParams must all match (header names are
	// case-insensitive).
	Headers     []ValueMatch
	QueryParams []ValueMatch
	// Method matches the request method; "" matches any.
	Method string
}

// ValueMatch matches a header or query parameter.
type ValueMatch struct {
	Name  string
	Value string
	Regex *regexp.Regexp // nil: exact
}

// Route is one rule: any of its matches selects it; filters run in order,
// then the request goes to a backend chosen by weight.
type Route struct {
	Origin  Origin
	Matches []Match
	Filters []Filter
	// Backends chosen by weight. A route without backends (or whose
	// backends are all invalid) answers 500, as Gateway API asks; one whose
	// backends have no ready endpoint answers 503.
	Backends []Backend
	// Timeout bounds the whole request (0: none); BackendTimeout each try.
	Timeout        time.Duration
	BackendTimeout time.Duration
	// ConnectTimeout bounds connecting to an endpoint, ReadTimeout the wait
	// between two reads of the backend's response (ingress-nginx's
	// proxy-connect-timeout and proxy-read-timeout); 0: the proxy's default.
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// Retries of idempotent requests on connection failures and 502/503/504
	// before a response byte was sent to the client.
	Retries int
	// MaxBodyBytes limits the request body (0: no limit; 413 beyond it).
	MaxBodyBytes int64
	// Middleware wraps the route's handler (annotations: auth, CORS,
	// allow lists...); nil: none. It is applied after Filters.
	Middleware func(http.Handler) http.Handler
	// Affinity, when set, pins a client to an endpoint with a cookie.
	Affinity *CookieAffinity
}

// CookieAffinity is session affinity by cookie.
type CookieAffinity struct {
	Name   string
	Path   string
	MaxAge time.Duration
}

// FilterType names a filter, as Gateway API's HTTPRouteFilterType.
type FilterType string

const (
	RequestHeaderModifier  FilterType = "RequestHeaderModifier"
	ResponseHeaderModifier FilterType = "ResponseHeaderModifier"
	RequestRedirect        FilterType = "RequestRedirect"
	URLRewrite             FilterType = "URLRewrite"
	RequestMirror          FilterType = "RequestMirror"
)

// Filter is one of Gateway API's HTTPRoute filters; the field of its Type
// is set.
type Filter struct {
	Type           FilterType
	RequestHeader  *HeaderModifier
	ResponseHeader *HeaderModifier
	Redirect       *Redirect
	Rewrite        *Rewrite
	Mirror         *Backend
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Header is a header name and value.
type Header struct{ Name, Value string }

// Redirect answers with a redirect; empty fields keep the request's.
type Redirect struct {
	Scheme   string
	Hostname string
	Port     int32 // 0: the scheme's default when Scheme is set, else the request's
	Path     *PathModifier
	// StatusCode is 301, 302, 303, 307 or 308 (default 302).
	StatusCode int
}

// Rewrite changes the request before it is proxied.
type Rewrite struct {
	Hostname string
	Path     *PathModifier
}

// PathModifier replaces the full path or the matched prefix.
type PathModifier struct {
	// ReplaceFullPath, or, when ReplacePrefix is true, the matched
	// PathPrefix is replaced by Value.
	Value         string
	ReplacePrefix bool
	// RegexTemplate, when set, is expanded with the PathRegex match's
	// capture groups ($1...) (Ingress rewrite-target).
	RegexTemplate string
}

// AppProtocol is how the proxy talks to a backend.
type AppProtocol string

const (
	ProtoHTTP1 AppProtocol = "HTTP"  // HTTP/1.1 (WebSocket upgrades pass through)
	ProtoH2C   AppProtocol = "H2C"   // HTTP/2 over cleartext (gRPC, kubernetes.io/h2c)
	ProtoHTTPS AppProtocol = "HTTPS" // HTTP/1.1 or HTTP/2 over TLS (not verified)
	ProtoGRPC  AppProtocol = "GRPC"  // gRPC over h2c
	ProtoGRPCS AppProtocol = "GRPCS" // gRPC over TLS
)

// Backend is a Service port the proxy sends requests to, through its
// EndpointSlices' ready endpoints (never the cluster IP).
type Backend struct {
	Service types.NamespacedName
	// Port is the Service port (number); PortName when given by name.
	Port     int32
	PortName string
	Weight   int32
	Protocol AppProtocol
	// Invalid, when set, says why the backend cannot be used (unknown
	// Service, refused reference, unsupported kind): its share of the
	// traffic answers 500.
	Invalid string
	// Filters applied only for this backend (Gateway API backendRef
	// filters).
	Filters []Filter
}
