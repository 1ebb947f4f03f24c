package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// schemaVersion is the Kubernetes DNS specification this server answers.
const schemaVersion = "1.1.0"

// result is an answer before it becomes a message: the caller adds the
// header, the question and EDNS.
type result struct {
	rcode  int
	auth   bool
	answer []dns.RR
	ns     []dns.RR
	extra  []dns.RR
	// soa asks for the cluster zone's SOA in the authority section (a
	// negative answer of the zone); built only when the answer is sent.
	soa bool
	// chase is the ExternalName target the answer's CNAME points to, to
	// be resolved for the same type; "" when there is nothing to chase.
	chase string
}

// cutLast splits "a.b.c" into "c" and "a.b".
func cutLast(s string) (last, rest string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return s, ""
	}
	return s[i+1:], s[:i]
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:     s.hdr(s.zone, dns.TypeSOA),
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.idx.serial.Load(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  s.ttl,
	}
}

func (s *Server) nxdomain() result {
	return result{rcode: dns.RcodeNameError, auth: true, soa: true}
}

func (s *Server) nodata() result {
	return result{rcode: dns.RcodeSuccess, auth: true, soa: true}
}

// answer is a positive answer, or NODATA when rrs is empty.
func (s *Server) answer(rrs, extra []dns.RR) result {
	if len(rrs) == 0 {
		return s.nodata()
	}
	return result{rcode: dns.RcodeSuccess, auth: true, answer: rrs, extra: extra}
}

// addrRRs are the A (IPv4) or AAAA (IPv6) records of addrs that answer
// qtype; ANY takes both.
func (s *Server) addrRRs(dst []dns.RR, name string, qtype uint16, addrs []netip.Addr) []dns.RR {
	for _, a := range addrs {
		switch {
		case a.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
			b := a.As4()
			dst = append(dst, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: net.IP(b[:])})
		case a.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			b := a.As16()
			dst = append(dst, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: net.IP(b[:])})
		}
	}
	return dst
}

// srvWeight spreads 100 over n records of one priority, as CoreDNS does.
func srvWeight(n int) uint16 {
	if n <= 1 {
		return 100
	}
	if w := 100 / n; w > 0 {
		return uint16(w)
	}
	return 1
}

// cluster answers a name in the cluster zone. qname is the name as asked
// (its case is kept in the answer), lname the same in lowercase.
func (s *Server) cluster(qname, lname string, qtype uint16) result {
	if lname == s.zone {
		return s.apex(qname, qtype)
	}
	rel := lname[:len(lname)-len(s.zone)-1]
	last, rest := cutLast(rel)
	switch last {
	case "svc":
		return s.services(qname, rest, qtype)
	case "pod":
		return s.pods(qname, rest, qtype)
	case "dns-version":
		if rest != "" {
			return s.nxdomain()
		}
		if qtype != dns.TypeTXT && qtype != dns.TypeANY {
			return s.nodata()
		}
		return s.answer([]dns.RR{&dns.TXT{Hdr: s.hdr(qname, dns.TypeTXT), Txt: []string{schemaVersion}}}, nil)
	case "dns":
		switch rest {
		case "":
			return s.nodata()
		case "ns":
			return s.answer(s.addrRRs(nil, qname, qtype, s.dnsServiceIPs()), nil)
		}
	}
	return s.nxdomain()
}

// dnsServiceIPs are the ClusterIPs of kube-system/kube-dns, the address
// the zone's NS record stands for.
func (s *Server) dnsServiceIPs() []netip.Addr {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	if e := s.idx.entries[nsName{"kube-system", "kube-dns"}]; e != nil && e.svc != nil {
		return e.svc.ips
	}
	return nil
}

func (s *Server) apex(qname string, qtype uint16) result {
	switch qtype {
	case dns.TypeSOA:
		soa := s.soa()
		soa.Header().Name = qname
		return s.answer([]dns.RR{soa}, nil)
	case dns.TypeNS:
		target := "ns.dns." + s.zone
		return s.answer([]dns.RR{&dns.NS{Hdr: s.hdr(qname, dns.TypeNS), Ns: target}},
			s.addrRRs(nil, target, dns.TypeA, s.dnsServiceIPs()))
	}
	return s.nodata()
}

// services answers <rest>.svc.<zone>: rest is "", "<ns>", "<svc>.<ns>",
// "<label>.<svc>.<ns>" or "_<port>._<proto>.<svc>.<ns>".
func (s *Server) services(qname, rest string, qtype uint16) result {
	if rest == "" {
		return s.nodata()
	}
	ns, rest := cutLast(rest)
	name, rest := cutLast(rest)
	ix := s.idx
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if name == "" {
		if ix.nsServices[ns] > 0 {
			return s.nodata()
		}
		return s.nxdomain()
	}
	e := ix.entries[nsName{ns, name}]
	if e == nil || e.svc == nil {
		return s.nxdomain()
	}
	if e.svc.kind == kindHeadless && e.hl == nil {
		// No ready endpoints: the specification's NXDOMAIN.
		return s.nxdomain()
	}
	if rest == "" {
		return s.serviceAnswer(qname, e, qtype)
	}
	second, first := cutLast(rest)
	if first == "" {
		// <label>.<svc>.<ns>: an endpoint, or the _<proto> empty non-terminal.
		if strings.HasPrefix(second, "_") {
			if len(s.srvOf(e, "", second[1:])) > 0 {
				return s.nodata()
			}
			return s.nxdomain()
		}
		if e.svc.kind != kindHeadless {
			return s.nxdomain()
		}
		addrs, ok := e.hl.labels[second]
		if !ok {
			return s.nxdomain()
		}
		return s.answer(s.addrRRs(nil, qname, qtype, addrs), nil)
	}
	if strings.Contains(first, ".") || !strings.HasPrefix(first, "_") || !strings.HasPrefix(second, "_") {
		return s.nxdomain()
	}
	recs := s.srvOf(e, first[1:], second[1:])
	if len(recs) == 0 {
		return s.nxdomain()
	}
	if qtype != dns.TypeSRV && qtype != dns.TypeANY {
		return s.nodata()
	}
	return s.srvAnswer(qname, e, recs)
}

// srvOf are the SRV targets of a Service for a named port and protocol;
// port "" matches every named port of the protocol.
func (s *Server) srvOf(e *entry, port, proto string) []srvRecord {
	var out []srvRecord
	match := func(p portInfo) bool {
		return p.name != "" && p.proto == proto && (port == "" || p.name == port)
	}
	if e.svc.kind == kindHeadless {
		for _, r := range e.hl.srv {
			if match(r.port) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, p := range e.svc.ports {
		if match(p) {
			out = append(out, srvRecord{port: p})
		}
	}
	return out
}

// srvAnswer turns SRV targets into records, with the targets' addresses in
// the additional section. A record without a label targets the Service
// itself (ClusterIP) or the external name (ExternalName).
func (s *Server) srvAnswer(qname string, e *entry, recs []srvRecord) result {
	w := srvWeight(len(recs))
	ans := make([]dns.RR, 0, len(recs))
	var extra []dns.RR
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		target := e.fqdn
		switch {
		case r.label != "":
			target = r.label + "." + e.fqdn
		case e.svc.kind == kindExternalName:
			target = e.svc.external
		}
		ans = append(ans, &dns.SRV{Hdr: s.hdr(qname, dns.TypeSRV), Priority: 0, Weight: w, Port: r.port.port, Target: target})
		if seen[target] {
			continue
		}
		seen[target] = true
		switch {
		case r.label != "":
			extra = s.addrRRs(extra, target, dns.TypeANY, e.hl.labels[r.label])
		case e.svc.kind == kindClusterIP:
			extra = s.addrRRs(extra, target, dns.TypeANY, e.svc.ips)
		}
	}
	return s.answer(ans, extra)
}

// serviceAnswer answers <svc>.<ns>.svc.<zone> itself.
func (s *Server) serviceAnswer(qname string, e *entry, qtype uint16) result {
	switch e.svc.kind {
	case kindExternalName:
		r := s.answer([]dns.RR{&dns.CNAME{Hdr: s.hdr(qname, dns.TypeCNAME), Target: e.svc.external}}, nil)
		if qtype != dns.TypeCNAME {
			r.chase = e.svc.external
		}
		return r
	}
	if qname == e.fqdn { // records built in advance (read-only)
		switch qtype {
		case dns.TypeA:
			return s.answer(e.a4, nil)
		case dns.TypeAAAA:
			return s.answer(e.a6, nil)
		}
	}
	switch e.svc.kind {
	case kindHeadless:
		if qtype == dns.TypeSRV {
			recs := make([]srvRecord, 0, len(e.hl.srv))
			for _, r := range e.hl.srv {
				if r.port.name != "" {
					recs = append(recs, r)
				}
			}
			return s.srvAnswer(qname, e, recs)
		}
		return s.answer(s.addrRRs(nil, qname, qtype, e.hl.addrs), nil)
	default:
		if qtype == dns.TypeSRV {
			var recs []srvRecord
			for _, p := range e.svc.ports {
				if p.name != "" {
					recs = append(recs, srvRecord{port: p})
				}
			}
			return s.srvAnswer(qname, e, recs)
		}
		return s.answer(s.addrRRs(nil, qname, qtype, e.svc.ips), nil)
	}
}

// pods answers <rest>.pod.<zone>: "<a-b-c-d>.<ns>" is the address a.b.c.d
// in any namespace (CoreDNS's "pods insecure"); "" and "<ns>" exist
// without records.
func (s *Server) pods(qname, rest string, qtype uint16) result {
	if rest == "" {
		return s.nodata()
	}
	_, rest = cutLast(rest) // the namespace: not checked, as "pods insecure"
	if rest == "" {
		return s.nodata()
	}
	if strings.Contains(rest, ".") {
		return s.nxdomain()
	}
	a, ok := undash(rest)
	if !ok {
		return s.nxdomain()
	}
	return s.answer(s.addrRRs(nil, qname, qtype, []netip.Addr{a}), nil)
}

// undash parses a pod label: a-b-c-d for IPv4, or an IPv6 address with
// dashes for colons.
func undash(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 {
		if a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ".")); err == nil && a.Is4() {
			return a, true
		}
	}
	if a, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":")); err == nil && a.Is6() && a.Zone() == "" {
		return a, true
	}
	return netip.Addr{}, false
}

// parseReverse reads the address of a reverse name (lowercase):
// d.c.b.a.in-addr.arpa. or 32 nibbles under ip6.arpa.
func parseReverse(lname string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(lname, ".in-addr.arpa."); ok {
		var b [4]byte
		for i := 3; i >= 0; i-- {
			var label string
			label, rest = cutFirst(rest)
			n, err := strconv.ParseUint(label, 10, 8)
			if err != nil || (len(label) > 1 && label[0] == '0') {
				return netip.Addr{}, false
			}
			b[i] = byte(n)
		}
		if rest != "" {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(lname, ".ip6.arpa."); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			c := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			// Nibble i counts from the end of the address.
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= v << 4
			} else {
				b[pos/2] |= v
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

func cutFirst(s string) (first, rest string) {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// reverse answers a PTR question for an address the index knows: a
// ClusterIP or a headless endpoint. ok is false for any other address,
// which is then forwarded.
func (s *Server) reverse(qname, lname string, qtype uint16) (result, bool) {
	a, ok := parseReverse(lname)
	if !ok {
		return result{}, false
	}
	ix := s.idx
	ix.mu.RLock()
	names := ix.rev[a]
	var rrs []dns.RR
	if qtype == dns.TypePTR || qtype == dns.TypeANY {
		rrs = make([]dns.RR, 0, len(names))
		for _, n := range names {
			rrs = append(rrs, &dns.PTR{Hdr: s.hdr(qname, dns.TypePTR), Ptr: n})
		}
	}
	ix.mu.RUnlock()
	if len(names) == 0 {
		return result{}, false
	}
	return result{rcode: dns.RcodeSuccess, auth: true, answer: rrs}, true
}
