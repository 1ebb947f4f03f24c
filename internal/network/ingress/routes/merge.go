package routes

import (
	"sort"
	"strings"
)

// Merge combines the tables of several sources into one: listeners by
// port, virtual hosts by name (their routes in the order of the tables),
// certificates of a listener concatenated (the first Default wins). A host
// redirects to HTTPS when any source asks it to; its wildcard matches one
// label only when every source says so. The hosts of each
// listener come out in match order (exact, wildcards longest first, "").
// Nil tables are skipped; the inputs are not modified.
func Merge(tables ...*Table) *Table {
	out := &Table{}
	byPort := map[int32]*Listener{}
	hosts := map[*Listener]map[string]*VirtualHost{}
	for _, t := range tables {
		if t == nil {
			continue
		}
		for _, l := range t.Listeners {
			if l == nil {
				continue
			}
			m := byPort[l.Port]
			if m == nil {
				m = &Listener{Port: l.Port, Protocol: l.Protocol}
				byPort[l.Port] = m
				hosts[m] = map[string]*VirtualHost{}
				out.Listeners = append(out.Listeners, m)
			}
			m.Certificates = append(m.Certificates, l.Certificates...)
			if m.Default == nil {
				m.Default = l.Default
			}
			for _, h := range l.Hosts {
				if h == nil {
					continue
				}
				key := strings.ToLower(h.Hostname)
				v := hosts[m][key]
				if v == nil {
					v = &VirtualHost{Hostname: key, WildcardOneLabel: h.WildcardOneLabel}
					hosts[m][key] = v
					m.Hosts = append(m.Hosts, v)
				}
				// Shared with a source of wider wildcards: the wider.
				v.WildcardOneLabel = v.WildcardOneLabel && h.WildcardOneLabel
				v.Routes = append(v.Routes, h.Routes...)
				v.RedirectToHTTPS = v.RedirectToHTTPS || h.RedirectToHTTPS
			}
		}
	}
	for _, l := range out.Listeners {
		SortHosts(l.Hosts)
	}
	sort.Slice(out.Listeners, func(i, j int) bool { return out.Listeners[i].Port < out.Listeners[j].Port })
	return out
}

// SortHosts orders virtual hosts as they are matched: exact names first,
// then wildcards (longest suffix first), then the catch-all "".
func SortHosts(hosts []*VirtualHost) {
	rank := func(h string) int {
		switch {
		case h == "":
			return 2
		case strings.HasPrefix(h, "*."):
			return 1
		}
		return 0
	}
	sort.SliceStable(hosts, func(i, j int) bool {
		a, b := hosts[i].Hostname, hosts[j].Hostname
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
}

// Matches reports whether the virtual host serves a request host (lower
// case, no port).
func (v *VirtualHost) Matches(host string) bool {
	if !MatchesHost(v.Hostname, host) {
		return false
	}
	if v.WildcardOneLabel && strings.HasPrefix(v.Hostname, "*.") {
		return !strings.Contains(host[:len(host)-len(v.Hostname)+1], ".")
	}
	return true
}

// MatchesHost reports whether a request host (lower-case, no port) is
// served by a virtual host name: equal, or under a wildcard's suffix (one
// or more labels in front), or any host for "".
func MatchesHost(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:] // ".example.com"
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return pattern == host
}
