// Package annotations reads the ingress-nginx annotations users migrating
// to Havre have in their Ingress manifests (nginx.ingress.kubernetes.io/...)
// and turns them into per-Ingress HTTP middleware (redirects, source-range
// allow lists, basic auth, CORS, HSTS) and a RouteTuning the Ingress
// translator copies into its routes (backend protocol, timeouts, body
// limit, cookie affinity, regex paths and rewrite-target).
//
// Raw proxy configuration is never accepted: snippets, and every nginx
// annotation Havre does not implement, come back as warnings, which the
// translator reports in an Event (RecordWarnings).
package annotations

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// Prefixes of the annotations read here.
const (
	NginxPrefix = "nginx.ingress.kubernetes.io/"
	// HSTS is Havre's own opt-in: "true", "false", or a header value
	// ("max-age=N[; includeSubDomains][; preload]").
	HSTS = "havre.io/hsts"
)

// Config of a Parser.
type Config struct {
	// Secrets reads auth-secret Secrets (an informer's lister). nil:
	// auth-type=basic answers 503, as ingress-nginx's denied location.
	Secrets corelisters.SecretLister
	// HTTPSPort is the proxy's HTTPS port, used in the Location of
	// force-ssl-redirect (0 or 443: no port in the URL).
	HTTPSPort int
	// AuthClient calls auth-url services; nil: a client that refuses
	// loopback, link-local and unspecified addresses.
	AuthClient *http.Client
}

// Parser reads annotations. It keeps the parsed htpasswd files and the
// passwords already verified across Parse calls; it is safe for
// concurrent use.
type Parser struct {
	cfg  Config
	auth authCache
	now  func() time.Time

	limitsMu sync.Mutex
	limits   map[string]*limitEntry // namespace/name/kind → state
}

// New returns a Parser.
func New(cfg Config) *Parser {
	return &Parser{cfg: cfg, now: time.Now}
}

// RouteTuning is what the translator copies into each routes.Route built
// from the Ingress (Apply does it).
type RouteTuning struct {
	// BackendProtocol (backend-protocol); "": not set.
	BackendProtocol routes.AppProtocol
	// ConnectTimeout (proxy-connect-timeout); 0: not set.
	ConnectTimeout time.Duration
	// ReadTimeout (proxy-read-timeout): the longest wait between two
	// reads of the backend's response; 0: not set.
	ReadTimeout time.Duration
	// MaxBodyBytes (proxy-body-size): >0 a limit, -1 explicitly unlimited
	// ("0"), 0 not set.
	MaxBodyBytes int64
	// Affinity (affinity=cookie, session-cookie-*); nil: none. An empty
	// Path is the Ingress path ("/" for regex paths).
	Affinity *routes.CookieAffinity
	// UseRegex (use-regex, implied by rewrite-target as in ingress-nginx):
	// the Ingress's paths are case-insensitive regular expressions
	// anchored at the start of the path.
	UseRegex bool
	// RewriteTarget (rewrite-target): the path sent to the backend, $1..$9
	// and ${N} replaced by the path regex's capture groups; "": none.
	RewriteTarget string
	// SSLRedirect (ssl-redirect); nil: the default (true). When false the
	// translator must not redirect this Ingress's hosts to HTTPS.
	SSLRedirect *bool
	// ForceSSLRedirect (force-ssl-redirect): the middleware redirects
	// plain-HTTP requests to HTTPS even for hosts without a certificate.
	ForceSSLRedirect bool
	// Retries (proxy-next-upstream-tries minus one); -1: not set (also
	// for "0", nginx's "no limit": the proxy's own bound applies).
	Retries int
	// NotServed, when set, says why none of the Ingress's paths may be
	// served (Apply fails with it): a canary Ingress, which ingress-nginx
	// only ever serves as a share of its main Ingress's traffic.
	NotServed string
}

// warns collects warnings.
type warns []string

func (w *warns) add(format string, args ...any) { *w = append(*w, fmt.Sprintf(format, args...)) }

func (w *warns) invalid(name, value string, err error) {
	w.add("annotation %s%s: invalid value %q: %v (ignored)", NginxPrefix, name, value, err)
}

// supported are the nginx annotations (without prefix) Parse reads.
var supported = map[string]bool{
	"ssl-redirect": true, "force-ssl-redirect": true,
	"rewrite-target": true, "use-regex": true,
	"backend-protocol": true,
	"proxy-body-size":  true, "proxy-read-timeout": true, "proxy-connect-timeout": true,
	"proxy-next-upstream-tries": true,
	"affinity":                  true, "affinity-mode": true, "session-cookie-name": true,
	"session-cookie-path": true, "session-cookie-max-age": true, "session-cookie-expires": true,
	"whitelist-source-range": true, "allowlist-source-range": true, "denylist-source-range": true,
	"auth-type": true, "auth-secret": true, "auth-secret-type": true, "auth-realm": true,
	"enable-cors": true, "cors-allow-origin": true, "cors-allow-methods": true,
	"cors-allow-headers": true, "cors-expose-headers": true, "cors-allow-credentials": true,
	"cors-max-age": true,
	"hsts":         true, "hsts-max-age": true, "hsts-include-subdomains": true, "hsts-preload": true,
	"app-root": true, "permanent-redirect": true, "permanent-redirect-code": true,
	"temporal-redirect": true, "temporal-redirect-code": true,
	"upstream-vhost": true, "x-forwarded-prefix": true,
	"limit-rps": true, "limit-rpm": true, "limit-connections": true, "limit-burst-multiplier": true,
	"limit-whitelist": true, "limit-allowlist": true,
	"auth-url": true, "auth-method": true, "auth-signin": true, "auth-response-headers": true,
	"auth-signin-redirect-param": true, "satisfy": true,
	"auth-tls-secret": true, "auth-tls-verify-client": true, // refused below
	"canary": true, "canary-weight": true, "canary-weight-total": true, "canary-by-header": true,
	"canary-by-header-value": true, "canary-by-header-pattern": true, "canary-by-cookie": true,
}

// noEffect are nginx tuning annotations that have no counterpart in
// Havre's proxy, and why.
var noEffect = map[string]string{
	"proxy-buffering":           "responses are streamed, never buffered to disk",
	"proxy-buffer-size":         "header sizes are not bound to nginx buffers",
	"proxy-buffers-number":      "responses are streamed, never buffered to disk",
	"proxy-busy-buffers-size":   "responses are streamed, never buffered to disk",
	"proxy-max-temp-file-size":  "responses are streamed, never buffered to disk",
	"proxy-request-buffering":   "request bodies are streamed",
	"client-body-buffer-size":   "request bodies are streamed",
	"proxy-http-version":        "the protocol to the backend follows backend-protocol",
	"service-upstream":          "requests always go to the Service's ready endpoints",
	"enable-access-log":         "every request is logged",
	"client-header-buffer-size": "header sizes are not bound to nginx buffers",
	"load-balance":              "the proxy balances over ready endpoints with its own policy",
	"ssl-ciphers":               "TLS uses Go's secure defaults",
	"ssl-prefer-server-ciphers": "TLS uses Go's secure defaults",
	"http2-push-preload":        "HTTP/2 server push is obsolete",
}

// Parse reads ing's annotations: mw (nil when no annotation needs one)
// wraps every route of the Ingress; tune is copied into the routes
// (RouteTuning.Apply); warnings name the annotations not applied.
//
// mw handles, outermost first as ingress-nginx's phases: app-root (302
// for "/"), temporal-redirect/permanent-redirect, CORS (preflight
// answered 204, headers set on responses), force-ssl-redirect (308),
// limit-rps, limit-rpm and limit-connections (503),
// whitelist/allowlist/denylist-source-range (403), basic auth (401),
// auth-url (external authentication: 401/403/302 to auth-signin) — with
// satisfy=any an allowed source range or the authentication suffices —, HSTS
// on TLS responses, upstream-vhost and x-forwarded-prefix.
func (p *Parser) Parse(ing *networkingv1.Ingress) (mw func(http.Handler) http.Handler, tune RouteTuning, warnings []string) {
	tune.Retries = -1
	var w warns
	a := ing.Annotations
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, ok := strings.CutPrefix(k, NginxPrefix)
		if !ok {
			continue
		}
		switch {
		case strings.HasSuffix(name, "-snippet") || name == "configuration-snippet":
			w.add("annotation %s: snippets are never applied (raw proxy configuration is not accepted)", k)
		case noEffect[name] != "":
			w.add("annotation %s has no effect in Havre: %s (ignored)", k, noEffect[name])
		case !supported[name]:
			w.add("annotation %s is not supported by Havre (ignored)", k)
		}
	}
	get := func(name string) (string, bool) {
		v, ok := a[NginxPrefix+name]
		return strings.TrimSpace(v), ok
	}
	getBool := func(name string) (bool, bool) {
		v, ok := get(name)
		if !ok {
			return false, false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			w.invalid(name, v, err)
			return false, false
		}
		return b, true
	}

	// Routing and tuning.
	if canary, _ := getBool("canary"); canary {
		tune.NotServed = "canary Ingresses are not supported by Havre: this one is not served, its main Ingress gets all the traffic"
		w.add("annotation %scanary: %s", NginxPrefix, tune.NotServed)
	}
	if b, ok := getBool("ssl-redirect"); ok {
		tune.SSLRedirect = &b
	}
	tune.ForceSSLRedirect, _ = getBool("force-ssl-redirect")
	tune.UseRegex, _ = getBool("use-regex")
	if v, ok := get("rewrite-target"); ok && v != "" {
		if err := checkRewriteTarget(v); err != nil {
			w.invalid("rewrite-target", v, err)
		} else {
			tune.RewriteTarget = v
			tune.UseRegex = true
		}
	}
	if v, ok := get("backend-protocol"); ok {
		switch strings.ToUpper(v) {
		case "HTTP", "AUTO_HTTP":
			tune.BackendProtocol = routes.ProtoHTTP1
		case "HTTPS":
			tune.BackendProtocol = routes.ProtoHTTPS
		case "GRPC":
			tune.BackendProtocol = routes.ProtoGRPC
		case "GRPCS":
			tune.BackendProtocol = routes.ProtoGRPCS
		case "H2C":
			tune.BackendProtocol = routes.ProtoH2C
		case "FCGI":
			w.add("annotation %sbackend-protocol: FCGI is not supported by Havre (ignored)", NginxPrefix)
		default:
			w.invalid("backend-protocol", v, fmt.Errorf("must be HTTP, HTTPS, GRPC, GRPCS or AUTO_HTTP"))
		}
	}
	if v, ok := get("proxy-body-size"); ok {
		n, err := parseSize(v)
		switch {
		case err != nil:
			w.invalid("proxy-body-size", v, err)
		case n == 0:
			tune.MaxBodyBytes = -1
		default:
			tune.MaxBodyBytes = n
		}
	}
	timeout := func(name string) time.Duration {
		v, ok := get(name)
		if !ok {
			return 0
		}
		d, err := parseSeconds(v)
		if err != nil {
			w.invalid(name, v, err)
			return 0
		}
		return d
	}
	tune.ConnectTimeout = timeout("proxy-connect-timeout")
	tune.ReadTimeout = timeout("proxy-read-timeout")
	if v, ok := get("proxy-next-upstream-tries"); ok {
		n, err := strconv.Atoi(v)
		if err == nil && n < 0 {
			err = fmt.Errorf("must not be negative")
		}
		switch {
		case err != nil:
			w.invalid("proxy-next-upstream-tries", v, err)
		case n == 0: // nginx: no limit; Havre keeps its own bound
		default:
			tune.Retries = n - 1
		}
	}
	tune.Affinity = parseAffinity(get, &w)

	// Middleware, innermost last.
	var layers []func(http.Handler) http.Handler
	for _, l := range []func(http.Handler) http.Handler{parseAppRoot(get, &w), parseRedirect(get, &w)} {
		if l != nil {
			layers = append(layers, l)
		}
	}
	if c := parseCORS(get, getBool, &w); c != nil {
		layers = append(layers, c.wrap)
	}
	if tune.ForceSSLRedirect {
		layers = append(layers, redirectToHTTPS(p.cfg.HTTPSPort))
	}
	// Client certificate authentication Havre cannot enforce: fail closed
	// rather than serve what the Ingress meant to protect.
	if v, ok := get("auth-tls-secret"); ok && v != "" {
		if mode, _ := get("auth-tls-verify-client"); mode == "off" {
			w.add("annotation %sauth-tls-secret: client certificate authentication is not supported by Havre (ignored: auth-tls-verify-client is off)", NginxPrefix)
		} else {
			w.add("annotation %sauth-tls-secret: client certificate authentication is not supported by Havre: requests are denied (503)", NginxPrefix)
			layers = append(layers, func(http.Handler) http.Handler {
				return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { nginxError(rw, http.StatusServiceUnavailable) })
			})
		}
	}
	// nginx's preaccess phase (rate limits), then its access phase: the
	// source ranges and authentication, all required unless satisfy=any.
	if l := p.parseRateLimits(ing, get, &w); l != nil {
		layers = append(layers, l)
	}
	access := parseSourceRanges(get, &w)
	var auth []func(http.Handler) http.Handler
	for _, l := range []func(http.Handler) http.Handler{p.parseAuth(ing, get, &w), p.parseExternalAuth(get, &w)} {
		if l != nil {
			auth = append(auth, l)
		}
	}
	satisfyAny := false
	if v, ok := get("satisfy"); ok && v != "" {
		switch v {
		case "any":
			satisfyAny = true
		case "all":
		default:
			w.invalid("satisfy", v, fmt.Errorf(`must be "all" or "any"`))
		}
	}
	switch {
	case satisfyAny && access != nil && len(auth) > 0:
		layers = append(layers, func(next http.Handler) http.Handler {
			authed := chain(auth, next)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if access(r) {
					next.ServeHTTP(w, r)
					return
				}
				authed.ServeHTTP(w, r)
			})
		})
	default:
		if access != nil {
			layers = append(layers, accessLayer(access))
		}
		layers = append(layers, auth...)
	}
	if h := parseHSTS(a, get, getBool, &w); h != "" {
		layers = append(layers, hsts(h))
	}
	if l := parseUpstreamRequest(get, &w); l != nil {
		layers = append(layers, l)
	}
	if len(layers) > 0 {
		mw = func(next http.Handler) http.Handler { return chain(layers, next) }
	}
	return mw, tune, w
}

// chain wraps next in layers, the first outermost.
func chain(layers []func(http.Handler) http.Handler, next http.Handler) http.Handler {
	for i := len(layers) - 1; i >= 0; i-- {
		next = layers[i](next)
	}
	return next
}

var sizeRE = regexp.MustCompile(`^([0-9]+)([kKmMgG]?)$`)

// parseSize parses an nginx size ("8m", "512k", "1g", "1024").
func parseSize(v string) (int64, error) {
	m := sizeRE.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("not an nginx size (a number with an optional k, m or g suffix)")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("too large")
	}
	return n << shift, nil
}

// parseSeconds parses a timeout: seconds as ingress-nginx reads them, or
// an nginx time ("30s", "2m", "1h").
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("must be a positive number of seconds")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive number of seconds")
	}
	return d, nil
}

func parseAffinity(get func(string) (string, bool), w *warns) *routes.CookieAffinity {
	v, ok := get("affinity")
	if !ok {
		return nil
	}
	if v != "cookie" {
		w.invalid("affinity", v, fmt.Errorf(`only "cookie" is supported`))
		return nil
	}
	aff := &routes.CookieAffinity{Name: "INGRESSCOOKIE"}
	if v, ok := get("affinity-mode"); ok && v != "balanced" && v != "persistent" {
		w.invalid("affinity-mode", v, fmt.Errorf(`must be "balanced" or "persistent"`))
	}
	if v, ok := get("session-cookie-name"); ok && v != "" {
		if !validCookieName(v) {
			w.invalid("session-cookie-name", v, fmt.Errorf("not a cookie name"))
		} else {
			aff.Name = v
		}
	}
	if v, ok := get("session-cookie-path"); ok && v != "" {
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "; \t\r\n") {
			w.invalid("session-cookie-path", v, fmt.Errorf("not a cookie path"))
		} else {
			aff.Path = v
		}
	}
	for _, name := range []string{"session-cookie-expires", "session-cookie-max-age"} {
		if v, ok := get(name); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				w.invalid(name, v, fmt.Errorf("must be a positive number of seconds"))
				continue
			}
			aff.MaxAge = time.Duration(n) * time.Second
		}
	}
	return aff
}

func validCookieName(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// Apply copies t into r, a route the translator built from one Ingress
// path (Matches and Backends set). With UseRegex (or RewriteTarget) the
// Prefix matches become ingress-nginx's regex (PathRegex) and Exact ones
// anchored regexes, and a URLRewrite filter carries RewriteTarget as
// PathModifier.RegexTemplate (applied by RewriteURL). It fails, leaving r
// unchanged, when a path is not a regular expression Go accepts, or when
// the Ingress must not be served (NotServed): the translator then skips
// the path and reports it.
func (t RouteTuning) Apply(r *routes.Route) error {
	if t.NotServed != "" {
		return errors.New(t.NotServed)
	}
	matches := r.Matches
	if t.UseRegex {
		matches = slices.Clone(r.Matches)
		for i, m := range matches {
			var re *regexp.Regexp
			var err error
			switch m.PathType {
			case routes.PathPrefix:
				re, err = PathRegex(m.Path)
			case routes.PathExact:
				if t.RewriteTarget == "" {
					continue // nginx keeps "location = path"
				}
				re, err = regexp.Compile("^(?:" + regexp.QuoteMeta(m.Path) + ")$")
			default:
				continue
			}
			if err != nil {
				return fmt.Errorf("path %q is not a regular expression Havre accepts (RE2 syntax): %v", m.Path, err)
			}
			m.PathType, m.Regex = routes.PathRegex, re
			matches[i] = m
		}
	}
	r.Matches = matches
	if t.RewriteTarget != "" {
		r.Filters = append(slices.Clip(r.Filters), routes.Filter{
			Type:    routes.URLRewrite,
			Rewrite: &routes.Rewrite{Path: &routes.PathModifier{RegexTemplate: t.RewriteTarget}},
		})
	}
	if t.BackendProtocol != "" {
		bs := slices.Clone(r.Backends)
		for i := range bs {
			bs[i].Protocol = t.BackendProtocol
		}
		r.Backends = bs
	}
	if t.ConnectTimeout > 0 {
		r.ConnectTimeout = t.ConnectTimeout
	}
	if t.ReadTimeout > 0 {
		r.ReadTimeout = t.ReadTimeout
	}
	switch {
	case t.MaxBodyBytes > 0:
		r.MaxBodyBytes = t.MaxBodyBytes
	case t.MaxBodyBytes < 0:
		r.MaxBodyBytes = 0
	}
	if t.Retries >= 0 {
		r.Retries = t.Retries
	}
	if t.Affinity != nil {
		aff := *t.Affinity
		if aff.Path == "" {
			aff.Path = "/"
			if len(r.Matches) > 0 && r.Matches[0].PathType != routes.PathRegex && r.Matches[0].Path != "" {
				aff.Path = r.Matches[0].Path
			}
		}
		r.Affinity = &aff
	}
	return nil
}

// authCache keeps parsed htpasswd Secrets and verified passwords.
type authCache struct {
	mu       sync.Mutex
	files    map[string]*htpasswd // namespace/name → file at a resourceVersion
	verified map[[32]byte]struct{}
}
