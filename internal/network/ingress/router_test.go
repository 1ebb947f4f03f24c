package ingress

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// TestPrecedence: Gateway API's order among the matches of one host.
func TestPrecedence(t *testing.T) {
	mk := func(name string, m routes.Match) *routes.Route {
		return &routes.Route{Origin: routes.Origin{Name: name}, Matches: []routes.Match{m}}
	}
	rs := []*routes.Route{
		mk("prefix-root", routes.Match{PathType: routes.PathPrefix, Path: "/"}),
		mk("prefix-api", routes.Match{PathType: routes.PathPrefix, Path: "/api"}),
		mk("exact-api", routes.Match{PathType: routes.PathExact, Path: "/api"}),
		mk("api-post", routes.Match{PathType: routes.PathPrefix, Path: "/api", Method: "POST"}),
		mk("api-header", routes.Match{PathType: routes.PathPrefix, Path: "/api", Headers: []routes.ValueMatch{{Name: "X-Version", Value: "2"}}}),
		mk("api-header-re", routes.Match{PathType: routes.PathPrefix, Path: "/api", Headers: []routes.ValueMatch{{Name: "X-Version", Regex: regexp.MustCompile(`^3\.`)}},
			QueryParams: []routes.ValueMatch{{Name: "beta", Value: "1"}}}),
		mk("api-query", routes.Match{PathType: routes.PathPrefix, Path: "/api", QueryParams: []routes.ValueMatch{{Name: "beta", Value: "1"}}}),
	}
	p, _ := New(Config{Endpoints: &fakeEndpoints{}})
	ch := &compiledHost{}
	for _, r := range rs {
		cr := p.compileRoute(r)
		ch.entries = append(ch.entries, entry{route: cr, match: &r.Matches[0]})
	}
	sortEntries(ch.entries)
	for _, tc := range []struct {
		method, url string
		header      string
		want        string
	}{
		{"GET", "/", "", "prefix-root"},
		{"GET", "/api", "", "exact-api"},
		{"GET", "/api/x", "", "prefix-api"},
		{"POST", "/api/x", "2", "api-post"}, // method before headers
		{"GET", "/api/x", "2", "api-header"},
		{"GET", "/api/x?beta=1", "3.1", "api-header-re"},
		{"GET", "/api/x?beta=1", "", "api-query"},
		{"GET", "/api/x?beta=2", "4", "prefix-api"},
	} {
		r := httptest.NewRequest(tc.method, tc.url, nil)
		if tc.header != "" {
			r.Header.Set("x-version", tc.header)
		}
		e, _ := ch.route(r, r.URL.Path)
		if e == nil || e.route.r.Origin.Name != tc.want {
			got := "none"
			if e != nil {
				got = e.route.r.Origin.Name
			}
			t.Errorf("%s %s (X-Version %q): %s, want %s", tc.method, tc.url, tc.header, got, tc.want)
		}
	}
}

func TestCleanPathAndTemplates(t *testing.T) {
	for in, want := range map[string]string{"/a/../b": "/b", "/a//b/": "/a/b/", "/": "/", "/a/./": "/a/", "": "/", "/x": "/x"} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"/$1abc": "/${1}abc", "/${2}": "/${2}", "$$": "$$", "/x": "/x"} {
		if got := nginxTemplate(in); got != want {
			t.Errorf("nginxTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExtraListener: a listener on another port is opened with the table
// that names it and closed with the table that drops it.
func TestExtraListener(t *testing.T) {
	eps := &fakeEndpoints{}
	eps.set("a", backend(t, "a"))
	p := startProxy(t, eps, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	tb := table(&routes.VirtualHost{Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}})
	tb.Listeners = append(tb.Listeners, &routes.Listener{Port: port, Protocol: routes.HTTP, Hosts: tb.Listeners[0].Hosts})
	p.Apply(tb)
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	if code, body := get(t, http.DefaultClient, url, "h"); code != 200 || !strings.HasPrefix(body, "a /x") {
		t.Errorf("extra port: %d %q", code, body)
	}
	p.Apply(table())
	if p.Addr(port) != nil {
		t.Error("the extra port is still listened on")
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the extra port still answers")
	}
}

// TestHostIndex: the exact-name index finds the host the ordered scan
// would, also when a wildcard or catch-all comes first or a name twice.
func TestHostIndex(t *testing.T) {
	mk := func(names ...string) *compiledListener {
		l := &compiledListener{}
		for _, n := range names {
			l.hosts = append(l.hosts, &compiledHost{vh: &routes.VirtualHost{Hostname: n}, pattern: n})
		}
		l.indexHosts()
		return l
	}
	for _, tc := range []struct {
		hosts []string
		req   string
		want  int // index in hosts, -1: none
	}{
		{[]string{"a.example", "b.example", "*.example", ""}, "b.example", 1},
		{[]string{"a.example", "b.example", "*.example", ""}, "c.example", 2},
		{[]string{"a.example", "b.example", "*.example", ""}, "other.test", 3},
		{[]string{"a.example", "a.example"}, "a.example", 0},
		{[]string{"*.example", "a.example"}, "a.example", 0},
		{[]string{"", "a.example"}, "a.example", 0},
		{[]string{"a.example"}, "b.example", -1},
	} {
		l := mk(tc.hosts...)
		got := l.host(tc.req)
		want := (*compiledHost)(nil)
		if tc.want >= 0 {
			want = l.hosts[tc.want]
		}
		if got != want {
			t.Errorf("hosts %q, request %q: got %v, want index %d", tc.hosts, tc.req, got, tc.want)
		}
	}
}
