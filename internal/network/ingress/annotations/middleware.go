package annotations

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// acmePath is never redirected: HTTP-01 challenges are answered on HTTP.
const acmePath = "/.well-known/acme-challenge/"

// redirectToHTTPS answers plain-HTTP requests with a 308 to the same URL
// over HTTPS (ingress-nginx's http-redirect-code default).
func redirectToHTTPS(port int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil || strings.HasPrefix(r.URL.Path, acmePath) {
				next.ServeHTTP(w, r)
				return
			}
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			if port != 0 && port != 443 {
				host += ":" + strconv.Itoa(port)
			}
			http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
		})
	}
}

// headerWriter sets headers on the response just before it is sent,
// replacing the backend's (nginx's more_set_headers).
type headerWriter struct {
	http.ResponseWriter
	set     func(http.Header)
	written bool
}

func (h *headerWriter) WriteHeader(code int) {
	if !h.written && (code >= 200 || code == http.StatusSwitchingProtocols) {
		h.written = true
		h.set(h.ResponseWriter.Header())
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerWriter) Write(b []byte) (int, error) {
	if !h.written {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

func (h *headerWriter) Flush() {
	if !h.written {
		h.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(h.ResponseWriter).Flush()
}

// Hijack sets the headers first: a reverse proxy switching protocols
// writes the 101 response itself, from Header().
func (h *headerWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !h.written {
		h.written = true
		h.set(h.ResponseWriter.Header())
	}
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection.
func (h *headerWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func setHeaders(next http.Handler, w http.ResponseWriter, r *http.Request, set func(http.Header)) {
	hw := &headerWriter{ResponseWriter: w, set: set}
	next.ServeHTTP(hw, r)
	if !hw.written { // an empty 200: the server writes the header after us
		hw.written = true
		set(w.Header())
	}
}

// parseHSTS returns the Strict-Transport-Security value to send on TLS
// responses, "" for none: havre.io/hsts, else nginx's hsts, hsts-max-age,
// hsts-include-subdomains and hsts-preload (ingress-nginx's ConfigMap keys,
// and their defaults, as annotations).
func parseHSTS(a map[string]string, get func(string) (string, bool), getBool func(string) (bool, bool), w *warns) string {
	if v, ok := a[HSTS]; ok {
		v = strings.TrimSpace(v)
		switch strings.ToLower(v) {
		case "true":
			return "max-age=31536000; includeSubDomains"
		case "false", "":
			return ""
		}
		if !hstsRE.MatchString(v) {
			w.add("annotation %s: invalid value %q: must be true, false or max-age=<seconds>[; includeSubDomains][; preload] (ignored)", HSTS, v)
			return ""
		}
		return v
	}
	on, ok := getBool("hsts")
	if !ok || !on {
		return ""
	}
	maxAge := "31536000"
	if v, ok := get("hsts-max-age"); ok {
		if n, err := strconv.ParseUint(v, 10, 32); err != nil {
			w.invalid("hsts-max-age", v, fmt.Errorf("must be a number of seconds"))
		} else {
			maxAge = strconv.FormatUint(n, 10)
		}
	}
	value := "max-age=" + maxAge
	if sub, ok := getBool("hsts-include-subdomains"); !ok || sub {
		value += "; includeSubDomains"
	}
	if pre, ok := getBool("hsts-preload"); ok && pre {
		value += "; preload"
	}
	return value
}

var hstsRE = regexp.MustCompile(`(?i)^max-age=[0-9]+(\s*;\s*(includeSubDomains|preload))*$`)

func hsts(value string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				next.ServeHTTP(w, r)
				return
			}
			setHeaders(next, w, r, func(h http.Header) { h.Set("Strict-Transport-Security", value) })
		})
	}
}

// parseSourceRanges reads whitelist-source-range (or its newer name
// allowlist-source-range) and denylist-source-range: comma-separated CIDRs
// or addresses checked against the client's address. allowed is nil when
// neither is set. An allow list whose entries are all invalid denies every
// client.
func parseSourceRanges(get func(string) (string, bool), w *warns) (allowed func(*http.Request) bool) {
	parse := func(name string) ([]netip.Prefix, bool) {
		v, ok := get(name)
		if !ok {
			return nil, false
		}
		var out []netip.Prefix
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := parsePrefix(s)
			if err != nil {
				w.invalid(name, s, err)
				continue
			}
			out = append(out, p)
		}
		return out, true
	}
	allow, hasAllow := parse("allowlist-source-range")
	if !hasAllow {
		allow, hasAllow = parse("whitelist-source-range")
	} else if _, ok := get("whitelist-source-range"); ok {
		w.add("annotation %swhitelist-source-range: allowlist-source-range is set and takes precedence (ignored)", NginxPrefix)
	}
	deny, _ := parse("denylist-source-range")
	if hasAllow && len(allow) == 0 {
		w.add("annotation %sallowlist-source-range: no valid range: every client is denied", NginxPrefix)
	}
	if !hasAllow && len(deny) == 0 {
		return nil
	}
	return func(r *http.Request) bool {
		a, ok := clientAddr(r)
		return ok && !containsAddr(deny, a) && (!hasAllow || containsAddr(allow, a))
	}
}

// accessLayer answers 403 Forbidden to the clients allowed refuses, as
// nginx's deny.
func accessLayer(allowed func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !allowed(r) {
				forbidden(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// forbidden answers as nginx's deny.
func forbidden(w http.ResponseWriter) {
	nginxError(w, http.StatusForbidden)
}

// nginxError writes nginx's default error page for code.
func nginxError(w http.ResponseWriter, code int) {
	text := fmt.Sprintf("%d %s", code, http.StatusText(code))
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>havre</center>\r\n</body>\r\n</html>\r\n", text, text)
}

// cors is ingress-nginx's enable-cors.
type cors struct {
	anyOrigin   bool
	origins     []*regexp.Regexp
	credentials bool
	methods     string
	headers     string
	expose      string
	maxAge      string
}

var (
	corsOriginRE  = regexp.MustCompile(`^(https?://(\*\.)?[A-Za-z0-9\-.]*(:[0-9]+)?|\*)$`)
	corsMethodsRE = regexp.MustCompile(`^([A-Za-z]+,?\s?)+$`)
	corsHeadersRE = regexp.MustCompile(`^([A-Za-z0-9\-_]+,?\s?)+$`)
)

func parseCORS(get func(string) (string, bool), getBool func(string) (bool, bool), w *warns) *cors {
	if on, ok := getBool("enable-cors"); !ok || !on {
		return nil
	}
	c := &cors{
		anyOrigin:   true,
		credentials: true,
		methods:     "GET, PUT, POST, DELETE, PATCH, OPTIONS",
		headers:     "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
		maxAge:      "1728000",
	}
	if v, ok := get("cors-allow-origin"); ok && v != "" {
		c.anyOrigin = false
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			switch {
			case o == "":
			case o == "*":
				c.anyOrigin = true
			case !corsOriginRE.MatchString(o):
				w.invalid("cors-allow-origin", o, fmt.Errorf("not an origin (scheme://host[:port], *.domain allowed)"))
			default:
				pattern := regexp.QuoteMeta(strings.ToLower(o))
				pattern = strings.Replace(pattern, `://\*\.`, `://[a-z0-9\-]+\.`, 1)
				c.origins = append(c.origins, regexp.MustCompile("(?i)^"+pattern+"$"))
			}
		}
		if c.anyOrigin {
			c.origins = nil
		}
	}
	if b, ok := getBool("cors-allow-credentials"); ok {
		c.credentials = b
	}
	list := func(name string, re *regexp.Regexp, dst *string) {
		if v, ok := get(name); ok && v != "" {
			if !re.MatchString(v) {
				w.invalid(name, v, fmt.Errorf("not a comma-separated list of names"))
				return
			}
			*dst = v
		}
	}
	list("cors-allow-methods", corsMethodsRE, &c.methods)
	list("cors-allow-headers", corsHeadersRE, &c.headers)
	list("cors-expose-headers", regexp.MustCompile(`^(\*|[A-Za-z0-9\-_]+)(\s*,\s*(\*|[A-Za-z0-9\-_]+))*$`), &c.expose)
	if v, ok := get("cors-max-age"); ok && v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			w.invalid("cors-max-age", v, fmt.Errorf("must be a number of seconds"))
		} else {
			c.maxAge = strconv.Itoa(n)
		}
	}
	return c
}

func (c *cors) allowed(origin string) bool {
	if c.anyOrigin {
		return true
	}
	for _, re := range c.origins {
		if re.MatchString(origin) {
			return true
		}
	}
	return false
}

func (c *cors) set(h http.Header, origin string) {
	if c.anyOrigin {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if c.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Allow-Methods", c.methods)
	h.Set("Access-Control-Allow-Headers", c.headers)
	if c.expose != "" {
		h.Set("Access-Control-Expose-Headers", c.expose)
	}
	h.Set("Access-Control-Max-Age", c.maxAge)
}

// wrap answers preflights (OPTIONS from an allowed origin, any OPTIONS
// when every origin is) with 204 and sets the CORS headers on the
// responses to allowed origins, as ingress-nginx's template.
func (c *cors) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !c.allowed(origin) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			h := w.Header()
			c.set(h, origin)
			h.Set("Content-Type", "text/plain charset=UTF-8")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		setHeaders(next, w, r, func(h http.Header) { c.set(h, origin) })
	})
}

// parsePrefix parses a CIDR or an address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR or an IP address")
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
	}
	return p.Masked(), nil
}

// clientAddr is the address of the client of r (the proxy's peer).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func containsAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
