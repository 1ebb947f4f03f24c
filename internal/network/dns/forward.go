package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size this server offers upstream and to its
// clients (the DNS Flag Day 2020 value).
const ednsSize = 1232

// errWouldBlock is returned for a question not in the cache when the
// caller cannot wait for an upstream.
var errWouldBlock = errors.New("the answer needs an upstream")

// errNoUpstream is returned when there is nothing to forward to.
var errNoUpstream = errors.New("no usable upstream resolver: give the node a nameserver in /etc/resolv.conf that is not this server")

// forwarder sends questions outside the cluster zone to the upstream
// resolvers, in order, through the cache; identical questions in flight
// at once share one upstream exchange.
type forwarder struct {
	upstreams atomic.Pointer[[]string] // usable upstreams, host:port
	udp, tcp  *dns.Client
	cache     *answerCache
	m         *metrics
	log       *slog.Logger

	mu       sync.Mutex
	inflight map[cacheKey]*flight
}

type flight struct {
	done chan struct{}
	r    result
	err  error
}

func newForwarder(upstreams []string, timeout time.Duration, c *answerCache, m *metrics, log *slog.Logger) *forwarder {
	f := &forwarder{
		udp:      &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsSize},
		tcp:      &dns.Client{Net: "tcp", Timeout: timeout},
		cache:    c,
		m:        m,
		log:      log,
		inflight: make(map[cacheKey]*flight),
	}
	f.upstreams.Store(&upstreams)
	return f
}

// resolve answers a question from the cache or, unless inline, the
// upstreams.
func (f *forwarder) resolve(ctx context.Context, name string, qtype uint16, do, inline bool) (result, error) {
	k := cacheKey{name: strings.ToLower(name), qtype: qtype, do: do}
	if r, ok := f.cache.get(k); ok {
		if r.rcode == dns.RcodeSuccess && len(r.answer) > 0 {
			f.m.hitSuccess.Inc()
		} else {
			f.m.hitDenial.Inc()
		}
		return r, nil
	}
	if inline {
		return result{}, errWouldBlock
	}
	f.m.cacheMisses.Inc()
	f.mu.Lock()
	if fl, ok := f.inflight[k]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.r, fl.err
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	fl := &flight{done: make(chan struct{})}
	f.inflight[k] = fl
	f.mu.Unlock()

	msg, err := f.exchange(ctx, name, qtype, do)
	if err == nil {
		fl.r = f.cache.put(k, msg)
	}
	fl.err = err
	f.mu.Lock()
	delete(f.inflight, k)
	f.mu.Unlock()
	close(fl.done)
	return fl.r, fl.err
}

// exchange asks the upstreams in order until one answers with other than
// SERVFAIL or REFUSED; a truncated UDP answer is asked again over TCP.
func (f *forwarder) exchange(ctx context.Context, name string, qtype uint16, do bool) (*dns.Msg, error) {
	ups := *f.upstreams.Load()
	if len(ups) == 0 {
		return nil, errNoUpstream
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(ednsSize, do)
	var last *dns.Msg
	var lastErr error
	for _, u := range ups {
		r, err := f.exchangeWith(ctx, q, u)
		if err != nil {
			lastErr = err
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, fmt.Errorf("forwarding %s %s: no upstream answered (%w); check the node's nameservers", name, dns.TypeToString[qtype], lastErr)
}

// exchangeWith asks one upstream, over TCP again when the UDP answer is
// truncated, and strips the answer's OPT record.
func (f *forwarder) exchangeWith(ctx context.Context, q *dns.Msg, upstream string) (*dns.Msg, error) {
	start := time.Now()
	r, _, err := f.udp.ExchangeContext(ctx, q, upstream)
	if err == nil && r.Truncated {
		r, _, err = f.tcp.ExchangeContext(ctx, q, upstream)
	}
	rc := "error"
	if err == nil {
		rc = rcodeName(r.Rcode)
	}
	f.m.forward.WithLabelValues(upstream, rc).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	r.Extra = slices.DeleteFunc(r.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return r, nil
}

// drop removes an upstream from use.
func (f *forwarder) drop(upstream string) {
	for {
		old := f.upstreams.Load()
		next := slices.DeleteFunc(slices.Clone(*old), func(u string) bool { return u == upstream })
		if f.upstreams.CompareAndSwap(old, &next) {
			return
		}
	}
}

// loopProbe is the question the loop detection sends; a server that sees
// it arrive has had its own question forwarded back to it.
type loopProbe struct {
	name string // lowercase FQDN
	seen atomic.Int32
}

// detectLoops asks each upstream, once it answers, a HINFO question for a
// random name under a random label (as CoreDNS's loop plugin). If the
// question comes back to this server, that upstream forwards to us: it is
// dropped and the error logged; with none left, forwarding stops.
func (s *Server) detectLoops(ctx context.Context) {
	defer close(s.loopChecked)
	defer s.probe.Store(nil)
	for _, u := range *s.fwd.upstreams.Load() {
		p := &loopProbe{name: fmt.Sprintf("%d.%d.", rand.Uint64(), rand.Uint64())}
		s.probe.Store(p)
		q := new(dns.Msg)
		q.SetQuestion(p.name, dns.TypeHINFO)
		for attempt := 0; ; attempt++ {
			_, err := s.fwd.exchangeWith(ctx, q, u)
			if p.seen.Load() > 0 {
				s.fwd.drop(u)
				s.m.loops.Inc()
				s.log.Error("DNS forwarding loop: a query sent to this upstream came back to this server; not forwarding to it",
					"upstream", u, "fix", "point the node's /etc/resolv.conf at a resolver that does not forward to the cluster DNS")
				if len(*s.fwd.upstreams.Load()) == 0 {
					s.log.Error("DNS forwarding stopped: every upstream loops back; names outside the cluster domain get SERVFAIL")
				}
				break
			}
			if err == nil || attempt >= loopProbeAttempts-1 {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(loopProbeRetry):
			}
		}
	}
}

const (
	loopProbeAttempts = 5
	loopProbeRetry    = 2 * time.Second
)

// ownUpstreams removes the upstreams that are this server's own listen
// addresses (for a wildcard listener: any local address on its port).
func ownUpstreams(upstreams []string, bound []net.Addr, local func() []netip.Addr) (keep, own []string) {
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			keep = append(keep, u)
			continue
		}
		ip := ap.Addr().Unmap()
		mine := false
		for _, b := range bound {
			bap, err := netip.ParseAddrPort(b.String())
			if err != nil || bap.Port() != ap.Port() {
				continue
			}
			bip := bap.Addr().Unmap()
			if bip == ip || (bip.IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified() || slices.Contains(local(), ip))) {
				mine = true
				break
			}
		}
		if mine {
			own = append(own, u)
		} else {
			keep = append(keep, u)
		}
	}
	return keep, own
}

// localAddrs are the addresses of the host's interfaces.
func localAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// withPort gives an upstream without a port the DNS port.
func withPort(u string) string {
	if _, _, err := net.SplitHostPort(u); err == nil {
		return u
	}
	return net.JoinHostPort(strings.Trim(u, "[]"), "53")
}
