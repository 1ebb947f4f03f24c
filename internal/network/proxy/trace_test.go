package proxy

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/havre/havre/internal/network/nft"
)

// TestTrace walks packets through the model, one case per feature.
func TestTrace(t *testing.T) {
	models := map[string]*Model{}
	for _, c := range buildCases() {
		models[c.name] = Build(testBuildConfig(), c.services, c.slices)
	}
	a := netip.MustParseAddr
	pod, other, outside := a("10.42.0.9"), a("10.42.1.20"), a("203.0.113.50")
	type pkt = nft.TracePacket
	tcpTo := func(src string, dst string, port uint16) pkt {
		return pkt{Src: a(src), Dst: a(dst), Proto: nft.ProtoTCP, Port: port}
	}
	_ = other
	cases := []struct {
		name   string
		model  string
		packet pkt
		choose []int // numgen picks, trace after trace (affinity); nil explores all branches
		want   nft.TraceResult
	}{
		{"clusterip from a pod", "clusterip", pkt{Src: pod, Dst: a("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080", "10.42.1.6:8080"}, Masquerade: false}},
		{"clusterip from the node is masqueraded (outside cluster CIDR)", "clusterip", pkt{Src: testNodeIP, Dst: a("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80, Local: true}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080", "10.42.1.6:8080"}, Masquerade: true}},
		{"clusterip without endpoints is rejected", "clusterip", tcpTo("10.42.0.9", "10.43.0.21", 80), nil, nft.TraceResult{Verdict: "REJECT"}},
		{"clusterip without endpoints is rejected from the node", "clusterip", pkt{Src: testNodeIP, Dst: a("10.43.0.21"), Proto: nft.ProtoTCP, Port: 80, Local: true}, nil, nft.TraceResult{Verdict: "REJECT"}},
		{"invalid port of a clusterip is rejected", "clusterip", tcpTo("10.42.0.9", "10.43.0.20", 81), nil, nft.TraceResult{Verdict: "REJECT"}},
		{"unallocated clusterip is dropped", "clusterip", tcpTo("10.42.0.9", "10.43.0.99", 80), nil, nft.TraceResult{Verdict: "DROP"}},
		{"headless service has no rules", "clusterip", tcpTo("10.42.0.9", "10.42.0.5", 8080), nil, nft.TraceResult{Verdict: "ACCEPT"}},
		{"hairpin: a pod reaching itself is masqueraded", "clusterip", tcpTo("10.42.0.5", "10.43.0.20", 80), []int{0},
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: true}},
		{"hairpin: a pod reaching another endpoint is not", "clusterip", tcpTo("10.42.0.5", "10.43.0.20", 80), []int{1},
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.6:8080"}, Masquerade: false}},
		{"nodeport from outside", "nodeport", pkt{Src: outside, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.6:8080"}, Masquerade: true}},
		{"nodeport only on node IPs", "nodeport", pkt{Src: outside, Dst: testBridge, Proto: nft.ProtoTCP, Port: 30080}, nil, nft.TraceResult{Verdict: "ACCEPT"}},
		{"nodeport from the node itself", "nodeport", pkt{Src: testNodeIP, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080, Local: true}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.6:8080"}, Masquerade: true}},
		{"nodeport without endpoints is rejected", "nodeport", pkt{Src: outside, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30081}, nil, nft.TraceResult{Verdict: "REJECT"}},
		{"load balancer ingress IP", "loadbalancer-externalips", tcpTo("203.0.113.50", "203.0.113.10", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.6:8080"}, Masquerade: true}},
		{"load balancer node port", "loadbalancer-externalips", pkt{Src: outside, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.6:8080"}, Masquerade: true}},
		{"external IP", "loadbalancer-externalips", tcpTo("203.0.113.50", "198.51.100.7", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: true}},
		{"external IP, other port is not served", "loadbalancer-externalips", tcpTo("203.0.113.50", "198.51.100.7", 81), nil, nft.TraceResult{Verdict: "ACCEPT"}},
		{"etp Local: external traffic to local endpoints only, source kept", "external-traffic-policy-local", pkt{Src: outside, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: false}},
		{"etp Local: pods short-circuit to all endpoints", "external-traffic-policy-local", pkt{Src: pod, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080", "10.42.1.6:8080"}, Masquerade: false}},
		{"etp Local: the node itself goes to all endpoints, masqueraded", "external-traffic-policy-local", pkt{Src: testNodeIP, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30080, Local: true}, nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080", "10.42.1.6:8080"}, Masquerade: true}},
		{"etp Local: no local endpoints drops external traffic", "external-traffic-policy-local", pkt{Src: outside, Dst: testNodeIP, Proto: nft.ProtoTCP, Port: 30081}, nil, nft.TraceResult{Verdict: "DROP"}},
		{"etp Local: clusterIP still uses every endpoint", "external-traffic-policy-local", tcpTo("10.42.0.9", "10.43.0.21", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.7:8080"}, Masquerade: false}},
		{"itp Local: local endpoints only", "internal-traffic-policy-local", tcpTo("10.42.0.9", "10.43.0.20", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: false}},
		{"itp Local: no local endpoints drops", "internal-traffic-policy-local", tcpTo("10.42.0.9", "10.43.0.21", 80), nil, nft.TraceResult{Verdict: "DROP"}},
		{"serving terminating endpoints when none is ready", "terminating-fallback", tcpTo("10.42.0.9", "10.43.0.20", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: false}},
		{"PreferSameZone", "prefer-same-zone", tcpTo("10.42.0.9", "10.43.0.20", 80), nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080"}, Masquerade: false}},
		{"PreferClose is PreferSameZone", "prefer-same-zone", tcpTo("10.42.0.9", "10.43.0.21", 80), nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.8:8080"}, Masquerade: false}},
		{"zone hints ignored unless every endpoint has them", "prefer-same-zone", tcpTo("10.42.0.9", "10.43.0.22", 80), nil,
			nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.10:8080", "10.42.1.11:8080"}, Masquerade: false}},
		{"PreferSameNode", "prefer-same-node", tcpTo("10.42.0.9", "10.43.0.20", 80), nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:8080", "10.42.0.6:8080"}, Masquerade: false}},
		{"UDP and TCP on one port: UDP", "tcp-and-udp-same-port", pkt{Src: pod, Dst: a("10.43.0.53"), Proto: nft.ProtoUDP, Port: 53}, nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:5353"}, Masquerade: false}},
		{"UDP and TCP on one port: TCP", "tcp-and-udp-same-port", pkt{Src: pod, Dst: a("10.43.0.53"), Proto: nft.ProtoTCP, Port: 53}, nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.5:5353"}, Masquerade: false}},
		{"local DNS: UDP to the node's DNS server, source kept", "local-dns", pkt{Src: pod, Dst: a("10.43.0.10"), Proto: nft.ProtoUDP, Port: 53}, nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.1:53"}, Masquerade: false}},
		{"local DNS: TCP from the node itself, not masqueraded", "local-dns", pkt{Src: testNodeIP, Dst: a("10.43.0.10"), Proto: nft.ProtoTCP, Port: 53, Local: true}, nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.0.1:53"}, Masquerade: false}},
		{"local DNS: other ports go to endpoints", "local-dns", pkt{Src: pod, Dst: a("10.43.0.10"), Proto: nft.ProtoTCP, Port: 9153}, nil, nft.TraceResult{Verdict: "ACCEPT", Endpoints: []string{"10.42.1.3:9153"}, Masquerade: false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracer(models[tc.model], testBridge)
			if tc.choose != nil {
				i := 0
				tr.Choose = func(int) int { c := tc.choose[i%len(tc.choose)]; i++; return c }
			}
			got := tr.Trace(tc.packet)
			if got.Verdict != tc.want.Verdict || got.Masquerade != tc.want.Masquerade || !reflect.DeepEqual(got.Endpoints, tc.want.Endpoints) {
				t.Errorf("trace %+v:\n got  %s\n want %s", tc.packet, got, tc.want)
			}
		})
	}
}

// TestTraceAffinity: with ClientIP affinity the second connection goes where the first went,
// whatever random balancing would pick.
func TestTraceAffinity(t *testing.T) {
	var c buildCase
	for _, x := range buildCases() {
		if x.name == "affinity" {
			c = x
		}
	}
	m := Build(testBuildConfig(), c.services, c.slices)
	picks := []int{1, 0, 0}
	tr := NewTracer(m)
	tr.Choose = func(int) int { p := picks[0]; picks = picks[1:]; return p }
	p := nft.TracePacket{Src: netip.MustParseAddr("10.42.0.9"), Dst: netip.MustParseAddr("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80}
	first := tr.Trace(p)
	second := tr.Trace(p)
	if !reflect.DeepEqual(first.Endpoints, []string{"10.42.1.6:8080"}) || !reflect.DeepEqual(second.Endpoints, first.Endpoints) {
		t.Errorf("affinity did not stick: first %s, second %s", first, second)
	}
	p.Src = netip.MustParseAddr("10.42.0.10")
	if other := tr.Trace(p); !reflect.DeepEqual(other.Endpoints, []string{"10.42.0.5:8080"}) {
		t.Errorf("another client follows balancing, got %s", other)
	}
}

// TestTraceNATOnce: after one shard's NAT chain has translated a connection, the NAT chains of
// later shards are not consulted (as in the kernel), even if the new destination is another
// Service's external IP and port.
func TestTraceNATOnce(t *testing.T) {
	bc := testBuildConfig()
	// Service "first" must be in an earlier shard than "second".
	var first, second string
	for i := 0; first == "" || second == ""; i++ {
		name := fmt.Sprintf("svc%d", i)
		if s := shardOf(typesNN("ns1", name), bc.Shards); s == 0 && first == "" {
			first = name
		} else if s == bc.Shards-1 && second == "" {
			second = name
		}
	}
	web := []slicePort{tcp("http", 80)}
	m := Build(bc, []*v1.Service{
		svc("ns1", first, "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0)),
		svc("ns1", second, "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0), externalIPs("198.51.100.7")),
	}, []*discovery.EndpointSlice{
		slice("ns1", first, first+"-1", web, ep("198.51.100.7")),
		slice("ns1", second, second+"-1", web, ep("10.42.0.9")),
	})
	got := NewTracer(m).Trace(nft.TracePacket{Src: netip.MustParseAddr("10.42.0.5"), Dst: netip.MustParseAddr("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80})
	if got.Verdict != "ACCEPT" || !reflect.DeepEqual(got.Endpoints, []string{"198.51.100.7:80"}) {
		t.Errorf("trace: %s, want one DNAT, to 198.51.100.7:80", got)
	}
	// The second Service's external IP, reached directly, is the second shard's.
	got = NewTracer(m).Trace(nft.TracePacket{Src: netip.MustParseAddr("203.0.113.50"), Dst: netip.MustParseAddr("198.51.100.7"), Proto: nft.ProtoTCP, Port: 80})
	if !reflect.DeepEqual(got.Endpoints, []string{"10.42.0.9:80"}) {
		t.Errorf("trace to the external IP: %s", got)
	}
}
