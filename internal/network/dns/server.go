package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// Config is what a Server serves and where it forwards.
type Config struct {
	// Domain is the cluster domain, e.g. "cluster.local" (the default).
	Domain string
	// Listen are host:port addresses, each served on UDP and TCP; port 0
	// picks one free port for both (Addrs tells which).
	Listen []string
	// Upstreams are the resolvers for names outside the cluster domain
	// (the host's /etc/resolv.conf nameservers), host:port or host (port
	// 53). An upstream that is one of the listen addresses is refused.
	Upstreams []string
	// Search are the host's search domains (/etc/resolv.conf "search"),
	// which a pod's search path ends with; autopath tries them after the
	// cluster ones.
	Search []string
	// NamespaceOf gives the namespace of a local pod by its IP, for
	// server-side search path completion (autopath); nil turns it off. It
	// is called for every query under <ns>.svc.<domain> with at least
	// one label before <ns>: it must be quick and must not block (a map
	// lookup).
	NamespaceOf func(ip netip.Addr) (string, bool)
	// Clock drives cache expiry and the loop probe's retries; the real
	// clock by default.
	Clock clock.Clock
	// TTL of the cluster's records (and of its negative answers); 5s by
	// default, as CoreDNS's kubernetes plugin.
	TTL time.Duration
	// CacheSize is the most forwarded answers kept (10,000 by default, as
	// CoreDNS's cache); negative turns the cache off.
	CacheSize int
	// CacheMaxTTL caps how long a positive forwarded answer is kept (30s
	// by default); CacheMaxNegativeTTL the same for NXDOMAIN and NODATA
	// (30s by default).
	CacheMaxTTL, CacheMaxNegativeTTL time.Duration
	// ForwardTimeout bounds one exchange with one upstream (2s by default).
	ForwardTimeout time.Duration
	// Logger; slog.Default() by default.
	Logger *slog.Logger
}

// Server is a node's DNS server.
type Server struct {
	zone       string // lowercase FQDN
	svcZone    string // "svc." + zone
	dotSvcZone string // ".svc." + zone
	ttl        uint32
	searchTail []string // autopath's candidates after <ns>.svc.<zone>: suffixes, "" for the bare name
	namespace  func(netip.Addr) (string, bool)
	clock      clock.Clock
	log        *slog.Logger

	idx   *index
	cache *answerCache
	fwd   *forwarder
	m     *metrics

	syncedFuncs []cache.InformerSynced
	synced      atomic.Bool

	probe       atomic.Pointer[loopProbe]
	loopChecked chan struct{}

	pcs     []net.PacketConn
	lns     []net.Listener
	running atomic.Bool
	closing atomic.Bool
	ctx     context.Context // Run's, for the forwarder
}

// New builds a Server, registers its Service and EndpointSlice event
// handlers with factory (the caller starts the factory) and binds its
// listen addresses. Run serves them.
func New(cfg Config, factory informers.SharedInformerFactory) (*Server, error) {
	if len(cfg.Listen) == 0 {
		return nil, errors.New("dns: Config.Listen is empty: give at least one host:port to serve on")
	}
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok {
		return nil, fmt.Errorf("dns: cluster domain %q is not a domain name", cfg.Domain)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.CacheMaxTTL <= 0 {
		cfg.CacheMaxTTL = 30 * time.Second
	}
	if cfg.CacheMaxNegativeTTL <= 0 {
		cfg.CacheMaxNegativeTTL = 30 * time.Second
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	zone := strings.ToLower(dns.Fqdn(cfg.Domain))
	s := &Server{
		zone:        zone,
		svcZone:     "svc." + zone,
		dotSvcZone:  ".svc." + zone,
		ttl:         uint32(cfg.TTL / time.Second),
		namespace:   cfg.NamespaceOf,
		clock:       cfg.Clock,
		log:         cfg.Logger.With("component", "dns"),
		loopChecked: make(chan struct{}),
	}
	s.searchTail = []string{s.svcZone, zone}
	for _, d := range cfg.Search {
		d = strings.ToLower(dns.Fqdn(d))
		if d != "." && !containsString(s.searchTail, d) {
			s.searchTail = append(s.searchTail, d)
		}
	}
	s.searchTail = append(s.searchTail, "")
	s.idx = newIndex(zone, s.ttl, func() uint32 { return uint32(cfg.Clock.Now().Unix()) })
	s.cache = newAnswerCache(cfg.Clock, cfg.CacheSize, cfg.CacheMaxTTL, cfg.CacheMaxNegativeTTL)
	s.m = newMetrics(s.cache.len)

	svcReg, err := factory.Core().V1().Services().Informer().AddEventHandler(s.idx.serviceHandler())
	if err != nil {
		return nil, fmt.Errorf("dns: registering the Service event handler: %w", err)
	}
	esReg, err := factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(s.idx.sliceHandler())
	if err != nil {
		return nil, fmt.Errorf("dns: registering the EndpointSlice event handler: %w", err)
	}
	s.syncedFuncs = []cache.InformerSynced{svcReg.HasSynced, esReg.HasSynced}

	if err := s.bind(cfg.Listen); err != nil {
		s.closeListeners()
		return nil, err
	}
	var ups []string
	for _, u := range cfg.Upstreams {
		ups = append(ups, withPort(u))
	}
	ups, own := ownUpstreams(ups, s.Addrs(), localAddrs)
	for _, u := range own {
		s.log.Error("not forwarding to an upstream that is this server's own address", "upstream", u,
			"fix", "leave this server out of the upstreams (the node's /etc/resolv.conf)")
	}
	if len(ups) == 0 {
		s.log.Warn("no upstream resolver: names outside the cluster domain get SERVFAIL",
			"fix", "give the node a nameserver in /etc/resolv.conf")
	}
	s.fwd = newForwarder(ups, cfg.ForwardTimeout, s.cache, s.m, s.log)
	return s, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bind opens a UDP socket and a TCP listener on the same port for each
// listen address.
func (s *Server) bind(listen []string) error {
	for _, addr := range listen {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("dns: listen address %q: %w (want host:port)", addr, err)
		}
		var lastErr error
		for try := 0; try < 10; try++ {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("dns: listening on %s/udp: %w (is another DNS server running there?)", addr, err)
			}
			p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
			ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
			if err != nil {
				pc.Close()
				lastErr = err
				if port == "0" {
					continue // the TCP port was taken: pick another pair
				}
				return fmt.Errorf("dns: listening on %s/tcp: %w (is another DNS server running there?)", addr, err)
			}
			s.pcs = append(s.pcs, pc)
			s.lns = append(s.lns, ln)
			lastErr = nil
			break
		}
		if lastErr != nil {
			return fmt.Errorf("dns: no free port pair for %s: %w", addr, lastErr)
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, pc := range s.pcs {
		pc.Close()
	}
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Addrs are the bound addresses: the UDP ones, then the TCP ones (same
// ports).
func (s *Server) Addrs() []net.Addr {
	var out []net.Addr
	for _, pc := range s.pcs {
		out = append(out, pc.LocalAddr())
	}
	for _, ln := range s.lns {
		out = append(out, ln.Addr())
	}
	return out
}

// Collectors are the server's Prometheus collectors, for the agent to
// register: requests by type and rcode, cache hits, misses and size,
// forward latency by upstream, autopath answers and looping upstreams.
func (s *Server) Collectors() []prometheus.Collector { return s.m.collectors() }

// Run serves until ctx is done, then closes the listeners. Until the
// informers have synced, names in the cluster domain get SERVFAIL (which
// clients retry) rather than a wrong NXDOMAIN. At start it checks each
// upstream for a forwarding loop.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("dns: Run called twice")
	}
	s.ctx = ctx
	var servers []*dns.Server
	var udps []*udpServer
	for _, pc := range s.pcs {
		if uc, ok := pc.(*net.UDPConn); ok && !uc.LocalAddr().(*net.UDPAddr).IP.IsUnspecified() {
			udps = append(udps, newUDPServer(s, uc))
			continue
		}
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS), UDPSize: dns.DefaultMsgSize})
	}
	for _, ln := range s.lns {
		servers = append(servers, &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS), ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }})
	}
	errc := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() {
			err := srv.ActivateAndServe()
			errc <- err
		}()
	}
	var udpDone sync.WaitGroup
	for _, u := range udps {
		udpDone.Add(1)
		go func() {
			defer udpDone.Done()
			u.serve()
		}()
	}
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	select {
	case <-allStarted:
	case err := <-errc:
		s.closing.Store(true)
		s.closeListeners()
		udpDone.Wait()
		return fmt.Errorf("dns: serving: %w", err)
	}
	s.log.Info("DNS server started", "addrs", s.Addrs(), "domain", s.zone, "upstreams", *s.fwd.upstreams.Load())
	if len(*s.fwd.upstreams.Load()) > 0 {
		go s.detectLoops(ctx)
	} else {
		close(s.loopChecked)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		runErr = fmt.Errorf("dns: serving: %w", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.closing.Store(true)
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx)
	}
	s.closeListeners()
	udpDone.Wait()
	select { // the loop probe ends with ctx
	case <-s.loopChecked:
	case <-shutdownCtx.Done():
	}
	return runErr
}

// isSynced tells whether both informers have delivered their initial lists.
func (s *Server) isSynced() bool {
	if s.synced.Load() {
		return true
	}
	for _, f := range s.syncedFuncs {
		if !f() {
			return false
		}
	}
	s.synced.Store(true)
	return true
}

// inZone tells whether a lowercase FQDN is in the cluster domain.
func (s *Server) inZone(lname string) bool {
	n, z := len(lname), len(s.zone)
	return lname == s.zone || (n > z && lname[n-z-1] == '.' && lname[n-z:] == s.zone)
}

// maxChase bounds CNAME chasing through ExternalName Services.
const maxChase = 8

// rcodeWouldBlock is the rcode of a result that needs an upstream when
// the query was to be answered without waiting.
const rcodeWouldBlock = -1

// query is what every step of answering one query needs.
type query struct {
	ctx    context.Context
	do     bool // DNSSEC OK
	inline bool // answer only what needs no upstream (rcodeWouldBlock otherwise)
}

// lookup answers one question: from the index inside the cluster domain
// (chasing an ExternalName's target), from the reverse index for cluster
// addresses, otherwise through the forwarder.
func (s *Server) lookup(q *query, qname, lname string, qtype uint16, depth int) result {
	if s.inZone(lname) {
		if !s.isSynced() {
			return result{rcode: dns.RcodeServerFailure}
		}
		r := s.cluster(qname, lname, qtype)
		if r.chase != "" {
			r = s.chase(q, r, qtype, depth)
		}
		return r
	}
	if strings.HasSuffix(lname, ".arpa.") {
		if r, ok := s.reverse(qname, lname, qtype); ok {
			return r
		}
	}
	r, err := s.fwd.resolve(q.ctx, qname, qtype, q.do, q.inline)
	if err == errWouldBlock {
		return result{rcode: rcodeWouldBlock}
	}
	if err != nil {
		s.log.Debug("forwarding failed", "name", qname, "type", dns.TypeToString[qtype], "err", err)
		return result{rcode: dns.RcodeServerFailure}
	}
	return r
}

// chase resolves the target of an ExternalName's CNAME for the same type,
// as CoreDNS does: in the index when it is a cluster name, through the
// forwarder otherwise. The answer is the CNAME followed by the target's
// records and rcode; when the target cannot be resolved (SERVFAIL, no
// upstream) it is the CNAME alone, for the client to follow.
func (s *Server) chase(q *query, r result, qtype uint16, depth int) result {
	target := r.chase
	r.chase = ""
	if depth >= maxChase {
		return r
	}
	t := s.lookup(q, target, target, qtype, depth+1)
	if t.rcode == rcodeWouldBlock {
		return t
	}
	if t.rcode != dns.RcodeSuccess && t.rcode != dns.RcodeNameError {
		return r
	}
	ans := make([]dns.RR, 0, len(r.answer)+len(t.answer))
	r.answer = append(append(ans, r.answer...), t.answer...)
	r.rcode = t.rcode
	if len(t.answer) == 0 {
		r.ns, r.soa = t.ns, t.soa
	}
	r.extra = t.extra
	return r
}

// autopath completes a pod's search path on the server (CoreDNS's
// autopath): for <base>.<ns>.svc.<zone> asked by a pod of <ns> and not a
// name of the index, it tries <base>.svc.<zone>, <base>.<zone>,
// <base>.<host search domain>… and <base>. in order, and answers with a
// CNAME to the first that is not NXDOMAIN followed by its answer. ok is
// false when autopath does not apply; when no candidate exists, or one
// fails, the answer is the NXDOMAIN of the name asked, and the client
// goes on along its search path itself.
func (s *Server) autopath(q *query, client netip.Addr, qname, lname string, qtype uint16) (result, bool) {
	if s.namespace == nil || !client.IsValid() {
		return result{}, false
	}
	rest, ok := strings.CutSuffix(lname, s.dotSvcZone)
	if !ok {
		return result{}, false
	}
	ns, base := cutLast(rest)
	if base == "" {
		return result{}, false
	}
	if cns, ok := s.namespace(client); !ok || strings.ToLower(cns) != ns {
		return result{}, false
	}
	r := s.lookup(q, qname, lname, qtype, 0)
	if r.rcode != dns.RcodeNameError {
		return r, true
	}
	baseQ := qname[:len(base)]
	for _, suffix := range s.searchTail {
		cand := baseQ + "." + suffix
		c := s.lookup(q, cand, strings.ToLower(cand), qtype, 0)
		switch c.rcode {
		case dns.RcodeNameError:
			continue
		case rcodeWouldBlock:
			return c, true
		case dns.RcodeSuccess:
			s.m.autopath.Inc()
			ans := make([]dns.RR, 0, 1+len(c.answer))
			ans = append(ans, &dns.CNAME{Hdr: s.hdr(qname, dns.TypeCNAME), Target: cand})
			return result{rcode: c.rcode, auth: c.auth, answer: append(ans, c.answer...), ns: c.ns, soa: c.soa, extra: c.extra}, true
		}
		break
	}
	return r, true
}

// serveDNS answers one query for miekg/dns's servers (TCP, and UDP on
// wildcard addresses).
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	var client netip.Addr
	udp := false
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		client, _ = netip.AddrFromSlice(a.IP)
		udp = true
	case *net.TCPAddr:
		client, _ = netip.AddrFromSlice(a.IP)
	}
	m := new(dns.Msg)
	s.respond(m, client.Unmap(), req, udp, false)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing a DNS answer failed", "client", w.RemoteAddr(), "err", err)
	}
}

// respond builds in m the answer to req from a client (m is reset
// first; it may be reused once the answer is packed). With inline set it
// answers only what needs no upstream exchange, and returns false for the
// rest, m then being of no use.
func (s *Server) respond(m *dns.Msg, client netip.Addr, req *dns.Msg, udp, inline bool) bool {
	*m = dns.Msg{}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		s.m.request(0, m.Rcode)
		return true
	}
	q := req.Question[0]
	if req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		s.m.request(q.Qtype, m.Rcode)
		return true
	}
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	var r result
	switch {
	case opt != nil && opt.Version() != 0:
		r.rcode = dns.RcodeBadVers
	case q.Qclass != dns.ClassINET:
		r.rcode = dns.RcodeRefused
	default:
		if p := s.probe.Load(); p != nil && strings.EqualFold(q.Name, p.name) {
			// Our own loop probe came back: answer without forwarding
			// it again, so the loop ends here.
			p.seen.Add(1)
			r.rcode = dns.RcodeServerFailure
			break
		}
		qc := &query{ctx: s.ctx, do: do, inline: inline}
		if qc.ctx == nil {
			qc.ctx = context.Background()
		}
		lname := strings.ToLower(q.Name)
		var ok bool
		if r, ok = s.autopath(qc, client, q.Name, lname, q.Qtype); !ok {
			r = s.lookup(qc, q.Name, lname, q.Qtype, 0)
		}
		if r.rcode == rcodeWouldBlock {
			return false
		}
	}
	m.Id, m.Response, m.Opcode = req.Id, true, req.Opcode
	m.RecursionDesired, m.CheckingDisabled = req.RecursionDesired, req.CheckingDisabled
	m.Question = req.Question // the request is not reused
	m.Rcode = r.rcode         // the high bits of an extended rcode go into the OPT when packed
	m.Authoritative = r.auth
	m.RecursionAvailable = true
	m.Answer, m.Ns = r.answer, r.ns
	if r.soa {
		m.Ns = []dns.RR{s.soa()}
	}
	size := dns.MaxMsgSize
	if opt != nil {
		// A fresh slice: r.extra may be shared with the cache.
		extra := make([]dns.RR, 0, len(r.extra)+1)
		extra = append(extra, r.extra...)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(ednsSize)
		o.SetDo(do)
		m.Extra = append(extra, o)
		if udp {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
	} else {
		m.Extra = r.extra
		if udp {
			size = dns.MinMsgSize
		}
	}
	m.Truncate(size)
	s.m.request(q.Qtype, r.rcode)
	return true
}
