package netpol

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/nft"
	"github.com/havre/havre/internal/network/proxy"
)

// TestUpstreamModel runs every case of upstream's NetworkPolicy e2e tests against the
// tables the engines build, with the tracer: the pods on one node, and spread over three
// nodes (a connection crosses the source node's table, then the destination node's). Every
// pair of pods, ports 80 and 81, TCP, UDP and SCTP, to the pod's address and through its
// Service (the proxy's tables, DNAT before the policies), after every step: the matrix must
// be what the API's semantics say (oracleAllows) and what upstream expects where it says.
func TestUpstreamModel(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		for _, c := range upstreamCases() {
			t.Run(fmt.Sprintf("nodes=%d/%s", nodes, c.fullName()), func(t *testing.T) {
				m := newModelCluster(nodes)
				for i, step := range c.steps {
					step.do(m.w)
					m.propagate()
					m.verify(t, i, step.checks)
				}
			})
		}
	}
}

// modelCluster is nodes, each with an engine fed incrementally, the service proxy's tables
// and a tracer over both.
type modelCluster struct {
	w       *e2eWorld
	engines []*incremental
	proxies [][]nft.Table
	tracers []*nft.Tracer
	prev    *e2eWorld // what was last given to the engines
}

func e2eNodeIP(i int) netip.Addr  { return netip.AddrFrom4([4]byte{100, 64, 0, byte(10 + i)}) }
func e2eGateway(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 42, byte(i), 1}) }
func e2ePodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i), 0}), 24)
}

// e2eServices is a Service per pod, on ports 80 and 81 of every protocol (upstream's).
func e2eServices(w *e2eWorld) ([]*corev1.Service, []*discovery.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discovery.EndpointSlice
	for _, key := range e2ePodKeys() {
		p := w.pods[key]
		name := "s-" + p.Namespace + "-" + p.Name
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: e2eVIP(key).String(), ClusterIPs: []string{e2eVIP(key).String()}}}
		slice := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: p.Namespace, Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
			AddressType: discovery.AddressTypeIPv4,
			Endpoints:   []discovery.Endpoint{{Addresses: []string{p.Status.PodIP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(p.Spec.NodeName)}},
		}
		for _, port := range e2ePorts {
			for _, proto := range e2eProtocols {
				pn := fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
				svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: pn, Protocol: proto, Port: port})
				slice.Ports = append(slice.Ports, discovery.EndpointPort{Name: ptr.To(pn), Protocol: ptr.To(proto), Port: ptr.To(port)})
			}
		}
		svcs = append(svcs, svc)
		slices = append(slices, slice)
	}
	return svcs, slices
}

func newModelCluster(nodes int) *modelCluster {
	m := &modelCluster{w: newE2EWorld(nodes), prev: &e2eWorld{namespaces: map[string]*corev1.Namespace{}, pods: map[string]*corev1.Pod{},
		policies: map[types.NamespacedName]*networkingv1.NetworkPolicy{}}}
	svcs, slices := e2eServices(m.w)
	for i := range nodes {
		e := newEngine(engineConfig{table: testTable, node: e2eNodeName(i), podCIDR: e2ePodCIDR(i), gateway: e2eGateway(i), dns: e2eGateway(i)})
		m.engines = append(m.engines, &incremental{e: e, frags: map[owner]*nft.Fragment{}})
		m.proxies = append(m.proxies, proxy.Build(&proxy.BuildConfig{Table: "havre0", Shards: 2, NodeName: e2eNodeName(i), NodeIPs: []netip.Addr{e2eNodeIP(i)},
			ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}}, svcs, slices).Tables())
	}
	m.tracers = make([]*nft.Tracer, nodes)
	return m
}

// propagate gives the engines what changed in the world since the last call, as informers
// would, and rebuilds what each change marked.
func (m *modelCluster) propagate() {
	for _, in := range m.engines {
		e := in.e
		for name, ns := range m.w.namespaces {
			if m.prev.namespaces[name] != ns {
				e.setNamespace(name, ns)
			}
		}
		for k, np := range m.w.policies {
			if m.prev.policies[k] != np {
				e.setPolicy(k, np)
			}
		}
		for k := range m.prev.policies {
			if m.w.policies[k] == nil {
				e.setPolicy(k, nil)
			}
		}
		for key, p := range m.w.pods {
			if m.prev.pods[key] != p {
				e.setInformerPod(key, p)
			}
		}
		in.sync()
	}
	m.prev = &e2eWorld{namespaces: map[string]*corev1.Namespace{}, pods: map[string]*corev1.Pod{}, policies: map[types.NamespacedName]*networkingv1.NetworkPolicy{}}
	for k, v := range m.w.namespaces {
		m.prev.namespaces[k] = v
	}
	for k, v := range m.w.pods {
		m.prev.pods[k] = v
	}
	for k, v := range m.w.policies {
		m.prev.policies[k] = v
	}
	for i, in := range m.engines {
		t := nft.Table{Name: testTable}
		for _, o := range sortedOwners(ownersOf(in.frags)) {
			t.Frags = append(t.Frags, in.frags[o])
		}
		m.tracers[i] = nft.NewTracer(append(append([]nft.Table(nil), m.proxies[i]...), t), e2eNodeIP(i), e2eGateway(i))
	}
}

func toProto(p corev1.Protocol) nft.Proto {
	proto, _ := protoOf(&p)
	return proto
}

// reach says whether a connection from one pod to another gets through: the first packet
// crosses the source node (its proxy may DNAT a Service's address), then, when the
// destination is elsewhere, the destination node.
func (m *modelCluster) reach(t *testing.T, src, dst string, proto corev1.Protocol, port int32, viaService bool) bool {
	sp, dp := m.w.pods[src], m.w.pods[dst]
	sn, dn := e2eNode(src, m.w.nodes), e2eNode(dst, m.w.nodes)
	srcIP, dstIP := netip.MustParseAddr(sp.Status.PodIP), netip.MustParseAddr(dp.Status.PodIP)
	to := dstIP
	if viaService {
		to = e2eVIP(dst)
	}
	res := m.tracers[sn].Trace(nft.TracePacket{Src: srcIP, Dst: to, Proto: toProto(proto), Port: uint16(port)})
	if viaService && res.Verdict == "ACCEPT" && (len(res.Endpoints) != 1 || res.Endpoints[0] != netip.AddrPortFrom(dstIP, uint16(port)).String()) {
		t.Fatalf("%s → %s's Service (%s:%d/%s): DNAT to %v, want %s:%d", src, dst, to, port, proto, res.Endpoints, dstIP, port)
	}
	if res.Verdict != "ACCEPT" {
		return false
	}
	if sn == dn {
		return true
	}
	return m.tracers[dn].Trace(nft.TracePacket{Src: srcIP, Dst: dstIP, Proto: toProto(proto), Port: uint16(port)}).Verdict == "ACCEPT"
}

// verify checks the whole matrix against the oracle, and upstream's expectations.
func (m *modelCluster) verify(t *testing.T, step int, checks []e2eCheck) {
	t.Helper()
	keys := e2ePodKeys()
	for _, proto := range e2eProtocols {
		for _, port := range e2ePorts {
			got := map[[2]string]bool{}
			oracle := map[[2]string]bool{}
			bad := false
			for _, src := range keys {
				for _, dst := range keys {
					if src == dst {
						continue // upstream ignores loopback
					}
					k := [2]string{src, dst}
					direct := m.reach(t, src, dst, proto, port, false)
					svc := m.reach(t, src, dst, proto, port, true)
					if direct != svc {
						t.Errorf("step %d, %d/%s: %s → %s: %v to the pod, %v through its Service", step, port, proto, src, dst, direct, svc)
					}
					got[k] = direct
					oracle[k] = oracleAllows(m.w, m.w.pods[src], m.w.pods[dst], proto, port)
					bad = bad || got[k] != oracle[k]
				}
			}
			if bad {
				t.Errorf("step %d, port %d/%s: the tables disagree with the API's semantics:\n%s", step, port, proto, truthTable(got, oracle))
			}
			for _, c := range checks {
				if c.port != port || c.proto != proto {
					continue
				}
				want := c.want(m.w).expected
				wrong := false
				for k, v := range got {
					wrong = wrong || v != want[k]
				}
				if wrong {
					t.Errorf("step %d, port %d/%s: upstream's expectation not met:\n%s", step, port, proto, truthTable(got, want))
				}
			}
		}
	}
}

// truthTable prints a matrix as upstream does: rows are sources, columns destinations;
// "." connected, "X" not, "*" marks a cell that differs from want.
func truthTable(got, want map[[2]string]bool) string {
	var b strings.Builder
	keys := e2ePodKeys()
	b.WriteString("      ")
	for _, d := range keys {
		fmt.Fprintf(&b, "%-4s", d)
	}
	b.WriteByte('\n')
	for _, s := range keys {
		fmt.Fprintf(&b, "%-6s", s)
		for _, d := range keys {
			if s == d {
				b.WriteString("-   ")
				continue
			}
			k := [2]string{s, d}
			c := "."
			if !got[k] {
				c = "X"
			}
			if got[k] != want[k] {
				c += "*"
			}
			fmt.Fprintf(&b, "%-4s", c)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
