package annotations

import (
	"net/url"
	"regexp"
	"testing"
)

func TestRewriteURL(t *testing.T) {
	tests := []struct {
		name     string
		path     string // the Ingress path (use-regex)
		template string
		in       string
		want     string // "" : no match
	}{
		{name: "capture groups", path: "/something(/|$)(.*)", template: "/$2", in: "/something/new?x=1", want: "/new?x=1"},
		{name: "capture groups, bare prefix", path: "/something(/|$)(.*)", template: "/$2", in: "/something", want: "/"},
		{name: "case-insensitive as nginx ~*", path: "/something(/|$)(.*)", template: "/$2", in: "/SomeThing/A", want: "/A"},
		{name: "no groups replaces the whole path", path: "/foo", template: "/", in: "/foo/bar/baz", want: "/"},
		{name: "braces", path: "/api/(v[0-9])/(.*)", template: "/${2}/${1}x", in: "/api/v2/users", want: "/users/v2x"},
		{name: "missing group is empty", path: "/a(/b)?", template: "/x$1$9", in: "/a", want: "/x"},
		{name: "template without a leading slash", path: "/app(/|$)(.*)", template: "$2", in: "/app/b", want: "/b"},
		{name: "template query first, original appended", path: "/q(.*)", template: "/search?q=$1", in: "/qhello?page=2", want: "/search?q=hello&page=2"},
		{name: "trailing ? drops the original query", path: "/q(.*)", template: "/search?", in: "/qhello?page=2", want: "/search"},
		{name: "escaped characters are decoded then re-encoded", path: "/files/(.*)", template: "/$1", in: "/files/a%20b", want: "/a%20b"},
		{name: "no match", path: "/other", template: "/", in: "/foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re, err := PathRegex(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse("http://h" + tt.in)
			if err != nil {
				t.Fatal(err)
			}
			ok := RewriteURL(u, re, tt.template)
			if tt.want == "" {
				if ok {
					t.Errorf("rewrote %s to %s", tt.in, u.RequestURI())
				}
				return
			}
			if !ok || u.RequestURI() != tt.want {
				t.Errorf("RewriteURL(%s) = %v %s, want %s", tt.in, ok, u.RequestURI(), tt.want)
			}
		})
	}
}

func TestExpandRewriteNilRegex(t *testing.T) {
	got, ok := ExpandRewrite(nil, "/new/$1", "/old")
	if !ok || got != "/new/" {
		t.Errorf("got %q %v", got, ok)
	}
	got, ok = ExpandRewrite(regexp.MustCompile("^/x$"), "/y", "/z")
	if ok {
		t.Errorf("no match expanded to %q", got)
	}
}

func TestCheckRewriteTarget(t *testing.T) {
	for target, valid := range map[string]bool{
		"/": true, "/$1": true, "$2": true, "/${10}/a": true, "/a$": false, "/$host": false,
		"http://x/": false, "/a b": false, "/${x}": false, "/${}": false,
	} {
		if err := checkRewriteTarget(target); (err == nil) != valid {
			t.Errorf("%q: err %v, want valid=%v", target, err, valid)
		}
	}
}
