package dns

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// epoch is the fake clock's start.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness is a Server on 127.0.0.1 fed by a fake clientset's informers.
type harness struct {
	t      testing.TB
	cs     *fake.Clientset
	srv    *Server
	clock  *clocktesting.FakeClock
	addr   string // host:port, UDP and TCP
	cancel context.CancelFunc
	logs   *syncBuffer
}

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newHarness starts a server with cfg (Listen and Clock filled in unless
// set) over objs, and waits until it answers.
func newHarness(t testing.TB, cfg Config, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, cs: fake.NewClientset(objs...), clock: clocktesting.NewFakeClock(epoch)}
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	if cfg.Clock == nil {
		cfg.Clock = h.clock
	}
	h.logs = &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	}
	factory := informers.NewSharedInformerFactory(h.cs, 0)
	srv, err := New(cfg, factory)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv = srv
	h.addr = srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context was cancelled")
		}
		factory.Shutdown()
	})
	h.eventually("the server answers", func() bool {
		m, err := h.exchange("udp", "dns-version.cluster.local.", dns.TypeTXT, nil)
		return err == nil && m.Rcode == dns.RcodeSuccess
	})
	return h
}

// eventually waits for cond, failing the test after a generous deadline.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	eventually(h.t, what, cond)
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// exchange sends one query; edit may change it (EDNS, flags).
func (h *harness) exchange(network, name string, qtype uint16, edit func(*dns.Msg)) (*dns.Msg, error) {
	return exchangeFrom(network, "", h.addr, name, qtype, edit)
}

func exchangeFrom(network, local, addr, name string, qtype uint16, edit func(*dns.Msg)) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if edit != nil {
		edit(q)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	if local != "" {
		var la net.Addr
		if network == "tcp" {
			la = &net.TCPAddr{IP: net.ParseIP(local)}
		} else {
			la = &net.UDPAddr{IP: net.ParseIP(local)}
		}
		c.Dialer = &net.Dialer{LocalAddr: la, Timeout: 5 * time.Second}
	}
	m, _, err := c.Exchange(q, addr)
	return m, err
}

func (h *harness) query(network, name string, qtype uint16) *dns.Msg {
	h.t.Helper()
	m, err := h.exchange(network, name, qtype, nil)
	if err != nil {
		h.t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return m
}

// rrStrings renders records without their TTLs, for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, strings.ReplaceAll(c.String(), "\t", " "))
	}
	return out
}

// Object builders.

func service(ns, name, clusterIP string, ports ...v1.ServicePort) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
	if clusterIP != v1.ClusterIPNone {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	return s
}

func headlessService(ns, name string, ports ...v1.ServicePort) *v1.Service {
	return service(ns, name, v1.ClusterIPNone, ports...)
}

func externalService(ns, name, target string) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: target},
	}
}

func port(name string, proto v1.Protocol, n int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: n}
}

type ep struct {
	ip       string
	hostname string
	notReady bool
}

func slice(ns, svc, name string, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	if len(eps) > 0 && strings.Contains(eps[0].ip, ":") {
		es.AddressType = discoveryv1.AddressTypeIPv6
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!e.notReady)}}
		if e.hostname != "" {
			x.Hostname = ptr.To(e.hostname)
		}
		es.Endpoints = append(es.Endpoints, x)
	}
	return es
}

func slicePort(name string, proto v1.Protocol, n int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(n)}
}

// upstream is a fake upstream resolver on 127.0.0.1 (UDP and TCP) that
// answers from a table and counts the questions it gets.
type upstream struct {
	addr    string
	mu      sync.Mutex
	records map[string][]dns.RR // lowercase name → records (any type)
	counts  map[string]int      // "name TYPE" → questions
	total   atomic.Int64
	// handler, when set, answers instead of the table (loop tests).
	handler func(w dns.ResponseWriter, r *dns.Msg)
}

func newUpstream(t testing.TB, zone ...string) *upstream {
	t.Helper()
	u := &upstream{records: make(map[string][]dns.RR), counts: make(map[string]int)}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatalf("fake upstream record %q: %v", z, err)
		}
		n := strings.ToLower(rr.Header().Name)
		u.records[n] = append(u.records[n], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return u
}

// setHandler makes the upstream answer with h instead of its table.
func (u *upstream) setHandler(h func(w dns.ResponseWriter, r *dns.Msg)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = h
}

func (u *upstream) count(name string, qtype uint16) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[strings.ToLower(name)+" "+dns.TypeToString[qtype]]
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u.total.Add(1)
	q := r.Question[0]
	u.mu.Lock()
	u.counts[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
	h := u.handler
	rrs := u.records[strings.ToLower(q.Name)]
	u.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == 0 {
		if len(rrs) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR(". 3600 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 10")
		m.Ns = []dns.RR{soa}
	}
	size := dns.MinMsgSize
	if o := r.IsEdns0(); o != nil {
		size = int(o.UDPSize())
		m.SetEdns0(o.UDPSize(), false)
	}
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// freePort finds a port free on 127.0.0.1 for both UDP and TCP.
func freePort(t testing.TB) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return ""
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

var (
	createOpts = metav1.CreateOptions{}
	updateOpts = metav1.UpdateOptions{}
	deleteOpts = metav1.DeleteOptions{}
	getOpts    = metav1.GetOptions{}
)

func ptrBool(b bool) *bool { return &b }

func discoveryv1Endpoint(ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptrBool(ready)}}
}
