package annotations

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// PathRegex is the regular expression ingress-nginx matches a use-regex
// path with (location ~* "^path"): case-insensitive, anchored at the start
// of the path only. It is written "(?i)^(?:path).*" so that it matches as
// well when a whole-path match is asked; capture groups keep the user's
// numbers.
func PathRegex(path string) (*regexp.Regexp, error) {
	return regexp.Compile("(?i)^(?:" + path + ").*")
}

// checkRewriteTarget accepts what RewriteURL can expand: a path (or a
// leading capture group) with $1..$9 and ${N}; nginx variables other than
// captures, and redirects ("http://..."), are refused.
func checkRewriteTarget(t string) error {
	if !strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "$") {
		return fmt.Errorf(`must be a path starting with "/" or a capture group`)
	}
	if strings.ContainsAny(t, " \t\r\n") {
		return fmt.Errorf("must not contain white space")
	}
	for i := 0; i < len(t); i++ {
		if t[i] != '$' {
			continue
		}
		if _, n, ok := captureRef(t[i:]); ok {
			i += n - 1
			continue
		}
		return fmt.Errorf("only capture groups ($1..$9, ${N}) may follow \"$\"")
	}
	return nil
}

// captureRef parses "$N" or "${N}" at the start of s: the group, the
// length of the reference.
func captureRef(s string) (group, n int, ok bool) {
	if len(s) >= 2 && s[1] >= '0' && s[1] <= '9' {
		return int(s[1] - '0'), 2, true
	}
	if len(s) >= 4 && s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 3 {
			return 0, 0, false
		}
		g := 0
		for _, c := range s[2:end] {
			if c < '0' || c > '9' || g > 99 {
				return 0, 0, false
			}
			g = g*10 + int(c-'0')
		}
		return g, end + 1, true
	}
	return 0, 0, false
}

// ExpandRewrite expands an nginx rewrite template with re's capture groups
// in path ($N of a group that did not take part, or does not exist, is
// empty). ok is false when re does not match path. A nil re matches every
// path and has no groups.
func ExpandRewrite(re *regexp.Regexp, template, path string) (string, bool) {
	var groups []int
	if re != nil {
		groups = re.FindStringSubmatchIndex(path)
		if groups == nil {
			return "", false
		}
	}
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		if template[i] == '$' {
			if g, n, ok := captureRef(template[i:]); ok {
				if 2*g+1 < len(groups) && groups[2*g] >= 0 {
					b.WriteString(path[groups[2*g]:groups[2*g+1]])
				}
				i += n - 1
				continue
			}
		}
		b.WriteByte(template[i])
	}
	return b.String(), true
}

// RewriteURL rewrites u as nginx's `rewrite <re> <template> break`: when re
// matches u.Path the whole path is replaced by the expansion; a "?" in the
// expansion sets the query, the original one appended after it unless the
// expansion ends with "?"; without "?" the query is kept. It reports
// whether re matched.
func RewriteURL(u *url.URL, re *regexp.Regexp, template string) bool {
	out, ok := ExpandRewrite(re, template, u.Path)
	if !ok {
		return false
	}
	path, query, hasQuery := strings.Cut(out, "?")
	if hasQuery {
		switch {
		case strings.HasSuffix(out, "?"):
			u.RawQuery = query
		case u.RawQuery != "":
			u.RawQuery = query + "&" + u.RawQuery
		default:
			u.RawQuery = query
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u.Path, u.RawPath = path, ""
	return true
}
