package annotations

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// redirectVars are the nginx variables a redirect URL may use.
var redirectVarRE = regexp.MustCompile(`\$([a-z_]+)`)

var redirectVars = map[string]func(r *http.Request) string{
	"request_uri": func(r *http.Request) string { return r.URL.RequestURI() },
	"uri":         func(r *http.Request) string { return r.URL.EscapedPath() },
	"args":        func(r *http.Request) string { return r.URL.RawQuery },
	"is_args": func(r *http.Request) string {
		if r.URL.RawQuery != "" {
			return "?"
		}
		return ""
	},
	"host": func(r *http.Request) string {
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			return h
		}
		return r.Host
	},
	"http_host": func(r *http.Request) string { return r.Host },
	"scheme": func(r *http.Request) string {
		if r.TLS != nil {
			return "https"
		}
		return "http"
	},
}

// parseRedirect reads temporal-redirect (+temporal-redirect-code, default
// 302), which ingress-nginx prefers, else permanent-redirect
// (+permanent-redirect-code, default 301): every request of the Ingress
// is answered with a redirect to the URL, in which $request_uri, $uri,
// $args, $is_args, $host, $http_host and $scheme are expanded.
func parseRedirect(get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	for _, kind := range []struct {
		name string
		code int
	}{{"temporal-redirect", http.StatusFound}, {"permanent-redirect", http.StatusMovedPermanently}} {
		target, ok := get(kind.name)
		if !ok || target == "" {
			continue
		}
		code := kind.code
		if v, ok := get(kind.name + "-code"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 300 || n > 308 {
				w.invalid(kind.name+"-code", v, fmt.Errorf("must be a redirect status code (300-308)"))
			} else {
				code = n
			}
		}
		sample := redirectVarRE.ReplaceAllStringFunc(target, func(v string) string {
			return map[string]string{"$scheme": "https", "$host": "h.example", "$http_host": "h.example"}[v]
		})
		u, err := url.Parse(sample)
		if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
			err = fmt.Errorf("must be an absolute http(s) URL")
		}
		for _, m := range redirectVarRE.FindAllStringSubmatch(target, -1) {
			if redirectVars[m[1]] == nil && err == nil {
				err = fmt.Errorf("variable $%s is not supported", m[1])
			}
		}
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			if err == nil {
				err = fmt.Errorf("must not contain white space")
			}
			w.invalid(kind.name, target, err)
			continue
		}
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				loc := redirectVarRE.ReplaceAllStringFunc(target, func(v string) string { return redirectVars[v[1:]](r) })
				rw.Header().Set("Location", loc)
				nginxError(rw, code)
			})
		}
	}
	return nil
}

// parseAppRoot reads app-root: requests for "/" are redirected (302) to
// the application's root path.
func parseAppRoot(get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	root, ok := get("app-root")
	if !ok || root == "" {
		return nil
	}
	if u, err := url.Parse(root); err != nil || !strings.HasPrefix(root, "/") || strings.HasPrefix(root, "//") || u.Host != "" || strings.ContainsAny(root, " \t\r\n$") {
		w.invalid("app-root", root, fmt.Errorf("must be a path starting with \"/\""))
		return nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				next.ServeHTTP(rw, r)
				return
			}
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			rw.Header().Set("Location", scheme+"://"+r.Host+root)
			nginxError(rw, http.StatusFound)
		})
	}
}

var vhostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// parseUpstreamRequest reads upstream-vhost (the Host header the backend
// gets) and x-forwarded-prefix (an X-Forwarded-Prefix header).
func parseUpstreamRequest(get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	vhost, _ := get("upstream-vhost")
	if vhost != "" && !vhostRE.MatchString(vhost) {
		w.invalid("upstream-vhost", vhost, fmt.Errorf("must be a host name with an optional port"))
		vhost = ""
	}
	prefix, _ := get("x-forwarded-prefix")
	if prefix != "" && (!strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "\r\n")) {
		w.invalid("x-forwarded-prefix", prefix, fmt.Errorf("must be a path starting with \"/\""))
		prefix = ""
	}
	if vhost == "" && prefix == "" {
		return nil
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			if vhost != "" {
				r2.Host = vhost
			}
			if prefix != "" {
				r2.Header.Set("X-Forwarded-Prefix", prefix)
			}
			next.ServeHTTP(rw, r2)
		})
	}
}
