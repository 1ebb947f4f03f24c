package annotations

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
)

// limitState is one rate limit's memory (nginx's limit_req zone) or one
// connection limit's counters (limit_conn), kept by the Parser across
// Parse calls so that a re-translation does not reset them.
type limitState struct {
	mu     sync.Mutex
	excess map[netip.Addr]*leaky
	conns  map[netip.Addr]int
}

type leaky struct {
	excess float64 // requests above the rate, as nginx's (in requests)
	last   time.Time
}

// maxLimitClients bounds the clients a limit remembers: beyond it, the
// ones whose bucket has drained are forgotten.
var maxLimitClients = 100000

// limiter returns the state of key, new when cfg changed.
func (p *Parser) limiter(key, cfg string) *limitState {
	p.limitsMu.Lock()
	defer p.limitsMu.Unlock()
	if p.limits == nil {
		p.limits = map[string]*limitEntry{}
	}
	if e, ok := p.limits[key]; ok && e.cfg == cfg {
		return e.state
	}
	s := &limitState{excess: map[netip.Addr]*leaky{}, conns: map[netip.Addr]int{}}
	p.limits[key] = &limitEntry{cfg: cfg, state: s}
	return s
}

// Forget drops what the Parser keeps for an Ingress (its rate limits'
// counters): the translator calls it when the Ingress is deleted.
func (p *Parser) Forget(namespace, name string) {
	prefix := namespace + "/" + name + "/"
	p.limitsMu.Lock()
	defer p.limitsMu.Unlock()
	for k := range p.limits {
		if strings.HasPrefix(k, prefix) {
			delete(p.limits, k)
		}
	}
}

type limitEntry struct {
	cfg   string
	state *limitState
}

// allow is nginx's limit_req with nodelay: a client may exceed rate by
// burst requests, the excess draining at rate.
func (s *limitState) allow(a netip.Addr, rate, burst float64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.excess[a]
	if !ok {
		if len(s.excess) >= maxLimitClients {
			for k, v := range s.excess {
				if v.excess-rate*now.Sub(v.last).Seconds() <= 0 {
					delete(s.excess, k)
				}
			}
		}
		s.excess[a] = &leaky{last: now}
		return true
	}
	e := l.excess - rate*now.Sub(l.last).Seconds() + 1
	if e < 0 {
		e = 0
	}
	if e > burst {
		return false
	}
	l.excess, l.last = e, now
	return true
}

// parseRateLimits reads limit-rps, limit-rpm (with limit-burst-multiplier,
// default 5), limit-connections and limit-whitelist/limit-allowlist
// (CIDRs exempt): each client address over a limit is answered 503, as
// ingress-nginx's default limit-req-status-code. The limits are per proxy
// node, as ingress-nginx's are per controller replica.
func (p *Parser) parseRateLimits(ing *networkingv1.Ingress, get func(string) (string, bool), w *warns) func(http.Handler) http.Handler {
	positive := func(name string) int {
		v, ok := get(name)
		if !ok || v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			w.invalid(name, v, fmt.Errorf("must be a positive integer"))
			return 0
		}
		return n
	}
	rps, rpm, conns := positive("limit-rps"), positive("limit-rpm"), positive("limit-connections")
	if rps == 0 && rpm == 0 && conns == 0 {
		for _, n := range []string{"limit-burst-multiplier", "limit-whitelist", "limit-allowlist"} {
			if _, ok := get(n); ok {
				w.add("annotation %s%s: no limit-rps, limit-rpm or limit-connections (ignored)", NginxPrefix, n)
			}
		}
		return nil
	}
	mult := 5
	if _, ok := get("limit-burst-multiplier"); ok {
		if n := positive("limit-burst-multiplier"); n > 0 {
			mult = n
		}
	}
	var exempt []netip.Prefix
	name := "limit-allowlist"
	v, ok := get(name)
	if !ok {
		name = "limit-whitelist"
		v, _ = get(name)
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pfx, err := parsePrefix(s)
		if err != nil {
			w.invalid(name, s, err)
			continue
		}
		exempt = append(exempt, pfx)
	}
	key := ing.Namespace + "/" + ing.Name
	type limit struct {
		state       *limitState
		rate, burst float64
	}
	var limits []limit
	if rps > 0 {
		limits = append(limits, limit{p.limiter(key+"/rps", fmt.Sprint(rps, mult)), float64(rps), float64(rps * mult)})
	}
	if rpm > 0 {
		limits = append(limits, limit{p.limiter(key+"/rpm", fmt.Sprint(rpm, mult)), float64(rpm) / 60, float64(rpm * mult)})
	}
	var connState *limitState
	if conns > 0 {
		connState = p.limiter(key+"/conn", fmt.Sprint(conns))
	}
	now := p.now
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			a, ok := clientAddr(r)
			if !ok || containsAddr(exempt, a) {
				next.ServeHTTP(rw, r)
				return
			}
			t := now()
			for _, l := range limits {
				if !l.state.allow(a, l.rate, l.burst, t) {
					nginxError(rw, http.StatusServiceUnavailable)
					return
				}
			}
			if connState != nil {
				s := connState
				s.mu.Lock()
				if s.conns[a] >= conns {
					s.mu.Unlock()
					nginxError(rw, http.StatusServiceUnavailable)
					return
				}
				s.conns[a]++
				s.mu.Unlock()
				defer func() {
					s.mu.Lock()
					if s.conns[a]--; s.conns[a] <= 0 {
						delete(s.conns, a)
					}
					s.mu.Unlock()
				}()
			}
			next.ServeHTTP(rw, r)
		})
	}
}
