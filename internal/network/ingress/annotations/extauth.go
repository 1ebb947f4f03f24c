package annotations

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// authURLVars are the nginx variables auth-url and auth-signin may use.
var authURLVars = map[string]func(r *http.Request) string{
	"host":      redirectVars["host"],
	"http_host": redirectVars["http_host"],
	"scheme":    redirectVars["scheme"],
	"request_uri": func(r *http.Request) string {
		return r.URL.RequestURI()
	},
	"escaped_request_uri": func(r *http.Request) string { return url.QueryEscape(r.URL.RequestURI()) },
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+\-.^_|~` + "`" + `]+$`)

// externalAuthTimeout bounds one call of an auth-url.
const externalAuthTimeout = 15 * time.Second

// defaultAuthClient calls auth-url services; it refuses loopback,
// link-local (cloud metadata) and unspecified addresses, so that an
// Ingress cannot make the proxy node query its own local services.
var defaultAuthClient = &http.Client{
	Timeout: externalAuthTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Transport: &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout: 5 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return err
				}
				if a := ap.Addr().Unmap(); a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
					return fmt.Errorf("auth-url address %s refused (loopback, link-local or unspecified)", a)
				}
				return nil
			},
		}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	},
}

// expandVars expands the nginx variables of vars in s for r.
func expandVars(s string, vars map[string]func(*http.Request) string, r *http.Request) string {
	return redirectVarRE.ReplaceAllStringFunc(s, func(v string) string { return vars[v[1:]](r) })
}

// checkURLTemplate validates an auth-url/auth-signin value.
func checkURLTemplate(s string) error {
	for _, m := range redirectVarRE.FindAllStringSubmatch(s, -1) {
		if authURLVars[m[1]] == nil {
			return fmt.Errorf("variable $%s is not supported", m[1])
		}
	}
	sample := redirectVarRE.ReplaceAllStringFunc(s, func(v string) string {
		return map[string]string{"$scheme": "https", "$host": "h.example", "$http_host": "h.example"}[v]
	})
	u, err := url.Parse(sample)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("must be an absolute http(s) URL")
	}
	return nil
}

// parseExternalAuth reads auth-url (ingress-nginx's external
// authentication, nginx's auth_request): every request is first sent,
// without its body, to auth-url with auth-method (default GET), the
// client's headers and X-Original-URL, X-Original-Method, X-Sent-From,
// X-Real-IP, X-Forwarded-For and X-Auth-Request-Redirect. A 2xx lets the
// request through, with the auth-response-headers of the answer set on it
// (removed when the answer has none, so a client cannot forge them); a 401
// is answered 401 with the service's WWW-Authenticate, or a 302 to
// auth-signin with rd=<the original URL> (auth-signin-redirect-param); a
// 403 is answered 403; anything else 500.
func (p *Parser) parseExternalAuth(get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	authURL, ok := get("auth-url")
	if !ok || authURL == "" {
		for _, n := range []string{"auth-signin", "auth-method", "auth-response-headers", "auth-signin-redirect-param"} {
			if _, ok := get(n); ok {
				w.add("annotation %s%s: no auth-url (ignored)", NginxPrefix, n)
			}
		}
		return nil
	}
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { nginxError(rw, http.StatusServiceUnavailable) })
	}
	if err := checkURLTemplate(authURL); err != nil {
		w.add("annotation %sauth-url: invalid value %q: %v: requests are denied (503)", NginxPrefix, authURL, err)
		return deny
	}
	method := http.MethodGet
	if v, ok := get("auth-method"); ok && v != "" {
		if !regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$`).MatchString(v) {
			w.add("annotation %sauth-method: invalid value %q: requests are denied (503)", NginxPrefix, v)
			return deny
		}
		method = v
	}
	signin, _ := get("auth-signin")
	if signin != "" {
		if err := checkURLTemplate(signin); err != nil {
			w.invalid("auth-signin", signin, err)
			signin = ""
		}
	}
	rdParam := "rd"
	if v, ok := get("auth-signin-redirect-param"); ok && v != "" {
		if !regexp.MustCompile(`^[A-Za-z0-9_\-]+$`).MatchString(v) {
			w.invalid("auth-signin-redirect-param", v, fmt.Errorf("not a query parameter name"))
		} else {
			rdParam = v
		}
	}
	var respHeaders []string
	if v, ok := get("auth-response-headers"); ok {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h == "" {
				continue
			}
			if !headerNameRE.MatchString(h) {
				w.invalid("auth-response-headers", h, fmt.Errorf("not a header name"))
				continue
			}
			respHeaders = append(respHeaders, http.CanonicalHeaderKey(h))
		}
	}
	client := p.cfg.AuthClient
	if client == nil {
		client = defaultAuthClient
	}
	hopByHop := []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Content-Encoding"}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			scheme := authURLVars["scheme"](r)
			original := scheme + "://" + r.Host + r.URL.RequestURI()
			ctx, cancel := context.WithTimeout(r.Context(), externalAuthTimeout)
			defer cancel()
			areq, err := http.NewRequestWithContext(ctx, method, expandVars(authURL, authURLVars, r), nil)
			if err != nil {
				nginxError(rw, http.StatusInternalServerError)
				return
			}
			areq.Header = r.Header.Clone()
			for _, h := range hopByHop {
				areq.Header.Del(h)
			}
			clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
			if clientIP == "" {
				clientIP = r.RemoteAddr
			}
			areq.Header.Set("X-Original-URL", original)
			areq.Header.Set("X-Original-Method", r.Method)
			areq.Header.Set("X-Sent-From", "nginx-ingress-controller")
			areq.Header.Set("X-Real-IP", clientIP)
			areq.Header.Set("X-Forwarded-For", clientIP)
			areq.Header.Del("X-Forwarded-Proto")
			areq.Header.Set("X-Auth-Request-Redirect", r.URL.RequestURI())
			resp, err := client.Do(areq)
			if err != nil {
				nginxError(rw, http.StatusInternalServerError)
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				if len(respHeaders) > 0 {
					r = r.Clone(r.Context())
					for _, h := range respHeaders {
						if v := resp.Header.Get(h); v != "" {
							r.Header.Set(h, v)
						} else {
							r.Header.Del(h)
						}
					}
				}
				next.ServeHTTP(rw, r)
			case resp.StatusCode == http.StatusUnauthorized && signin != "":
				loc := expandVars(signin, authURLVars, r)
				sep := "?"
				if strings.Contains(loc, "?") {
					sep = "&"
				}
				rw.Header().Set("Location", loc+sep+rdParam+"="+url.QueryEscape(original))
				nginxError(rw, http.StatusFound)
			case resp.StatusCode == http.StatusUnauthorized:
				for _, v := range resp.Header.Values("WWW-Authenticate") {
					rw.Header().Add("WWW-Authenticate", v)
				}
				nginxError(rw, http.StatusUnauthorized)
			case resp.StatusCode == http.StatusForbidden:
				nginxError(rw, http.StatusForbidden)
			default:
				nginxError(rw, http.StatusInternalServerError)
			}
		})
	}
}
