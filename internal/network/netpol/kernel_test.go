package netpol

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/netnstest"
	"github.com/havre/havre/internal/network/nft"
	"github.com/havre/havre/internal/network/proxy"
)

// kprobe is a connection to try in the testbed: from a pod (or "node": the node itself) to
// a pod, or an address ("10.43.0.20@x/a": answered by pod x/a; a bare address: by the
// node), and whether it must get through.
type kprobe struct {
	from, to string
	proto    string // tcp or udp
	port     uint16
	want     bool
}

// run tries the probes at once and reports those that did not do what they should.
func (tb *testbed) run(t *testing.T, what string, probes ...kprobe) {
	t.Helper()
	var mu sync.Mutex
	var wrong []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 48)
	for _, pr := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ns := tb.node
			if pr.from != "node" {
				ns = tb.pods[pr.from].ns
			}
			var addr netip.Addr
			answer := "node"
			if p := tb.pods[pr.to]; p != nil {
				addr, answer = p.ip, p.key
			} else if a, by, ok := strings.Cut(pr.to, "@"); ok {
				addr, answer = netip.MustParseAddr(a), by
			} else {
				addr = netip.MustParseAddr(pr.to)
			}
			if got := probe(ns, pr.proto, netip.AddrPortFrom(addr, pr.port), answer, pr.want); got != pr.want {
				mu.Lock()
				wrong = append(wrong, fmt.Sprintf("%s → %s %s/%d: got through %v, want %v", pr.from, pr.to, pr.proto, pr.port, got, pr.want))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Errorf("%s:\n  %s", what, strings.Join(wrong, "\n  "))
	}
}

// both is a probe over TCP and UDP.
func both(from, to string, port uint16, want bool) []kprobe {
	return []kprobe{{from, to, "tcp", port, want}, {from, to, "udp", port, want}}
}

func flat(groups ...[]kprobe) []kprobe {
	var out []kprobe
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// kernelWorld is three pods on the testbed: x/a (app=web, port "http" 80/TCP), x/b
// (app=client), y/a (app=client); namespaces x (team=blue), y (team=red). The pods are in
// the API without addresses: the policer learns them from PodStarting, as from the agent.
func kernelWorld(t *testing.T) (*testbed, *harness, map[string]*corev1.Pod) {
	tb := newTestbed(t)
	pods := map[string]*corev1.Pod{
		"x/a": testPod("x", "a", testNode, "", "app=web", containerPort("http", corev1.ProtocolTCP, 80)),
		"x/b": testPod("x", "b", testNode, "", "app=client"),
		"y/a": testPod("y", "a", testNode, "", "app=client"),
	}
	ips := map[string]string{"x/a": "10.42.0.10", "x/b": "10.42.0.11", "y/a": "10.42.0.12"}
	objs := []runtime.Object{namespace("x", "team", "blue"), namespace("y", "team", "red")}
	for key, p := range pods {
		objs = append(objs, p)
		pp := tb.addPod(key, netip.MustParseAddr(ips[key]))
		pp.serve(t, 80, 81)
	}
	h := startPolicer(t, int(tb.node), fake.NewClientset(objs...), testConfig())
	var started []*corev1.Pod
	for key, p := range pods {
		s := p.DeepCopy()
		s.Status.PodIP = ips[key]
		started = append(started, s)
	}
	h.startPods(started...)
	return tb, h, pods
}

func (h *harness) createPolicy(t *testing.T, np *networkingv1.NetworkPolicy) {
	t.Helper()
	if _, err := h.client.NetworkingV1().NetworkPolicies(np.Namespace).Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.settle(present(h.p.policies, np.Namespace+"/"+np.Name))
}

func (h *harness) deletePolicies(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	list, err := h.client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var waits []storeWait
	for _, np := range list.Items {
		if err := h.client.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waits = append(waits, absent(h.p.policies, np.Namespace+"/"+np.Name))
	}
	h.settle(waits...)
}

func (h *harness) setPodLabels(t *testing.T, ns, name string, l map[string]string) {
	t.Helper()
	ctx := context.Background()
	p, err := h.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels = l
	if _, err := h.client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.settle(labelled(h.p.pods, ns+"/"+name, l))
}

func (h *harness) setNamespaceLabels(t *testing.T, name string, l map[string]string) {
	t.Helper()
	ctx := context.Background()
	ns, err := h.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = l
	if _, err := h.client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.settle(labelled(h.p.namespaces, name, l))
}

// TestKernelEnforces runs the policer against the real kernel: pods in network namespaces
// on a bridge, policies, pod and namespace labels changed through a fake API, real TCP and
// UDP connections allowed and denied as the policies say.
func TestKernelEnforces(t *testing.T) {
	tb, h, _ := kernelWorld(t)
	gw := testGateway.String()
	// The node's DNS server, for the exemption.
	if err := netnstest.Do(tb.node, func() error {
		for _, proto := range []string{"udp4", "tcp4"} {
			if proto == "udp4" {
				pc, err := net.ListenPacket(proto, gw+":53")
				if err != nil {
					return err
				}
				t.Cleanup(func() { pc.Close() })
				go func() {
					buf := make([]byte, 64)
					for {
						_, from, err := pc.ReadFrom(buf)
						if err != nil {
							return
						}
						_, _ = pc.WriteTo([]byte("node"), from)
					}
				}()
				continue
			}
			ln, err := net.Listen(proto, gw+":53")
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = c.Write([]byte("node"))
					c.Close()
				}
			}()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	tb.run(t, "no policy: everything flows", flat(both("x/a", "x/b", 80, true), both("x/b", "x/a", 80, true), both("y/a", "x/a", 81, true), both("x/a", "y/a", 80, true))...)

	h.createPolicy(t, netpol("x", "deny", "", denyIngress()))
	tb.run(t, "default deny ingress in x", flat(
		both("y/a", "x/a", 80, false), both("x/b", "x/a", 80, false), both("y/a", "x/b", 81, false),
		both("x/a", "y/a", 80, true), // egress is not isolated, and the replies come back
		[]kprobe{{"node", "x/a", "tcp", 80, true}, {"node", "x/b", "udp", 81, true}}, // the node (kubelet probes) still reaches its pods
	)...)

	h.createPolicy(t, netpol("x", "web", "app=web", ingressRule(peers(nsPeer("team=red")), port(corev1.ProtocolTCP, 80))))
	tb.run(t, "allow x/a from team=red on TCP 80 (additive with the deny)", []kprobe{
		{"y/a", "x/a", "tcp", 80, true}, {"y/a", "x/a", "tcp", 81, false}, {"y/a", "x/a", "udp", 80, false},
		{"x/b", "x/a", "tcp", 80, false},
	}...)

	h.setNamespaceLabels(t, "y", map[string]string{"team": "green", corev1.LabelMetadataName: "y"})
	tb.run(t, "namespace y relabelled: no longer team=red", []kprobe{{"y/a", "x/a", "tcp", 80, false}}...)
	h.setNamespaceLabels(t, "y", map[string]string{"team": "red", corev1.LabelMetadataName: "y"})
	tb.run(t, "namespace y team=red again", []kprobe{{"y/a", "x/a", "tcp", 80, true}}...)

	h.createPolicy(t, netpol("x", "from-clients", "app=web", ingressRule(peers(podPeer("app=client")))))
	tb.run(t, "allow x/a from x's clients", []kprobe{{"x/b", "x/a", "tcp", 81, true}, {"x/b", "x/a", "udp", 80, true}}...)
	h.setPodLabels(t, "x", "b", map[string]string{"app": "other"})
	tb.run(t, "x/b relabelled: no longer a client", []kprobe{{"x/b", "x/a", "tcp", 81, false}, {"x/b", "x/a", "udp", 80, false}}...)
	h.deletePolicies(t)

	h.createPolicy(t, netpol("x", "named", "", ingressRule(nil, namedPortOf("", "http"))))
	tb.run(t, "named port http of x/a (80/TCP)", []kprobe{
		{"y/a", "x/a", "tcp", 80, true}, {"y/a", "x/a", "tcp", 81, false}, {"y/a", "x/a", "udp", 80, false},
		{"y/a", "x/b", "tcp", 80, false}, // x/b has no port named http
	}...)
	h.deletePolicies(t)

	h.createPolicy(t, netpol("x", "out", "app=other", types_(typeEgress), egressRule(peers(blockPeer("10.42.0.0/24", "10.42.0.12/32")))))
	tb.run(t, "egress of x/b to an ipBlock with except; DNS to the node stays allowed", flat(
		both("x/b", "x/a", 80, true), both("x/b", "y/a", 80, false),
		[]kprobe{{"x/b", gw, "udp", 53, true}, {"x/b", gw, "tcp", 53, true}},
	)...)
	h.createPolicy(t, netpol("x", "a-out", "app=web", types_(typeEgress)))
	tb.run(t, "x/a denies all egress: replies to connections it accepts still leave", flat(
		both("y/a", "x/a", 80, true), both("x/a", "y/a", 80, false), []kprobe{{"x/a", gw, "udp", 53, true}},
	)...)

	out := tb.nftJSON(t, testTable)
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output does not parse: %v\n%s", err, out)
	}
	chains := map[string]bool{}
	for _, o := range doc.Nftables {
		if raw, ok := o["chain"]; ok {
			var c struct{ Name string }
			_ = json.Unmarshal(raw, &c)
			chains[c.Name] = true
		}
	}
	for _, c := range []string{chainEgressForward, chainEgressInput, chainIngressForward, policyChain(egress, typesNN("x", "out"))} {
		if !chains[c] {
			t.Errorf("nft lists no chain %s: %v", c, chains)
		}
	}

	h.deletePolicies(t)
	tb.run(t, "policies deleted: everything flows", flat(both("y/a", "x/a", 80, true), both("x/a", "y/a", 81, true), both("x/b", "y/a", 80, true))...)
}

// TestKernelNoWindow: a pod's addresses are dropped, to and from, until the agent has told
// the policer (PodStarting returned): with a default-deny policy, such a pod is never
// reachable.
func TestKernelNoWindow(t *testing.T) {
	tb, h, _ := kernelWorld(t)
	h.createPolicy(t, netpol("x", "deny", "", denyIngress()))

	// Pods whose sandboxes have addresses, but that the agent has not told of yet.
	xn := tb.addPod("x/new", netip.MustParseAddr("10.42.0.20"))
	xn.serve(t, 80)
	yn := tb.addPod("y/new", netip.MustParseAddr("10.42.0.21"))
	yn.serve(t, 80)
	newX := testPod("x", "new", testNode, "", "app=web")
	newY := testPod("y", "new", testNode, "", "app=web")
	for _, p := range []*corev1.Pod{newX, newY} {
		if _, err := h.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.settle(present(h.p.pods, p.Namespace+"/"+p.Name))
	}
	tb.run(t, "not yet told: dropped both ways, policy or not", flat(
		both("y/a", "x/new", 80, false), both("x/new", "y/a", 80, false),
		both("y/a", "y/new", 80, false), both("y/new", "x/a", 80, false),
	)...)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []*corev1.Pod{newX, newY} {
		ip := tb.pods[p.Namespace+"/"+p.Name].ip
		if err := h.p.PodStarting(ctx, p, []netip.Addr{ip}); err != nil {
			t.Fatal(err)
		}
	}
	tb.run(t, "told: the default deny holds from the first packet; the rest flows", flat(
		both("y/a", "x/new", 80, false), both("x/new", "y/a", 80, true),
		both("x/a", "y/new", 80, true), both("y/new", "x/b", 80, false),
	)...)
	// Told again, nothing changed: at once.
	if err := h.p.PodStarting(ctx, newX, []netip.Addr{xn.ip}); err != nil {
		t.Fatal(err)
	}
}

// TestPodStartingWaits: PodStarting waits for Run's first sync, and says what went wrong
// when its context ends first.
func TestPodStartingWaits(t *testing.T) {
	tb := newTestbed(t)
	p, err := New(testConfig(), informersFor(fake.NewClientset()))
	if err != nil {
		t.Fatal(err)
	}
	p.nsFD = int(tb.node)
	pod := testPod("x", "a", testNode, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = p.PodStarting(ctx, pod, []netip.Addr{netip.MustParseAddr("10.42.0.10")})
	if err == nil || !strings.Contains(err.Error(), "is the Policer running?") || !strings.Contains(err.Error(), "x/a") {
		t.Fatalf("PodStarting without Run: %v", err)
	}

	client := fake.NewClientset()
	factory := informersFor(client)
	p, err = New(testConfig(), factory)
	if err != nil {
		t.Fatal(err)
	}
	p.nsFD = int(tb.node)
	done := make(chan error, 1)
	go func() {
		done <- p.PodStarting(context.Background(), pod, []netip.Addr{netip.MustParseAddr("10.42.0.10")})
	}()
	select {
	case err := <-done:
		t.Fatalf("PodStarting returned before Run: %v", err)
	default:
	}
	h := &harness{t: t, client: client, p: p, factory: factory, done: make(chan error, 1)}
	runCtx, stop := context.WithCancel(context.Background())
	h.cancel = stop
	factory.Start(runCtx.Done())
	go func() { h.done <- p.Run(runCtx) }()
	t.Cleanup(h.stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("PodStarting did not return after Run's first sync")
	}
	p.mu.Lock()
	applied := p.applied
	p.mu.Unlock()
	if applied < 1 {
		t.Errorf("PodStarting returned before its addresses were committed (applied %d)", applied)
	}
}

// TestKernelServiceDNAT: with the service proxy's tables in the same node, a connection to
// a Service's address meets the policies of the pod it is translated to, with its port.
func TestKernelServiceDNAT(t *testing.T) {
	tb, h, _ := kernelWorld(t)
	vip := netip.MustParseAddr("10.43.0.20")
	toVIP := vip.String() + "@x/a"
	svc, slice := e2eServiceFor("x", "web", vip, "10.42.0.10", 8080, 80)
	m := proxy.Build(&proxy.BuildConfig{Table: "havre0", Shards: 2, NodeName: testNode, NodeIPs: []netip.Addr{testNodeIP},
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}},
		[]*corev1.Service{svc}, []*discovery.EndpointSlice{slice})
	conn, err := nft.Open(int(tb.node), "the proxy's tables")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx := conn.Begin()
	for _, tab := range m.Tables() {
		p, err := nft.Reconcile(nil, tab.Frags)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Queue(tab.Name, p, nft.Defs(tab.Frags...), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("program the proxy's tables: %v", err)
	}
	tb.run(t, "through the Service, no policy", []kprobe{{"y/a", toVIP, "tcp", 8080, true}}...)

	h.createPolicy(t, netpol("x", "web", "app=web", ingressRule(peers(nsPeer("team=red")), port(corev1.ProtocolTCP, 80))))
	tb.run(t, "ingress of x/a allows team=red on 80 (the pod's port)", []kprobe{
		{"y/a", toVIP, "tcp", 8080, true}, {"x/b", toVIP, "tcp", 8080, false},
	}...)
	h.deletePolicies(t)
	h.createPolicy(t, netpol("x", "web", "app=web", ingressRule(nil, port(corev1.ProtocolTCP, 8080))))
	tb.run(t, "ingress of x/a allows 8080 only (the Service's port): denied", []kprobe{{"y/a", toVIP, "tcp", 8080, false}}...)
	h.deletePolicies(t)
	h.createPolicy(t, netpol("y", "out", "", types_(typeEgress), egressRule(peers(nsPodPeer("team=blue", "app=web")), port(corev1.ProtocolTCP, 80))))
	tb.run(t, "egress of y/a to x/a's pod and port, through the Service", []kprobe{
		{"y/a", toVIP, "tcp", 8080, true}, {"y/a", "x/b", "tcp", 80, false},
	}...)
}

// TestKernelRestartAndCleanup: the table stays when the policer stops (policies stay
// enforced), a new policer reconciles it to what a fresh start programs, and Cleanup removes
// it.
func TestKernelRestartAndCleanup(t *testing.T) {
	tb, h, _ := kernelWorld(t)
	h.createPolicy(t, netpol("x", "deny", "", denyIngress()))
	h.createPolicy(t, netpol("x", "web", "app=web", ingressRule(peers(nsPeer("team=red")))))
	before := normalizedTable(t, tb.nftJSON(t, testTable))
	h.stop()
	tb.run(t, "the policer stopped: still enforced", flat(both("y/a", "x/a", 80, true), both("x/b", "x/a", 80, false))...)

	// A new policer, the same objects (the pods now with their addresses in their status).
	ctx := context.Background()
	for key, ip := range map[string]string{"x/a": "10.42.0.10", "x/b": "10.42.0.11", "y/a": "10.42.0.12"} {
		ns, name, _ := strings.Cut(key, "/")
		p, err := h.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		if _, err := h.client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h2 := startPolicer(t, int(tb.node), h.client, testConfig())
	if after := normalizedTable(t, tb.nftJSON(t, testTable)); after != before {
		t.Errorf("after a restart the table differs:\n%s\nbefore:\n%s", after, before)
	}
	tb.run(t, "after the restart", flat(both("y/a", "x/a", 80, true), both("x/b", "x/a", 80, false))...)
	h2.stop()

	if err := cleanup(testTable, int(tb.node)); err != nil {
		t.Fatal(err)
	}
	if err := cleanup(testTable, int(tb.node)); err != nil {
		t.Errorf("a second Cleanup: %v", err)
	}
	conn, err := nft.Open(int(tb.node), "check")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.ReadTables(func(n string) bool { return n == testTable }, func(string, string) (nft.KeyKind, bool) { return 0, false })
	if err != nil || len(st) != 0 {
		t.Errorf("the table is still there after Cleanup: %v, %v", st, err)
	}
	tb.run(t, "no table: everything flows", flat(both("x/b", "x/a", 80, true))...)
}

// normalizedTable is nft's listing of a table with its lines sorted (element and rule
// handles, and the order sets and chains were created in, do not count).
func normalizedTable(t *testing.T, out []byte) string {
	t.Helper()
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output does not parse: %v", err)
	}
	var lines []string
	for _, o := range doc.Nftables {
		for kind, v := range o {
			delete(v, "handle")
			if elems, ok := v["elem"].([]any); ok {
				var s []string
				for _, e := range elems {
					b, _ := json.Marshal(e)
					s = append(s, string(b))
				}
				sortStrings(s)
				v["elem"] = s
			}
			b, _ := json.Marshal(v)
			lines = append(lines, kind+" "+string(b))
		}
	}
	sortStrings(lines)
	return strings.Join(lines, "\n")
}

func typesNN(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func informersFor(c kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactory(c, 0)
}

func sortStrings(s []string) { sort.Strings(s) }

// e2eServiceFor is a ClusterIP Service with one TCP port and its one endpoint on this node.
func e2eServiceFor(ns, name string, vip netip.Addr, podIP string, port, targetPort int32) (*corev1.Service, *discovery.EndpointSlice) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: vip.String(), ClusterIPs: []string{vip.String()},
			Ports: []corev1.ServicePort{{Name: "p", Protocol: corev1.ProtocolTCP, Port: port}}}}
	slice := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{podIP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(testNode)}},
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(targetPort)}},
	}
	return svc, slice
}
