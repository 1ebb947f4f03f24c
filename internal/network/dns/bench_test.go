package dns

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// benchFixture is n Services in ten namespaces, one in ten headless with
// ten ready endpoints (n Services, n pods), and their names.
func benchFixture(n int) ([]k8sruntime.Object, []string) {
	var objs []k8sruntime.Object
	var names []string
	pod := 0
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%d", i)
		if i%10 == 9 {
			objs = append(objs, headlessService(ns, name, port("http", v1.ProtocolTCP, 80)))
			var eps []ep
			for j := range 10 {
				eps = append(eps, ep{ip: fmt.Sprintf("10.42.%d.%d", pod/250, pod%250+2), hostname: fmt.Sprintf("%s-%d", name, j)})
				pod++
			}
			objs = append(objs, slice(ns, name, name+"-1", []discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 8080)}, eps...))
		} else {
			objs = append(objs, service(ns, name, fmt.Sprintf("10.43.%d.%d", i/250, i%250+2), port("http", v1.ProtocolTCP, 80)))
		}
		names = append(names, name+"."+ns+".svc.cluster.local.")
	}
	return objs, names
}

func benchQueries(names []string, qtype uint16) []*dns.Msg {
	qs := make([]*dns.Msg, len(names))
	for i, n := range names {
		qs[i] = new(dns.Msg).SetQuestion(n, qtype)
	}
	return qs
}

// benchRespond measures the handler alone: answer and pack, no sockets.
func benchRespond(b *testing.B, s *Server, client netip.Addr, qs []*dns.Msg, check func(*dns.Msg) bool) {
	buf := make([]byte, 4096) // PackBuffer packs into its length, as the UDP workers do
	for i := 0; i < len(qs); i++ {
		m := new(dns.Msg)
		if s.respond(m, client, qs[i], true, false); !check(m) {
			b.Fatalf("unexpected answer to %s:\n%v", qs[i].Question[0].Name, m)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		buf := slices.Clone(buf)
		m := new(dns.Msg) // reused, as the UDP workers do
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			i++
			if !s.respond(m, client, qs[i%len(qs)], true, true) {
				b.Error("not answered without waiting")
				return
			}
			if _, err := m.PackBuffer(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRespondCluster: A questions for 1,000 Services (one in ten
// headless with ten endpoints), handler and packing only.
func BenchmarkRespondCluster(b *testing.B) {
	objs, names := benchFixture(1000)
	h := newHarness(b, Config{}, objs...)
	benchRespond(b, h.srv, netip.Addr{}, benchQueries(names, dns.TypeA), func(m *dns.Msg) bool {
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0
	})
}

// BenchmarkRespondExternalAutopath: a pod of ns-0 asks
// host-N.example.com.ns-0.svc.cluster.local (its first search candidate
// under ndots:5); autopath answers with a CNAME to the cached
// host-N.example.com, passing the host search domain's cached NXDOMAIN.
func BenchmarkRespondExternalAutopath(b *testing.B) {
	objs, _ := benchFixture(1000)
	up := newUpstream(b)
	up.setHandler(exampleUpstream)
	client := mustAddr("10.42.0.2")
	h := newHarness(b, Config{
		Upstreams:   []string{up.addr},
		Search:      []string{"corp.internal"},
		NamespaceOf: func(ip netip.Addr) (string, bool) { return "ns-0", ip == client },
		// The fake clock stands still: the warm cache stays warm.
	}, objs...)
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("host-%d.example.com.ns-0.svc.cluster.local.", i))
	}
	benchRespond(b, h.srv, client, benchQueries(names, dns.TypeA), func(m *dns.Msg) bool {
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 2
	})
}

// BenchmarkRespondExternalCached: the bare external name, cached.
func BenchmarkRespondExternalCached(b *testing.B) {
	up := newUpstream(b)
	up.setHandler(exampleUpstream)
	h := newHarness(b, Config{Upstreams: []string{up.addr}})
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("host-%d.example.com.", i))
	}
	benchRespond(b, h.srv, netip.Addr{}, benchQueries(names, dns.TypeA), func(m *dns.Msg) bool {
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1
	})
}

// exampleUpstream answers *.example.com A with one record, NODATA for
// other types there, and NXDOMAIN elsewhere.
func exampleUpstream(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	soa, _ := dns.NewRR(". 300 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 300")
	switch {
	case strings.HasSuffix(q.Name, ".example.com.") && q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
	case strings.HasSuffix(q.Name, ".example.com."):
		m.Ns = []dns.RR{soa}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	_ = w.WriteMsg(m)
}

// BenchmarkUDPCluster: the same questions over UDP on loopback, 8
// concurrent clients each with its own socket, one query in flight each.
func BenchmarkUDPCluster(b *testing.B) {
	objs, names := benchFixture(1000)
	h := newHarness(b, Config{}, objs...)
	qs := benchQueries(names, dns.TypeA)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		conn, err := c.Dial(h.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			i++
			m, _, err := c.ExchangeWithConn(qs[i%len(qs)], conn)
			if err != nil || m.Rcode != dns.RcodeSuccess {
				b.Errorf("%v %v", err, m)
				return
			}
		}
	})
}

// BenchmarkServiceToAnswer: a Service created through the (fake) API is
// resolvable after this long from the moment the create returns: watch
// and informer delivery, index update, the first query that sees it
// (queried in a loop over UDP). Reports p50 and p99 of b.N creations,
// 1,000 Services already loaded; the fake clientset's own create (field
// management, deep copies) is reported apart (create-p50-µs).
func BenchmarkServiceToAnswer(b *testing.B) {
	objs, _ := benchFixture(1000)
	h := newHarness(b, Config{}, objs...)
	svcs := h.cs.CoreV1().Services("bench")
	lat := make([]time.Duration, 0, b.N)
	creates := make([]time.Duration, 0, b.N)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(h.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("new-%d", i)
		q := new(dns.Msg).SetQuestion(name+".bench.svc.cluster.local.", dns.TypeA)
		t0 := time.Now()
		if _, err := svcs.Create(b.Context(), service("bench", name, fmt.Sprintf("10.43.%d.%d", 200+i/250, i%250+2)), createOpts); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		creates = append(creates, start.Sub(t0))
		for {
			m, _, err := c.ExchangeWithConn(q, conn)
			if err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("%s not resolvable after 10s", name)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(creates)
	b.ReportMetric(float64(creates[len(creates)/2].Microseconds()), "create-p50-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkIndexMemory reports the heap held by the index for 1,000
// Services and 1,000 endpoints (index-B), and by the index together with
// the informers' caches of the same objects (with-informers-B), which the
// agent shares with its service proxy.
func BenchmarkIndexMemory(b *testing.B) {
	objs, _ := benchFixture(1000)
	for range b.N {
		runtime.GC()
		var m0, m1, m2 runtime.MemStats
		runtime.ReadMemStats(&m0)
		ix := newIndex("cluster.local.", 5, func() uint32 { return 1 })
		for _, o := range objs {
			switch o := o.(type) {
			case *v1.Service:
				ix.upsertService(o)
			case *discoveryv1.EndpointSlice:
				ix.upsertSlice(o)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc), "index-B")
		runtime.KeepAlive(ix)

		cs := fake.NewClientset(objs...) // its object tracker is not counted
		runtime.GC()
		runtime.ReadMemStats(&m0)
		factory := informers.NewSharedInformerFactory(cs, 0)
		s, err := New(Config{Listen: []string{"127.0.0.1:0"}, Logger: slog.New(slog.DiscardHandler)}, factory)
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		factory.Start(stop)
		factory.WaitForCacheSync(stop)
		runtime.GC()
		runtime.ReadMemStats(&m2)
		b.ReportMetric(float64(m2.HeapAlloc-m0.HeapAlloc), "with-informers-B")
		close(stop)
		factory.Shutdown()
		s.closeListeners()
		runtime.KeepAlive(cs)
	}
}
