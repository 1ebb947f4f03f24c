package dns

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// clusterObjects is the fixture of the cluster-record tests.
func clusterObjects() []runtime.Object {
	pgPorts := []discoveryv1.EndpointPort{slicePort("pg", v1.ProtocolTCP, 5432)}
	return []runtime.Object{
		service("default", "kubernetes", "10.43.0.1", port("https", v1.ProtocolTCP, 443)),
		service("kube-system", "kube-dns", "10.43.0.10", port("dns", v1.ProtocolUDP, 53), port("dns-tcp", v1.ProtocolTCP, 53)),
		service("default", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80), port("", v1.ProtocolTCP, 8080)),
		// A Service with endpoints is still answered by its ClusterIP.
		slice("default", "web", "web-abc", []discoveryv1.EndpointPort{slicePort("http", v1.ProtocolTCP, 8080)}, ep{ip: "10.42.0.30"}),
		headlessService("data", "db", port("pg", v1.ProtocolTCP, 5432)),
		slice("data", "db", "db-1", pgPorts,
			ep{ip: "10.42.0.5", hostname: "db-0"},
			ep{ip: "10.42.0.6", hostname: "db-1"},
			ep{ip: "10.42.0.7"},
			ep{ip: "10.42.0.8", hostname: "db-3", notReady: true}),
		// The same address in a second slice (a slice being replaced) is answered once.
		slice("data", "db", "db-2", pgPorts, ep{ip: "10.42.0.5", hostname: "db-0"}, ep{ip: "10.42.1.9"}),
		func() *v1.Service {
			s := headlessService("data", "pending", port("pg", v1.ProtocolTCP, 5432))
			s.Spec.PublishNotReadyAddresses = true
			return s
		}(),
		slice("data", "pending", "pending-1", pgPorts, ep{ip: "10.42.0.20", hostname: "p-0", notReady: true}),
		headlessService("data", "empty", port("pg", v1.ProtocolTCP, 5432)),
		slice("data", "empty", "empty-1", pgPorts, ep{ip: "10.42.0.21", notReady: true}),
		externalService("default", "ext-in", "web.default.svc.cluster.local"),
		func() *v1.Service {
			s := service("default", "np", "10.43.0.60", port("http", v1.ProtocolTCP, 80))
			s.Spec.Type = v1.ServiceTypeNodePort
			return s
		}(),
		func() *v1.Service {
			s := service("default", "lb", "10.43.0.61", port("http", v1.ProtocolTCP, 80))
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			return s
		}(),
		func() *v1.Service {
			s := service("default", "dual", "10.43.0.50", port("http", v1.ProtocolTCP, 80))
			s.Spec.ClusterIPs = []string{"10.43.0.50", "fd00:43::50"}
			return s
		}(),
		headlessService("data", "v6", port("pg", v1.ProtocolTCP, 5432)),
		slice("data", "v6", "v6-1", pgPorts, ep{ip: "fd00:42::5", hostname: "v6-0"}),
		// Slices without their Service yet resolve to nothing.
		slice("data", "orphan", "orphan-1", pgPorts, ep{ip: "10.42.0.40"}),
	}
}

func TestClusterRecords(t *testing.T) {
	h := newHarness(t, Config{}, clusterObjects()...)
	const (
		nx = dns.RcodeNameError
		ok = dns.RcodeSuccess
	)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
	}{
		{name: "ClusterIP A", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"web.default.svc.cluster.local. 0 IN A 10.43.0.20"}},
		{name: "case-insensitive, case kept", qname: "WEB.Default.svc.Cluster.Local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"WEB.Default.svc.Cluster.Local. 0 IN A 10.43.0.20"}},
		{name: "ClusterIP AAAA on IPv4-only: NODATA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "ClusterIP MX: NODATA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeMX, rcode: ok},
		{name: "ClusterIP SRV named port", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{"_http._tcp.web.default.svc.cluster.local. 0 IN SRV 0 100 80 web.default.svc.cluster.local."},
			extra:  []string{"web.default.svc.cluster.local. 0 IN A 10.43.0.20"}},
		{name: "SRV of a named port, A asked: NODATA", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "SRV wrong protocol", qname: "_http._udp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx},
		{name: "SRV unknown port", qname: "_grpc._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx},
		{name: "protocol label: empty non-terminal", qname: "_tcp.web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "SRV of the Service name: every named port", qname: "kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{
				"kube-dns.kube-system.svc.cluster.local. 0 IN SRV 0 50 53 kube-dns.kube-system.svc.cluster.local.",
				"kube-dns.kube-system.svc.cluster.local. 0 IN SRV 0 50 53 kube-dns.kube-system.svc.cluster.local.",
			},
			extra: []string{"kube-dns.kube-system.svc.cluster.local. 0 IN A 10.43.0.10"}},
		{name: "UDP port SRV", qname: "_dns._udp.kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{"_dns._udp.kube-dns.kube-system.svc.cluster.local. 0 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."},
			extra:  []string{"kube-dns.kube-system.svc.cluster.local. 0 IN A 10.43.0.10"}},
		{name: "endpoint name of a ClusterIP Service", qname: "10-42-0-30.web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "unknown Service", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "unknown Service, AAAA", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: nx},
		{name: "unknown namespace", qname: "web.nons.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "namespace with Services: NODATA", qname: "default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "namespace without Services", qname: "nons.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "svc: NODATA", qname: "svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "too many labels", qname: "a.b.c.web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "unknown subtree", qname: "foo.cluster.local.", qtype: dns.TypeA, rcode: nx},

		{name: "headless A: ready endpoints, deduplicated", qname: "db.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"db.data.svc.cluster.local. 0 IN A 10.42.0.5",
				"db.data.svc.cluster.local. 0 IN A 10.42.0.6",
				"db.data.svc.cluster.local. 0 IN A 10.42.0.7",
				"db.data.svc.cluster.local. 0 IN A 10.42.1.9",
			}},
		{name: "headless hostname", qname: "db-1.db.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"db-1.db.data.svc.cluster.local. 0 IN A 10.42.0.6"}},
		{name: "headless dashed IP without hostname", qname: "10-42-0-7.db.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"10-42-0-7.db.data.svc.cluster.local. 0 IN A 10.42.0.7"}},
		{name: "headless dashed IP of an endpoint with a hostname", qname: "10-42-0-6.db.data.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "headless not-ready hostname", qname: "db-3.db.data.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "headless hostname AAAA: NODATA", qname: "db-1.db.data.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "headless SRV: one per endpoint", qname: "_pg._tcp.db.data.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok,
			answer: []string{
				"_pg._tcp.db.data.svc.cluster.local. 0 IN SRV 0 25 5432 10-42-0-7.db.data.svc.cluster.local.",
				"_pg._tcp.db.data.svc.cluster.local. 0 IN SRV 0 25 5432 10-42-1-9.db.data.svc.cluster.local.",
				"_pg._tcp.db.data.svc.cluster.local. 0 IN SRV 0 25 5432 db-0.db.data.svc.cluster.local.",
				"_pg._tcp.db.data.svc.cluster.local. 0 IN SRV 0 25 5432 db-1.db.data.svc.cluster.local.",
			},
			extra: []string{
				"10-42-0-7.db.data.svc.cluster.local. 0 IN A 10.42.0.7",
				"10-42-1-9.db.data.svc.cluster.local. 0 IN A 10.42.1.9",
				"db-0.db.data.svc.cluster.local. 0 IN A 10.42.0.5",
				"db-1.db.data.svc.cluster.local. 0 IN A 10.42.0.6",
			}},
		{name: "publishNotReadyAddresses: not-ready endpoint", qname: "pending.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"pending.data.svc.cluster.local. 0 IN A 10.42.0.20"}},
		{name: "publishNotReadyAddresses: hostname", qname: "p-0.pending.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"p-0.pending.data.svc.cluster.local. 0 IN A 10.42.0.20"}},
		{name: "headless without ready endpoints", qname: "empty.data.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "slices without their Service", qname: "orphan.data.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},

		{name: "ExternalName CNAME asked", qname: "ext-in.default.svc.cluster.local.", qtype: dns.TypeCNAME, rcode: ok,
			answer: []string{"ext-in.default.svc.cluster.local. 0 IN CNAME web.default.svc.cluster.local."}},
		{name: "ExternalName to a cluster name: chased in the index", qname: "ext-in.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"ext-in.default.svc.cluster.local. 0 IN CNAME web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 0 IN A 10.43.0.20",
			}},

		{name: "PTR of a ClusterIP", qname: "20.0.43.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"20.0.43.10.in-addr.arpa. 0 IN PTR web.default.svc.cluster.local."}},
		{name: "PTR of a headless endpoint with a hostname", qname: "6.0.42.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"6.0.42.10.in-addr.arpa. 0 IN PTR db-1.db.data.svc.cluster.local."}},
		{name: "PTR of a headless endpoint without one", qname: "7.0.42.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"7.0.42.10.in-addr.arpa. 0 IN PTR 10-42-0-7.db.data.svc.cluster.local."}},

		{name: "NodePort A", qname: "np.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"np.default.svc.cluster.local. 0 IN A 10.43.0.60"}},
		{name: "LoadBalancer A", qname: "lb.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"lb.default.svc.cluster.local. 0 IN A 10.43.0.61"}},
		{name: "dual-stack A", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"dual.default.svc.cluster.local. 0 IN A 10.43.0.50"}},
		{name: "dual-stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"dual.default.svc.cluster.local. 0 IN AAAA fd00:43::50"}},
		{name: "PTR of an IPv6 ClusterIP", qname: "0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR, rcode: ok,
			answer: []string{"0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa. 0 IN PTR dual.default.svc.cluster.local."}},
		{name: "IPv6 headless endpoint", qname: "v6-0.v6.data.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"v6-0.v6.data.svc.cluster.local. 0 IN AAAA fd00:42::5"}},
		{name: "IPv6 headless endpoint, A: NODATA", qname: "v6.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},

		{name: "pod A", qname: "10-42-0-99.default.pod.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"10-42-0-99.default.pod.cluster.local. 0 IN A 10.42.0.99"}},
		{name: "pod AAAA: NODATA", qname: "10-42-0-99.default.pod.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "pod name not an address", qname: "web.default.pod.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "pod octet out of range", qname: "10-42-0-300.default.pod.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "pod namespace: NODATA", qname: "default.pod.cluster.local.", qtype: dns.TypeA, rcode: ok},

		{name: "schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT, rcode: ok,
			answer: []string{`dns-version.cluster.local. 0 IN TXT "1.1.0"`}},
		{name: "schema version, A asked: NODATA", qname: "dns-version.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "apex SOA", qname: "cluster.local.", qtype: dns.TypeSOA, rcode: ok},
		{name: "apex NS", qname: "cluster.local.", qtype: dns.TypeNS, rcode: ok,
			answer: []string{"cluster.local. 0 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 0 IN A 10.43.0.10"}},
		{name: "the NS's address", qname: "ns.dns.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"ns.dns.cluster.local. 0 IN A 10.43.0.10"}},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				m := h.query(network, tt.qname, tt.qtype)
				if m.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode], m)
				}
				if !m.Authoritative {
					t.Errorf("answer for the cluster domain is not authoritative\n%v", m)
				}
				if !m.RecursionAvailable {
					t.Errorf("RA not set")
				}
				if tt.qtype != dns.TypeSOA {
					got := rrStrings(m.Answer)
					if !slices.Equal(got, tt.answer) {
						t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.answer, "\n"))
					}
				}
				if got := rrStrings(m.Extra); !slices.Equal(got, tt.extra) {
					t.Errorf("additional:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.extra, "\n"))
				}
				for _, rr := range m.Answer {
					if ttl := rr.Header().Ttl; ttl != 5 {
						t.Errorf("TTL %d, want 5: %v", ttl, rr)
					}
				}
				negative := len(m.Answer) == 0
				if negative {
					if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
						t.Fatalf("negative answer without the zone's SOA in authority:\n%v", m)
					}
					soa := m.Ns[0].(*dns.SOA)
					if soa.Hdr.Name != "cluster.local." || soa.Minttl != 5 {
						t.Errorf("SOA %v: want cluster.local. with minimum 5", soa)
					}
				} else if len(m.Ns) != 0 {
					t.Errorf("positive answer with authority records: %v", m.Ns)
				}
				if tt.qtype == dns.TypeSOA {
					if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeSOA {
						t.Errorf("apex SOA: %v", m.Answer)
					}
				}
			})
		}
	}
}

// TestTruncation checks that a UDP answer too large for the client's
// buffer is truncated with TC set and that TCP serves it whole.
func TestTruncation(t *testing.T) {
	var eps []ep
	for i := range 100 {
		eps = append(eps, ep{ip: fmt.Sprintf("10.42.%d.%d", i/250, i%250+2)})
	}
	h := newHarness(t, Config{},
		headlessService("data", "big", port("pg", v1.ProtocolTCP, 5432)),
		slice("data", "big", "big-1", []discoveryv1.EndpointPort{slicePort("pg", v1.ProtocolTCP, 5432)}, eps...))
	const name = "big.data.svc.cluster.local."
	tests := []struct {
		name      string
		network   string
		edns      uint16 // 0: no EDNS0
		truncated bool
		maxLen    int
	}{
		{name: "UDP, no EDNS0: 512 bytes", network: "udp", truncated: true, maxLen: 512},
		{name: "UDP, EDNS0 1232", network: "udp", edns: 1232, truncated: true, maxLen: 1232},
		{name: "UDP, EDNS0 4096: fits compressed", network: "udp", edns: 4096, maxLen: 4096},
		{name: "TCP", network: "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := h.exchange(tt.network, name, dns.TypeA, func(q *dns.Msg) {
				if tt.edns != 0 {
					q.SetEdns0(tt.edns, false)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if m.Truncated != tt.truncated {
				t.Fatalf("TC=%v, want %v (%d answers)", m.Truncated, tt.truncated, len(m.Answer))
			}
			m.Compress = true // as it came on the wire
			packed, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if tt.maxLen > 0 && len(packed) > tt.maxLen {
				t.Errorf("answer of %d bytes, over the %d the client can take", len(packed), tt.maxLen)
			}
			if tt.truncated {
				if len(m.Answer) >= 100 {
					t.Errorf("truncated answer has all %d records", len(m.Answer))
				}
			} else if len(m.Answer) != 100 {
				t.Errorf("%d answers, want 100", len(m.Answer))
			}
		})
	}
	// A resolver's retry: the miekg client's TC → TCP path gets it all.
	t.Run("retry over TCP after TC", func(t *testing.T) {
		m := h.query("udp", name, dns.TypeA)
		if !m.Truncated {
			t.Fatal("UDP answer not truncated")
		}
		m = h.query("tcp", name, dns.TypeA)
		if m.Truncated || len(m.Answer) != 100 {
			t.Fatalf("TCP: TC=%v, %d answers", m.Truncated, len(m.Answer))
		}
	})
}

// TestUpdates checks that informer events change answers: Services and
// slices created, changed and deleted.
func TestUpdates(t *testing.T) {
	up := newUpstream(t) // answers NXDOMAIN for the addresses the index no longer knows
	h := newHarness(t, Config{Upstreams: []string{up.addr}})
	ctx := t.Context()
	answers := func(name string, qtype uint16) (int, []string) {
		m := h.query("udp", name, qtype)
		return m.Rcode, rrStrings(m.Answer)
	}
	wait := func(what, name string, qtype uint16, rcode int, want ...string) {
		t.Helper()
		h.eventually(what, func() bool {
			rc, got := answers(name, qtype)
			return rc == rcode && slices.Equal(got, want)
		})
	}
	svcs := h.cs.CoreV1().Services("team")
	slicesAPI := h.cs.DiscoveryV1().EndpointSlices("team")

	if rc, _ := answers("api.team.svc.cluster.local.", dns.TypeA); rc != dns.RcodeNameError {
		t.Fatalf("before creation: %s", dns.RcodeToString[rc])
	}
	s, err := svcs.Create(ctx, service("team", "api", "10.43.1.1", port("http", v1.ProtocolTCP, 80)), createOpts)
	if err != nil {
		t.Fatal(err)
	}
	wait("a created Service resolves", "api.team.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "api.team.svc.cluster.local. 0 IN A 10.43.1.1")
	wait("its PTR exists", "1.1.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "1.1.43.10.in-addr.arpa. 0 IN PTR api.team.svc.cluster.local.")

	s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.1.2", []string{"10.43.1.2"}
	if _, err := svcs.Update(ctx, s, updateOpts); err != nil {
		t.Fatal(err)
	}
	wait("a changed ClusterIP resolves", "api.team.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "api.team.svc.cluster.local. 0 IN A 10.43.1.2")
	wait("the new PTR exists", "2.1.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "2.1.43.10.in-addr.arpa. 0 IN PTR api.team.svc.cluster.local.")
	if m := h.query("udp", "1.1.43.10.in-addr.arpa.", dns.TypePTR); len(m.Answer) != 0 {
		t.Errorf("the old ClusterIP's PTR remains: %v", m.Answer)
	}

	if err := svcs.Delete(ctx, "api", deleteOpts); err != nil {
		t.Fatal(err)
	}
	wait("a deleted Service is NXDOMAIN", "api.team.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	wait("so is its namespace", "team.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)

	// Headless: endpoints come, become ready, go.
	if _, err := svcs.Create(ctx, headlessService("team", "hs", port("web", v1.ProtocolTCP, 80)), createOpts); err != nil {
		t.Fatal(err)
	}
	ports := []discoveryv1.EndpointPort{slicePort("web", v1.ProtocolTCP, 8080)}
	es, err := slicesAPI.Create(ctx, slice("team", "hs", "hs-1", ports, ep{ip: "10.42.3.1", hostname: "a", notReady: true}), createOpts)
	if err != nil {
		t.Fatal(err)
	}
	wait("namespace exists once the Service does", "team.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess)
	if rc, _ := answers("hs.team.svc.cluster.local.", dns.TypeA); rc != dns.RcodeNameError {
		t.Errorf("headless Service without ready endpoints: %s, want NXDOMAIN", dns.RcodeToString[rc])
	}
	es.Endpoints[0].Conditions.Ready = ptrBool(true)
	if _, err := slicesAPI.Update(ctx, es, updateOpts); err != nil {
		t.Fatal(err)
	}
	wait("a ready endpoint resolves", "a.hs.team.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "a.hs.team.svc.cluster.local. 0 IN A 10.42.3.1")
	wait("its SRV, with the endpoint's port", "_web._tcp.hs.team.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
		"_web._tcp.hs.team.svc.cluster.local. 0 IN SRV 0 100 8080 a.hs.team.svc.cluster.local.")
	wait("its PTR", "1.3.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "1.3.42.10.in-addr.arpa. 0 IN PTR a.hs.team.svc.cluster.local.")

	// publishNotReadyAddresses switched on publishes a not-ready endpoint.
	es.Endpoints = append(es.Endpoints, discoveryv1Endpoint("10.42.3.2", false))
	if _, err := slicesAPI.Update(ctx, es, updateOpts); err != nil {
		t.Fatal(err)
	}
	hs, err := svcs.Get(ctx, "hs", getOpts)
	if err != nil {
		t.Fatal(err)
	}
	hs.Spec.PublishNotReadyAddresses = true
	if _, err := svcs.Update(ctx, hs, updateOpts); err != nil {
		t.Fatal(err)
	}
	wait("publishNotReadyAddresses adds the not-ready endpoint", "hs.team.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
		"hs.team.svc.cluster.local. 0 IN A 10.42.3.1", "hs.team.svc.cluster.local. 0 IN A 10.42.3.2")

	if err := slicesAPI.Delete(ctx, "hs-1", deleteOpts); err != nil {
		t.Fatal(err)
	}
	wait("the slice's deletion empties the Service", "hs.team.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	wait("and drops its PTR", "1.3.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError)
}

// TestMalformed checks the answers to queries that are not plain
// questions, over both transports.
func TestMalformed(t *testing.T) {
	h := newHarness(t, Config{})
	tests := []struct {
		name  string
		edit  func(*dns.Msg)
		rcode int
	}{
		{name: "two questions", edit: func(q *dns.Msg) {
			q.Question = append(q.Question, dns.Question{Name: "b.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
		}, rcode: dns.RcodeFormatError},
		{name: "NOTIFY", edit: func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }, rcode: dns.RcodeNotImplemented},
		{name: "EDNS version 1", edit: func(q *dns.Msg) { q.SetEdns0(1232, false); q.IsEdns0().SetVersion(1) }, rcode: dns.RcodeBadVers},
		{name: "class CHAOS", edit: func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS }, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				m, err := h.exchange(network, "dns-version.cluster.local.", dns.TypeTXT, tt.edit)
				if err != nil && m == nil {
					t.Fatal(err)
				}
				if m.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
				}
				if len(m.Answer) != 0 {
					t.Errorf("answers: %v", m.Answer)
				}
			})
		}
	}

	// Over UDP: garbage gets FORMERR; a response is never answered (that
	// would let two servers bounce packets forever).
	conn, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	garbage := []byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff}
	if _, err := conn.Write(garbage); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 512)
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(resp)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(resp[:n]); err != nil || m.Id != 0x1234 || m.Rcode != dns.RcodeFormatError {
		t.Fatalf("answer to garbage: %v %v", err, &m)
	}
	response := new(dns.Msg).SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
	response.Response, response.Id = true, 1
	query := new(dns.Msg).SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
	query.Id = 2
	for _, msg := range []*dns.Msg{response, query} {
		b, _ := msg.Pack()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	n, err = conn.Read(resp)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Unpack(resp[:n]); err != nil || m.Id != 2 {
		t.Fatalf("first datagram back is not the answer to the query (id 2): %v %v", err, &m)
	}
}

// TestWildcardListen checks a listener on the wildcard address (served
// by miekg/dns's server, which answers from the address asked); the test
// sends only to 127.0.0.1.
func TestWildcardListen(t *testing.T) {
	h := newHarness(t, Config{Listen: []string{"0.0.0.0:0"}}, service("default", "web", "10.43.0.20"))
	_, p, _ := net.SplitHostPort(h.addr)
	h.addr = net.JoinHostPort("127.0.0.1", p)
	for _, network := range []string{"udp", "tcp"} {
		m := h.query(network, "web.default.svc.cluster.local.", dns.TypeA)
		if !slices.Equal(rrStrings(m.Answer), []string{"web.default.svc.cluster.local. 0 IN A 10.43.0.20"}) {
			t.Fatalf("over %s: %v", network, m)
		}
	}
}

// TestCollectors checks that the collectors register together.
func TestCollectors(t *testing.T) {
	h := newHarness(t, Config{})
	reg := prometheus.NewRegistry()
	for _, c := range h.srv.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("registering %T: %v", c, err)
		}
	}
	h.query("udp", "dns-version.cluster.local.", dns.TypeTXT)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"havre_dns_requests_total", "havre_dns_cache_entries", "havre_dns_forward_loop_upstreams"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not gathered (have %v)", want, names)
		}
	}
}

// TestIPv6Listen checks a listener on ::1 (the batching UDP workers over
// an IPv6 socket).
func TestIPv6Listen(t *testing.T) {
	if ln, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	h := newHarness(t, Config{Listen: []string{"[::1]:0"}}, service("default", "web", "10.43.0.20"))
	for _, network := range []string{"udp", "tcp"} {
		m := h.query(network, "web.default.svc.cluster.local.", dns.TypeA)
		if !slices.Equal(rrStrings(m.Answer), []string{"web.default.svc.cluster.local. 0 IN A 10.43.0.20"}) {
			t.Fatalf("over %s: %v", network, m)
		}
	}
}
