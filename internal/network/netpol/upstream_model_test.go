package netpol

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/netpol/netpolmodel"
	"github.com/havre/havre/internal/network/nft"
	"github.com/havre/havre/internal/network/proxy"
)

// TestUpstreamModel runs every case of upstream's NetworkPolicy e2e tests against the
// tables the engines build, with the tracer: the pods on one node, and spread over three
// nodes (a connection crosses the source node's table, then the destination node's). Every
// pair of pods, ports 80 and 81, TCP, UDP and SCTP, to the pod's address and through its
// Service (the proxy's tables, DNAT before the policies), after every step: the matrix must
// be what the API's semantics say (netpolmodel.Allows) and what upstream expects where it says.
func TestUpstreamModel(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		for _, c := range netpolmodel.Cases() {
			t.Run(fmt.Sprintf("nodes=%d/%s", nodes, c.FullName()), func(t *testing.T) {
				m := newModelCluster(nodes)
				for i, step := range c.Steps {
					step.Do(m.w)
					m.propagate()
					m.verify(t, i, step.Checks)
				}
			})
		}
	}
}

// modelCluster is nodes, each with an engine fed incrementally, the service proxy's tables
// and a tracer over both.
type modelCluster struct {
	nodes   int
	w       *netpolmodel.World
	engines []*incremental
	proxies [][]nft.Table
	tracers []*nft.Tracer
	prev    *netpolmodel.World // what was last given to the engines
}

// Where the model's pods run: with several nodes, pods are spread round robin; a pod's
// address is in its node's /24.

func e2eNode(key string, nodes int) int {
	return slices.Index(netpolmodel.PodKeys(), key) % nodes
}

func e2eNodeName(i int) string { return fmt.Sprintf("node-%d", i) }

func e2eAddr(key string, nodes int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 42, byte(e2eNode(key, nodes)), byte(10 + slices.Index(netpolmodel.PodKeys(), key))})
}

// e2eVIP is the ClusterIP of the pod's own Service (upstream probes through it).
func e2eVIP(key string) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 43, 0, byte(10 + slices.Index(netpolmodel.PodKeys(), key))})
}

func newE2EWorld(nodes int) *netpolmodel.World {
	return netpolmodel.NewWorld(func(key string) (string, string) {
		return e2eNodeName(e2eNode(key, nodes)), e2eAddr(key, nodes).String()
	})
}

func e2eNodeIP(i int) netip.Addr  { return netip.AddrFrom4([4]byte{100, 64, 0, byte(10 + i)}) }
func e2eGateway(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 42, byte(i), 1}) }
func e2ePodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i), 0}), 24)
}

// e2eServices is a Service per pod, on ports 80 and 81 of every protocol (upstream's).
func e2eServices(w *netpolmodel.World) ([]*corev1.Service, []*discovery.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discovery.EndpointSlice
	for _, key := range netpolmodel.PodKeys() {
		p := w.Pods[key]
		name := "s-" + p.Namespace + "-" + p.Name
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: e2eVIP(key).String(), ClusterIPs: []string{e2eVIP(key).String()}}}
		slice := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: p.Namespace, Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
			AddressType: discovery.AddressTypeIPv4,
			Endpoints:   []discovery.Endpoint{{Addresses: []string{p.Status.PodIP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(p.Spec.NodeName)}},
		}
		for _, port := range netpolmodel.Ports {
			for _, proto := range netpolmodel.Protocols {
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
	m := &modelCluster{nodes: nodes, w: newE2EWorld(nodes), prev: &netpolmodel.World{}}
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
		for name, ns := range m.w.Namespaces {
			if m.prev.Namespaces[name] != ns {
				e.setNamespace(name, ns)
			}
		}
		for k, np := range m.w.Policies {
			if m.prev.Policies[k] != np {
				e.setPolicy(k, np)
			}
		}
		for k := range m.prev.Policies {
			if m.w.Policies[k] == nil {
				e.setPolicy(k, nil)
			}
		}
		for key, p := range m.w.Pods {
			if m.prev.Pods[key] != p {
				e.setInformerPod(key, p)
			}
		}
		in.sync()
	}
	m.prev = m.w.Clone()
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
	sp, dp := m.w.Pods[src], m.w.Pods[dst]
	sn, dn := e2eNode(src, m.nodes), e2eNode(dst, m.nodes)
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
func (m *modelCluster) verify(t *testing.T, step int, checks []netpolmodel.Check) {
	t.Helper()
	keys := netpolmodel.PodKeys()
	for _, proto := range netpolmodel.Protocols {
		for _, port := range netpolmodel.Ports {
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
					oracle[k] = netpolmodel.Allows(m.w, m.w.Pods[src], m.w.Pods[dst], proto, port)
					bad = bad || got[k] != oracle[k]
				}
			}
			if bad {
				t.Errorf("step %d, port %d/%s: the tables disagree with the API's semantics:\n%s", step, port, proto, netpolmodel.TruthTable(got, oracle))
			}
			for _, c := range checks {
				if c.Port != port || c.Proto != proto {
					continue
				}
				want := c.Want(m.w).Expected
				wrong := false
				for k, v := range got {
					wrong = wrong || v != want[k]
				}
				if wrong {
					t.Errorf("step %d, port %d/%s: upstream's expectation not met:\n%s", step, port, proto, netpolmodel.TruthTable(got, want))
				}
			}
		}
	}
}
