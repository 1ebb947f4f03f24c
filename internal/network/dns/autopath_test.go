package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
)

func TestAutopath(t *testing.T) {
	up := newUpstream(t,
		"www.example.com. 60 IN A 192.0.2.53",
		"intranet.corp.test. 60 IN A 192.0.2.80",
	)
	pods := map[netip.Addr]string{mustAddr("127.0.0.1"): "default", mustAddr("127.0.0.2"): "data"}
	h := newHarness(t, Config{
		Upstreams: []string{up.addr},
		Search:    []string{"corp.test"},
		NamespaceOf: func(ip netip.Addr) (string, bool) {
			ns, ok := pods[ip]
			return ns, ok
		},
	},
		service("default", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80)),
		service("data", "db", "10.43.0.30", port("pg", v1.ProtocolTCP, 5432)),
	)
	const (
		nx = dns.RcodeNameError
		ok = dns.RcodeSuccess
	)
	tests := []struct {
		name   string
		client string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{name: "a Service of the pod's namespace: answered as it is", client: "127.0.0.1", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{"web.default.svc.cluster.local. 0 IN A 10.43.0.20"}},
		{name: "external name completed to the bare name", client: "127.0.0.1", qname: "www.example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"www.example.com.default.svc.cluster.local. 0 IN CNAME www.example.com.",
				"www.example.com. 0 IN A 192.0.2.53",
			}},
		{name: "case kept in the CNAME", client: "127.0.0.1", qname: "WWW.Example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"WWW.Example.com.default.svc.cluster.local. 0 IN CNAME WWW.Example.com.",
				"www.example.com. 0 IN A 192.0.2.53",
			}},
		{name: "<svc>.<ns> of another namespace: completed to svc.<zone>", client: "127.0.0.1", qname: "db.data.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"db.data.default.svc.cluster.local. 0 IN CNAME db.data.svc.cluster.local.",
				"db.data.svc.cluster.local. 0 IN A 10.43.0.30",
			}},
		{name: "completed by the host's search domain", client: "127.0.0.1", qname: "intranet.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"intranet.default.svc.cluster.local. 0 IN CNAME intranet.corp.test.",
				"intranet.corp.test. 0 IN A 192.0.2.80",
			}},
		{name: "NODATA of the first existing name", client: "127.0.0.1", qname: "www.example.com.default.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok,
			answer: []string{"www.example.com.default.svc.cluster.local. 0 IN CNAME www.example.com."}},
		{name: "nothing exists: the asked name's NXDOMAIN", client: "127.0.0.1", qname: "nothing.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "not the pod's namespace", client: "127.0.0.1", qname: "www.example.com.data.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "another pod's namespace", client: "127.0.0.2", qname: "www.example.com.data.svc.cluster.local.", qtype: dns.TypeA, rcode: ok,
			answer: []string{
				"www.example.com.data.svc.cluster.local. 0 IN CNAME www.example.com.",
				"www.example.com. 0 IN A 192.0.2.53",
			}},
		{name: "not a pod", client: "127.0.0.3", qname: "www.example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "a later search candidate asked directly: no completion", client: "127.0.0.1", qname: "www.example.com.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				m, err := exchangeFrom(network, tt.client, h.addr, tt.qname, tt.qtype, nil)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode], m)
				}
				if got := rrStrings(m.Answer); !slices.Equal(got, tt.answer) {
					t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.answer, "\n"))
				}
				if len(m.Answer) == 0 && len(m.Ns) == 0 {
					t.Errorf("negative answer without SOA")
				}
			})
		}
	}
	if n := counter(t, h.srv.m.autopath); n < 10 {
		t.Errorf("autopath_total %v", n)
	}
	if got := up.count("www.example.com.", dns.TypeA); got != 1 {
		t.Errorf("upstream asked %d times for www.example.com A, want 1 (cached)", got)
	}
}
