package ingress

import (
	"net"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// compiledListener is a listener ready to serve.
type compiledListener struct {
	port  int32 // the port the proxy listens on
	proto routes.Protocol
	hosts []*compiledHost
	certs *certIndex
	// exact indexes the hosts of an exact name that come before every
	// wildcard or catch-all host (the table puts exact names first), so
	// that most requests find theirs without scanning.
	exact map[string]*compiledHost
}

// indexHosts fills exact from hosts.
func (l *compiledListener) indexHosts() {
	l.exact = make(map[string]*compiledHost, len(l.hosts))
	for _, vh := range l.hosts {
		n := vh.vh.Hostname
		if n == "" || strings.HasPrefix(n, "*.") {
			return // later hosts may be shadowed by this one: scanned
		}
		if _, dup := l.exact[n]; !dup {
			l.exact[n] = vh
		}
	}
}

type compiledHost struct {
	vh       *routes.VirtualHost
	pattern  string
	redirect bool
	entries  []entry
}

// entry is one match of one route; a host's entries are in precedence
// order.
type entry struct {
	route   *compiledRoute
	match   *routes.Match
	matchIx int
}

// host returns the virtual host serving a request host.
func (l *compiledListener) host(h string) *compiledHost {
	if vh := l.exact[h]; vh != nil {
		return vh
	}
	for _, vh := range l.hosts {
		if vh.vh.Matches(h) {
			return vh
		}
	}
	return nil
}

// requestHost is the request's host name: lower-case, without port or
// trailing dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.Trim(h, "[]")
}

// route returns the first entry matching the request.
func (vh *compiledHost) route(r *http.Request, p string) (*entry, []int) {
	var query map[string][]string
	for i := range vh.entries {
		e := &vh.entries[i]
		groups, ok := matchPath(e.match, p)
		if !ok {
			continue
		}
		if e.match.Method != "" && e.match.Method != r.Method {
			continue
		}
		ok = true
		for _, hm := range e.match.Headers {
			if !valueMatches(hm, r.Header.Values(hm.Name)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if len(e.match.QueryParams) > 0 && query == nil {
			query = r.URL.Query()
		}
		for _, qm := range e.match.QueryParams {
			if !valueMatches(qm, query[qm.Name]) {
				ok = false
				break
			}
		}
		if ok {
			return e, groups
		}
	}
	return nil, nil
}

func valueMatches(m routes.ValueMatch, values []string) bool {
	if len(values) == 0 {
		return false
	}
	v := values[0]
	if m.Regex != nil {
		return m.Regex.MatchString(v)
	}
	return v == m.Value
}

// matchPath matches a request path; a regex match returns its
// submatch indexes.
func matchPath(m *routes.Match, p string) ([]int, bool) {
	switch m.PathType {
	case routes.PathExact:
		return nil, p == m.Path
	case routes.PathRegex:
		if m.Regex == nil {
			return nil, false
		}
		loc := m.Regex.FindStringSubmatchIndex(p)
		return loc, loc != nil && loc[0] == 0 && loc[1] == len(p)
	case routes.PathPrefix, "":
		return nil, prefixMatches(m.Path, p)
	}
	return nil, false
}

// prefixMatches matches element-wise: /foo matches /foo, /foo/ and
// /foo/bar, not /foobar; a trailing "/" of the prefix is ignored.
func prefixMatches(prefix, p string) bool {
	prefix = strings.TrimRight(prefix, "/")
	if prefix == "" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// cleanPath removes dot segments and duplicate slashes, keeping a
// trailing slash, so that matching sees what a backend would.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// sortEntries orders a host's matches by Gateway API's precedence: exact
// paths, then the longest prefix (or regular expression), then a method,
// then the most header matches, then the most query matches; ties keep
// the translators' order (oldest route first).
func sortEntries(es []entry) {
	rank := func(m *routes.Match) int {
		if m.PathType == routes.PathExact {
			return 0
		}
		return 1
	}
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].match, es[j].match
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if la, lb := len(strings.TrimRight(a.Path, "/")), len(strings.TrimRight(b.Path, "/")); la != lb {
			return la > lb
		}
		if (a.Method != "") != (b.Method != "") {
			return a.Method != ""
		}
		if len(a.Headers) != len(b.Headers) {
			return len(a.Headers) > len(b.Headers)
		}
		return len(a.QueryParams) > len(b.QueryParams)
	})
}
