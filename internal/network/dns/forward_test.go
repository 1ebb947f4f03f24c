package dns

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counter reads a counter (or a counter of a vector, by label values).
func counter(t *testing.T, c prometheus.Collector, labels ...string) float64 {
	t.Helper()
	var col prometheus.Collector = c
	if v, ok := c.(*prometheus.CounterVec); ok {
		col = v.WithLabelValues(labels...)
	}
	ch := make(chan prometheus.Metric, 16)
	col.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

func bigTXT() string {
	var parts []string
	for i := range 12 {
		parts = append(parts, fmt.Sprintf("%q", strings.Repeat(string(rune('a'+i)), 200)))
	}
	return "big.example.com. 300 IN TXT " + strings.Join(parts, " ")
}

func TestForwarding(t *testing.T) {
	up := newUpstream(t,
		"www.example.com. 60 IN A 192.0.2.53",
		"short.example.com. 10 IN A 192.0.2.10",
		"long.example.com. 3600 IN A 192.0.2.11",
		"only-a.example.com. 60 IN A 192.0.2.12",
		"4.2.0.192.in-addr.arpa. 60 IN PTR host.example.com.",
		bigTXT(),
	)
	h := newHarness(t, Config{Upstreams: []string{up.addr}}, externalService("default", "ext", "www.example.com"),
		externalService("default", "ext-missing", "missing.example.com"))

	t.Run("answer", func(t *testing.T) {
		for _, network := range []string{"udp", "tcp"} {
			m := h.query(network, "www.example.com.", dns.TypeA)
			if m.Rcode != dns.RcodeSuccess || !slices.Equal(rrStrings(m.Answer), []string{"www.example.com. 0 IN A 192.0.2.53"}) {
				t.Fatalf("over %s: %v", network, m)
			}
			if m.Authoritative || !m.RecursionAvailable {
				t.Errorf("forwarded answer: AA=%v RA=%v, want false, true", m.Authoritative, m.RecursionAvailable)
			}
		}
	})
	t.Run("cache hit counts TTLs down", func(t *testing.T) {
		n := up.count("www.example.com.", dns.TypeA)
		h.clock.Step(7 * time.Second)
		m := h.query("udp", "www.example.com.", dns.TypeA)
		if got := up.count("www.example.com.", dns.TypeA); got != n {
			t.Fatalf("upstream asked %d times, want %d (cache hit)", got, n)
		}
		if ttl := m.Answer[0].Header().Ttl; ttl != 23 {
			t.Errorf("TTL %d after 7s of 60 capped to 30, want 23", ttl)
		}
		if hits := counter(t, h.srv.m.cacheHits, "success"); hits < 2 {
			t.Errorf("cache hits %v, want at least 2", hits)
		}
	})
	t.Run("TTL expiry", func(t *testing.T) {
		h.query("udp", "short.example.com.", dns.TypeA)
		h.clock.Step(9 * time.Second)
		m := h.query("udp", "short.example.com.", dns.TypeA)
		if ttl := m.Answer[0].Header().Ttl; ttl != 1 || up.count("short.example.com.", dns.TypeA) != 1 {
			t.Fatalf("after 9s of 10: TTL %d, upstream asked %d times; want 1, 1", ttl, up.count("short.example.com.", dns.TypeA))
		}
		h.clock.Step(time.Second)
		m = h.query("udp", "short.example.com.", dns.TypeA)
		if got := up.count("short.example.com.", dns.TypeA); got != 2 {
			t.Fatalf("after expiry the upstream was asked %d times, want 2", got)
		}
		if ttl := m.Answer[0].Header().Ttl; ttl != 10 {
			t.Errorf("fresh TTL %d, want 10", ttl)
		}
	})
	t.Run("TTL capped at 30s", func(t *testing.T) {
		m := h.query("udp", "long.example.com.", dns.TypeA)
		if ttl := m.Answer[0].Header().Ttl; ttl != 30 {
			t.Errorf("TTL %d, want the 30s cap", ttl)
		}
		h.clock.Step(29 * time.Second)
		h.query("udp", "long.example.com.", dns.TypeA)
		if got := up.count("long.example.com.", dns.TypeA); got != 1 {
			t.Fatalf("upstream asked %d times within 30s, want 1", got)
		}
		h.clock.Step(time.Second)
		h.query("udp", "long.example.com.", dns.TypeA)
		if got := up.count("long.example.com.", dns.TypeA); got != 2 {
			t.Fatalf("upstream asked %d times after 30s, want 2", got)
		}
	})
	t.Run("negative cache: NXDOMAIN", func(t *testing.T) {
		for i := range 3 {
			m := h.query("udp", "missing.example.com.", dns.TypeA)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Fatalf("query %d: %v", i, m)
			}
			if ttl := m.Ns[0].Header().Ttl; ttl != 10 {
				t.Errorf("negative TTL %d, want the SOA minimum 10", ttl)
			}
		}
		if got := up.count("missing.example.com.", dns.TypeA); got != 1 {
			t.Fatalf("upstream asked %d times, want 1", got)
		}
		if hits := counter(t, h.srv.m.cacheHits, "denial"); hits < 2 {
			t.Errorf("denial hits %v, want at least 2", hits)
		}
		h.clock.Step(10 * time.Second)
		h.query("udp", "missing.example.com.", dns.TypeA)
		if got := up.count("missing.example.com.", dns.TypeA); got != 2 {
			t.Fatalf("after the negative TTL the upstream was asked %d times, want 2", got)
		}
	})
	t.Run("negative cache: NODATA", func(t *testing.T) {
		for range 2 {
			m := h.query("udp", "only-a.example.com.", dns.TypeAAAA)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
				t.Fatalf("%v", m)
			}
		}
		if got := up.count("only-a.example.com.", dns.TypeAAAA); got != 1 {
			t.Fatalf("upstream asked %d times, want 1", got)
		}
	})
	t.Run("upstream truncation: retried over TCP", func(t *testing.T) {
		m := h.query("tcp", "big.example.com.", dns.TypeTXT)
		if m.Truncated || len(m.Answer) != 1 || len(m.Answer[0].(*dns.TXT).Txt) != 12 {
			t.Fatalf("over TCP: TC=%v %d answers", m.Truncated, len(m.Answer))
		}
		if got := up.count("big.example.com.", dns.TypeTXT); got != 2 {
			t.Errorf("upstream asked %d times, want 2 (UDP truncated, then TCP)", got)
		}
		m = h.query("udp", "big.example.com.", dns.TypeTXT)
		if !m.Truncated {
			t.Errorf("a 2.4 kB answer over UDP without EDNS0 is not truncated")
		}
	})
	t.Run("PTR outside the cluster", func(t *testing.T) {
		m := h.query("udp", "4.2.0.192.in-addr.arpa.", dns.TypePTR)
		if !slices.Equal(rrStrings(m.Answer), []string{"4.2.0.192.in-addr.arpa. 0 IN PTR host.example.com."}) {
			t.Fatalf("%v", m)
		}
	})
	t.Run("ExternalName chased through the forwarder", func(t *testing.T) {
		m := h.query("udp", "ext.default.svc.cluster.local.", dns.TypeA)
		want := []string{"ext.default.svc.cluster.local. 0 IN CNAME www.example.com.", "www.example.com. 0 IN A 192.0.2.53"}
		if m.Rcode != dns.RcodeSuccess || !slices.Equal(rrStrings(m.Answer), want) || !m.Authoritative {
			t.Fatalf("%v", m)
		}
		m = h.query("udp", "ext-missing.default.svc.cluster.local.", dns.TypeA)
		if m.Rcode != dns.RcodeNameError || !slices.Equal(rrStrings(m.Answer), []string{"ext-missing.default.svc.cluster.local. 0 IN CNAME missing.example.com."}) {
			t.Fatalf("target NXDOMAIN: want the CNAME with NXDOMAIN (RFC 6604), got %v", m)
		}
	})
	t.Run("request metrics", func(t *testing.T) {
		if n := counter(t, h.srv.m.requests, "A", "NOERROR"); n < 5 {
			t.Errorf("requests{A,NOERROR} = %v", n)
		}
		if n := counter(t, h.srv.m.requests, "A", "NXDOMAIN"); n < 3 {
			t.Errorf("requests{A,NXDOMAIN} = %v", n)
		}
		if n := counter(t, h.srv.m.cacheMisses); n < 5 {
			t.Errorf("cache misses %v", n)
		}
	})
}

// TestForwardFailover checks that an upstream that refuses, fails or is
// not there is passed over for the next.
func TestForwardFailover(t *testing.T) {
	good := newUpstream(t, "www.example.com. 60 IN A 192.0.2.53")
	failing := newUpstream(t)
	failing.setHandler(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	})
	dead := freePort(t) // nothing listens: the kernel refuses at once
	h := newHarness(t, Config{Upstreams: []string{dead, failing.addr, good.addr}})
	m := h.query("udp", "www.example.com.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("%v", m)
	}
	if failing.total.Load() == 0 || good.total.Load() == 0 {
		t.Errorf("failing upstream asked %d times, good one %d", failing.total.Load(), good.total.Load())
	}

	// With only failing upstreams the client gets SERVFAIL, not cached.
	h2 := newHarness(t, Config{Upstreams: []string{failing.addr}})
	for range 2 {
		if m := h2.query("udp", "www.example.com.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%v", m)
		}
	}
	if got := failing.count("www.example.com.", dns.TypeA); got < 3 {
		t.Errorf("SERVFAIL was cached: upstream asked %d times", got)
	}
}

// TestCacheCapacity checks that the cache holds at most CacheSize answers.
func TestCacheCapacity(t *testing.T) {
	up := newUpstream(t)
	up.setHandler(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	})
	h := newHarness(t, Config{Upstreams: []string{up.addr}, CacheSize: 64})
	for i := range 300 {
		h.query("udp", fmt.Sprintf("host-%d.example.com.", i), dns.TypeA)
	}
	if n := h.srv.cache.len(); n > 64 || n < 32 {
		t.Fatalf("cache holds %d answers, want at most 64 (and not nearly empty)", n)
	}
	if n := counter(t, h.srv.m.cacheEntries); n != float64(h.srv.cache.len()) {
		t.Errorf("cache_entries gauge %v, cache %d", n, h.srv.cache.len())
	}
}

// TestLoopDetection checks that an upstream forwarding our queries back
// to us is found at start and no longer used.
func TestLoopDetection(t *testing.T) {
	good := newUpstream(t, "www.example.com. 60 IN A 192.0.2.53")
	looping := newUpstream(t)
	// It forwards to the server under test, whose address each case sets.
	var ours atomic.Value
	looping.setHandler(func(w dns.ResponseWriter, r *dns.Msg) {
		c := &dns.Client{Timeout: 5 * time.Second}
		m, _, err := c.Exchange(r, ours.Load().(string))
		if err != nil {
			m = new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
		}
		_ = w.WriteMsg(m)
	})

	cs := []struct {
		name      string
		upstreams []string
		wantLeft  []string
		wantRcode int
	}{
		{name: "only upstream loops: forwarding stops", upstreams: []string{looping.addr}, wantRcode: dns.RcodeServerFailure},
		{name: "one of two loops: the other stays", upstreams: []string{looping.addr, good.addr}, wantLeft: []string{good.addr}, wantRcode: dns.RcodeSuccess},
	}
	for _, tc := range cs {
		t.Run(tc.name, func(t *testing.T) {
			addr := freePort(t)
			ours.Store(addr)
			h := newHarness(t, Config{Listen: []string{addr}, Upstreams: tc.upstreams})
			select {
			case <-h.srv.loopChecked:
			case <-time.After(20 * time.Second):
				t.Fatal("loop detection did not finish")
			}
			if got := *h.srv.fwd.upstreams.Load(); !slices.Equal(got, tc.wantLeft) {
				t.Fatalf("upstreams left %v, want %v", got, tc.wantLeft)
			}
			if !strings.Contains(h.logs.String(), "DNS forwarding loop") {
				t.Errorf("the loop was not logged:\n%s", h.logs.String())
			}
			if n := counter(t, h.srv.m.loops); n != 1 {
				t.Errorf("forward_loop_upstreams %v, want 1", n)
			}
			before := looping.total.Load()
			m := h.query("udp", "www.example.com.", dns.TypeA)
			if m.Rcode != tc.wantRcode {
				t.Fatalf("after loop detection: %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			if looping.total.Load() != before {
				t.Errorf("the looping upstream was asked again")
			}
			// Cluster names are answered all the same.
			if m := h.query("udp", "dns-version.cluster.local.", dns.TypeTXT); m.Rcode != dns.RcodeSuccess {
				t.Errorf("cluster name after loop: %v", m)
			}
		})
	}
}

// TestNoLoopWithGoodUpstream checks that a well-behaved upstream survives
// the loop probe.
func TestNoLoopWithGoodUpstream(t *testing.T) {
	good := newUpstream(t)
	h := newHarness(t, Config{Upstreams: []string{good.addr}})
	<-h.srv.loopChecked
	if got := *h.srv.fwd.upstreams.Load(); !slices.Equal(got, []string{good.addr}) {
		t.Fatalf("upstreams %v", got)
	}
	if good.total.Load() == 0 {
		t.Errorf("the upstream was not probed")
	}
}

// TestOwnAddressRefused checks that an upstream that is one of our own
// listen addresses is never used.
func TestOwnAddressRefused(t *testing.T) {
	good := newUpstream(t, "www.example.com. 60 IN A 192.0.2.53")
	addr := freePort(t)
	h := newHarness(t, Config{Listen: []string{addr}, Upstreams: []string{addr, good.addr}})
	if got := *h.srv.fwd.upstreams.Load(); !slices.Equal(got, []string{good.addr}) {
		t.Fatalf("upstreams %v, want only %s", got, good.addr)
	}
	if !strings.Contains(h.logs.String(), "own address") {
		t.Errorf("the refused upstream was not logged:\n%s", h.logs.String())
	}
	if m := h.query("udp", "www.example.com.", dns.TypeA); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("%v", m)
	}
}

func TestOwnUpstreams(t *testing.T) {
	local := func() []netip.Addr { return []netip.Addr{mustAddr("10.42.0.1"), mustAddr("192.168.1.5")} }
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	tests := []struct {
		name      string
		upstreams []string
		bound     []net.Addr
		own       []string
	}{
		{name: "same address", upstreams: []string{"10.42.0.1:53", "1.1.1.1:53"}, bound: []net.Addr{udp("10.42.0.1:53")}, own: []string{"10.42.0.1:53"}},
		{name: "other port", upstreams: []string{"10.42.0.1:5353"}, bound: []net.Addr{udp("10.42.0.1:53")}},
		{name: "wildcard: loopback", upstreams: []string{"127.0.0.1:53", "127.0.0.53:53"}, bound: []net.Addr{udp("0.0.0.0:53")}, own: []string{"127.0.0.1:53", "127.0.0.53:53"}},
		{name: "wildcard: interface address", upstreams: []string{"192.168.1.5:53", "192.168.1.6:53"}, bound: []net.Addr{udp("0.0.0.0:53")}, own: []string{"192.168.1.5:53"}},
		{name: "host name kept", upstreams: []string{"resolver.example:53"}, bound: []net.Addr{udp("0.0.0.0:53")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, own := ownUpstreams(tt.upstreams, tt.bound, local)
			if !slices.Equal(own, tt.own) {
				t.Errorf("own %v, want %v", own, tt.own)
			}
			if len(keep)+len(own) != len(tt.upstreams) {
				t.Errorf("keep %v own %v from %v", keep, own, tt.upstreams)
			}
		})
	}
}

// TestWaitingBounded checks that past maxWaiting queries waiting for an
// upstream, further ones get SERVFAIL at once while cluster names are
// still answered.
func TestWaitingBounded(t *testing.T) {
	old := maxWaiting
	maxWaiting = 4
	t.Cleanup(func() { maxWaiting = old })
	release := make(chan struct{})
	up := newUpstream(t)
	up.setHandler(func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasPrefix(r.Question[0].Name, "slow-") {
			<-release
		}
		exampleUpstream(w, r)
	})
	h := newHarness(t, Config{Upstreams: []string{up.addr}, ForwardTimeout: 30 * time.Second})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	conn, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		q := new(dns.Msg).SetQuestion(fmt.Sprintf("slow-%d.example.com.", i), dns.TypeA)
		b, _ := q.Pack()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	q := new(dns.Msg).SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
	b, _ := q.Pack()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	read := func() *dns.Msg {
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Six slow names over the bound and the cluster name come back at once.
	servfail, cluster := 0, 0
	for range 7 {
		m := read()
		switch {
		case m.Question[0].Qtype == dns.TypeTXT && m.Rcode == dns.RcodeSuccess:
			cluster++
		case m.Rcode == dns.RcodeServerFailure:
			servfail++
		default:
			t.Fatalf("unexpected answer while 4 queries wait: %v", m)
		}
	}
	if servfail != 6 || cluster != 1 {
		t.Fatalf("%d SERVFAIL and %d cluster answers, want 6 and 1", servfail, cluster)
	}
	close(release)
	for range 4 {
		if m := read(); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("waiting query: %v", m)
		}
	}
}
