package netpol

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/nft"
	"github.com/havre/havre/internal/network/proxy"
)

// Addresses of world(): x/a (app=web; http 8080/TCP, dns 5353/UDP), x/b, y/a (app=client,
// http 9090/TCP) on this node; y/b (http 8081/TCP) on node-b.
var (
	xa, xb, ya = netip.MustParseAddr("10.42.0.10"), netip.MustParseAddr("10.42.0.11"), netip.MustParseAddr("10.42.0.12")
	yb         = netip.MustParseAddr("10.42.1.20")
	outside    = netip.MustParseAddr("203.0.113.9")
)

type tracePkt struct {
	src, dst    netip.Addr
	proto       nft.Proto
	port        uint16
	fromNode    bool // sent by the node itself (output path)
	established bool
}

func tcp(src, dst netip.Addr, port uint16) tracePkt {
	return tracePkt{src: src, dst: dst, proto: nft.ProtoTCP, port: port}
}
func udp(src, dst netip.Addr, port uint16) tracePkt {
	return tracePkt{src: src, dst: dst, proto: nft.ProtoUDP, port: port}
}
func sctp(src, dst netip.Addr, port uint16) tracePkt {
	return tracePkt{src: src, dst: dst, proto: nft.ProtoSCTP, port: port}
}

func (p tracePkt) packet() nft.TracePacket {
	return nft.TracePacket{Src: p.src, Dst: p.dst, Proto: p.proto, Port: p.port, Local: p.fromNode, Established: p.established}
}

// TestTrace walks packets through the table, one case per feature: the objects of world(),
// the case's, and what becomes of each packet.
func TestTrace(t *testing.T) {
	const A, D = "ACCEPT", "DROP"
	type check struct {
		pkt  tracePkt
		want string
	}
	node := func(p tracePkt) tracePkt { p.fromNode = true; return p }
	est := func(p tracePkt) tracePkt { p.established = true; return p }
	for _, tc := range []struct {
		name   string
		objs   []runtime.Object
		checks []check
	}{
		{"no policy: everything flows", nil, []check{
			{tcp(xb, xa, 80), A}, {udp(ya, xa, 53), A}, {tcp(yb, xa, 80), A}, {tcp(xa, yb, 1), A}, {tcp(xa, outside, 443), A},
		}},
		{"an address of the node's pod network not classified is dropped both ways", nil, []check{
			{tcp(netip.MustParseAddr("10.42.0.99"), xa, 80), D},
			{tcp(xa, netip.MustParseAddr("10.42.0.99"), 80), D},
			{tcp(yb, netip.MustParseAddr("10.42.0.99"), 80), D},
			{node(tcp(testNodeIP, netip.MustParseAddr("10.42.0.99"), 80)), A}, // the node reaches its pods
		}},
		{"default deny ingress", []runtime.Object{netpol("x", "deny", "", denyIngress())}, []check{
			{tcp(xb, xa, 80), D}, {tcp(ya, xa, 80), D}, {tcp(yb, xa, 80), D}, {udp(ya, xb, 53), D}, {sctp(ya, xb, 9), D},
			{tcp(xa, ya, 80), A}, {tcp(xa, yb, 80), A}, // egress is not isolated
			{tcp(xb, ya, 80), A},
			{node(tcp(testNodeIP, xa, 80)), A}, {node(tcp(testGateway, xa, 8080)), A}, // kubelet probes
			{est(tcp(ya, xa, 80)), A}, // replies and established connections
		}},
		{"default deny egress", []runtime.Object{netpol("x", "deny", "", types_(typeEgress))}, []check{
			{tcp(xa, ya, 80), D}, {tcp(xa, yb, 80), D}, {tcp(xa, outside, 443), D}, {udp(xb, xa, 53), D},
			{tcp(xa, testNodeIP, 10250), D},                              // the node is a destination like any other
			{udp(xa, testGateway, 53), A}, {tcp(xa, testGateway, 53), A}, // but its DNS server is not
			{tcp(ya, xa, 80), A}, // ingress is not isolated
			{est(tcp(xa, ya, 80)), A},
		}},
		{"pod selector", []runtime.Object{netpol("x", "allow-clients", "app=web", ingressRule(peers(podPeer("app=client"))))}, []check{
			{tcp(xb, xa, 80), A}, {udp(xb, xa, 5353), A},
			{tcp(ya, xa, 80), D}, // app=client, but in another namespace
			{tcp(outside, xa, 80), D},
			{tcp(xa, xb, 80), A}, // x/b is not selected
		}},
		{"namespace selector", []runtime.Object{netpol("x", "allow-red", "app=web", ingressRule(peers(nsPeer("team=red"))))}, []check{
			{tcp(ya, xa, 80), A}, {tcp(yb, xa, 80), A}, {tcp(xb, xa, 80), D},
		}},
		{"namespace and pod selector in one peer", []runtime.Object{
			testPod("y", "c", "node-b", "10.42.1.21", "app=other"),
			netpol("x", "allow", "app=web", ingressRule(peers(nsPodPeer("team=red", "app=client")))),
		}, []check{
			{tcp(ya, xa, 80), A}, {tcp(yb, xa, 80), A},
			{tcp(netip.MustParseAddr("10.42.1.21"), xa, 80), D}, // right namespace, wrong pod
			{tcp(xb, xa, 80), D}, // right pod, wrong namespace
		}},
		{"namespace selector or pod selector (two peers)", []runtime.Object{
			netpol("x", "allow", "app=web", ingressRule(peers(nsPeer("team=red"), podPeer("app=client")))),
		}, []check{{tcp(ya, xa, 80), A}, {tcp(xb, xa, 80), A}, {tcp(outside, xa, 80), D}}},
		{"match expressions", []runtime.Object{
			netpol("x", "allow", "app=web", ingressRule(peers(
				networkingPeer(nil, exprSelector("team", metav1.LabelSelectorOpNotIn, "blue")),
			))),
		}, []check{{tcp(ya, xa, 80), A}, {tcp(xb, xa, 80), D}}},
		{"ipBlock with except", []runtime.Object{netpol("x", "cidr", "app=web",
			types_(typeIngress, typeEgress),
			ingressRule(peers(blockPeer("10.42.0.0/16", "10.42.1.0/24", "10.42.0.11/32"))),
			egressRule(peers(blockPeer("0.0.0.0/0", "10.42.0.0/16"))))}, []check{
			{tcp(ya, xa, 80), A}, {tcp(xb, xa, 80), D}, {tcp(yb, xa, 80), D}, {tcp(outside, xa, 80), D},
			{tcp(xa, outside, 443), A}, {tcp(xa, ya, 80), D}, {tcp(xa, yb, 80), D},
		}},
		{"ports: numbered, range, protocol only; TCP, UDP, SCTP", []runtime.Object{netpol("x", "ports", "app=web", ingressRule(nil,
			port(corev1.ProtocolTCP, 80), port(corev1.ProtocolUDP, 53), port(corev1.ProtocolSCTP, 9000),
			portsRange(corev1.ProtocolTCP, 8000, 8080), protoOnly(corev1.ProtocolUDP)))}, []check{
			{tcp(xb, xa, 80), A}, {tcp(xb, xa, 81), D}, {udp(xb, xa, 80), A}, // any UDP port
			{sctp(xb, xa, 9000), A}, {sctp(xb, xa, 80), D}, {tcp(xb, xa, 9000), D},
			{tcp(xb, xa, 7999), D}, {tcp(xb, xa, 8000), A}, {tcp(xb, xa, 8080), A}, {tcp(xb, xa, 8081), D},
		}},
		{"SCTP is not TCP", []runtime.Object{netpol("x", "sctp", "app=web", ingressRule(nil, port(corev1.ProtocolSCTP, 81)))}, []check{
			{tcp(xb, xa, 81), D}, {udp(xb, xa, 81), D}, {sctp(xb, xa, 81), A},
		}},
		{"named ports resolve on the destination pod (ingress)", []runtime.Object{
			netpol("x", "named", "", ingressRule(peers(podPeer("")), namedPortOf("", "http"), namedPortOf(corev1.ProtocolUDP, "dns"))),
		}, []check{
			{tcp(xb, xa, 8080), A}, {udp(xb, xa, 5353), A}, {tcp(xb, xa, 5353), D}, {udp(xb, xa, 8080), D},
			{tcp(xa, xb, 8080), D}, // x/b has no port named http
			{tcp(ya, xa, 8080), D}, // not a peer
		}},
		{"named ports resolve on the destination pod (egress)", []runtime.Object{
			netpol("x", "named", "app=client", types_(typeEgress), egressRule(peers(nsPeer("")), namedPortOf("", "http"))),
		}, []check{
			{tcp(xb, xa, 8080), A}, {tcp(xb, ya, 9090), A}, {tcp(xb, yb, 8081), A},
			{tcp(xb, ya, 8080), D}, {tcp(xb, yb, 9090), D}, {udp(xb, xa, 8080), D}, {tcp(xb, outside, 8080), D},
		}},
		{"named ports of egress rules resolve on the rule's peers only", []runtime.Object{
			netpol("x", "named", "app=client", types_(typeEgress), egressRule(peers(nsPeer("team=red")), namedPortOf("", "http"))),
		}, []check{{tcp(xb, ya, 9090), A}, {tcp(xb, yb, 8081), A}, {tcp(xb, xa, 8080), D}}},
		{"named ports of egress rules with an ipBlock peer", []runtime.Object{
			netpol("x", "named", "app=client", types_(typeEgress), egressRule(peers(blockPeer("10.42.1.0/24")), namedPortOf("", "http"))),
		}, []check{{tcp(xb, yb, 8081), A}, {tcp(xb, ya, 9090), D}, {tcp(xb, xa, 8080), D}}},
		{"policies are additive", []runtime.Object{
			netpol("x", "allow-clients", "app=web", ingressRule(peers(podPeer("app=client")))),
			netpol("x", "allow-red-8080", "app=web", ingressRule(peers(nsPeer("team=red")), port(corev1.ProtocolTCP, 8080))),
			netpol("x", "deny-all", "", denyIngress()),
		}, []check{
			{tcp(xb, xa, 80), A}, {tcp(ya, xa, 8080), A}, {tcp(ya, xa, 80), D}, {tcp(xa, xb, 80), D},
		}},
		{"policyTypes default: egress rules isolate egress", []runtime.Object{
			netpol("x", "both", "app=web", ingressRule(nil), egressRule(peers(podPeer("")))),
		}, []check{{tcp(xa, xb, 80), A}, {tcp(xa, ya, 80), D}, {tcp(ya, xa, 80), A}}},
		{"policyTypes Ingress only: egress rules are ignored", []runtime.Object{
			netpol("x", "ingress-only", "app=web", types_(typeIngress), egressRule(peers(podPeer("app=nothing")))),
		}, []check{{tcp(xa, ya, 80), A}, {tcp(ya, xa, 80), D}}},
		{"both directions: egress of the client and ingress of the server", []runtime.Object{
			netpol("x", "web-in", "app=web", ingressRule(peers(nsPeer("")))),
			netpol("y", "clients-out", "app=client", types_(typeEgress), egressRule(peers(podPeer("")))),
		}, []check{{tcp(ya, xa, 80), D}, {tcp(xb, xa, 80), A}, {tcp(ya, yb, 80), A}}},
		{"host-network and finished pods are not peers and not policed", []runtime.Object{
			testPod("x", "host", testNode, "192.168.0.2", "app=client", hostNetwork()),
			testPod("x", "done", testNode, "10.42.0.30", "app=client", phase(corev1.PodSucceeded)),
			netpol("x", "allow-clients", "", ingressRule(peers(podPeer("app=client")))),
		}, []check{
			{tcp(xb, xa, 80), A},
			{tcp(netip.MustParseAddr("10.42.0.30"), xa, 80), D}, // unclassified now
			{node(tcp(testNodeIP, xa, 80)), A},                  // the host-network pod is the node
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := buildModel(with(tc.objs...))
			tr := nft.NewTracer([]nft.Table{table}, testGateway, testNodeIP)
			for _, c := range tc.checks {
				if got := tr.Trace(c.pkt.packet()).Verdict; got != c.want {
					t.Errorf("%+v: %s, want %s", c.pkt, got, c.want)
				}
			}
			if t.Failed() {
				t.Log(nft.Text([]nft.Table{table}))
			}
		})
	}
}

func networkingPeer(pod, ns *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: pod, NamespaceSelector: ns}
}

// TestTraceAfterDNAT: Service traffic meets the policies after the service proxy's DNAT,
// with the real pod address and port, in both directions; the proxy's tables and this
// table are walked together, as the kernel would.
func TestTraceAfterDNAT(t *testing.T) {
	const A, D = "ACCEPT", "DROP"
	vip := netip.MustParseAddr("10.43.0.20")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: vip.String(), ClusterIPs: []string{vip.String()},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	slice := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "x", Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{xa.String()}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(testNode)}},
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	proxied := proxy.Build(&proxy.BuildConfig{Table: "havre0", Shards: 2, NodeName: testNode, NodeIPs: []netip.Addr{testNodeIP},
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}},
		[]*corev1.Service{svc}, []*discovery.EndpointSlice{slice}).Tables()
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		pkt  tracePkt
		want string
	}{
		{"ingress allows the endpoint's port: allowed through the Service's port", []runtime.Object{
			netpol("x", "web", "app=web", ingressRule(nil, port(corev1.ProtocolTCP, 8080))),
		}, tcp(ya, vip, 80), A},
		{"ingress allows the Service's port only: denied (the pod's port is 8080)", []runtime.Object{
			netpol("x", "web", "app=web", ingressRule(nil, port(corev1.ProtocolTCP, 80))),
		}, tcp(ya, vip, 80), D},
		{"ingress by peer: the client's address is kept", []runtime.Object{
			netpol("x", "web", "app=web", ingressRule(peers(nsPeer("team=red")))),
		}, tcp(ya, vip, 80), A},
		{"ingress by peer: another client", []runtime.Object{
			netpol("x", "web", "app=web", ingressRule(peers(nsPeer("team=red")))),
		}, tcp(xb, vip, 80), D},
		{"egress to the pod behind the Service: allowed", []runtime.Object{
			netpol("y", "out", "app=client", types_(typeEgress), egressRule(peers(nsPodPeer("team=blue", "app=web")), port(corev1.ProtocolTCP, 8080))),
		}, tcp(ya, vip, 80), A},
		{"egress to the Service's address is not egress to its pods", []runtime.Object{
			netpol("y", "out", "app=client", types_(typeEgress), egressRule(peers(blockPeer("10.43.0.0/16")))),
		}, tcp(ya, vip, 80), D},
		{"egress by named port resolves on the endpoint", []runtime.Object{
			netpol("y", "out", "app=client", types_(typeEgress), egressRule(nil, namedPortOf("", "http"))),
		}, tcp(ya, vip, 80), A},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tables := append(append([]nft.Table(nil), proxied...), buildModel(with(tc.objs...)))
			res := nft.NewTracer(tables, testGateway, testNodeIP).Trace(tc.pkt.packet())
			if res.Verdict != tc.want || len(res.Endpoints) != 1 || res.Endpoints[0] != "10.42.0.10:8080" {
				t.Errorf("%+v: %s, want %s after DNAT to 10.42.0.10:8080", tc.pkt, res, tc.want)
			}
		})
	}
}
