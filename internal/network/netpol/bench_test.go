package netpol

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/havre/havre/internal/network/netnstest"
	"github.com/havre/havre/internal/network/nft"
)

// The benchmark cluster: 50 namespaces (team=t0..t4) of 100 pods each (app=g<j%5>,
// role=client for odd j, server for even; a container port "http" 8080/TCP), 5,000 pods;
// 20 policies per namespace, 1,000. Pods j < 5 of every namespace are on this node (250
// pods, in 10.42.0.0/24), the others on 19 other nodes. Policy m of a namespace selects
// app=g<m%5>: one pod of this node and 19 elsewhere, so that every policy has chains in
// this node's table and each of this node's pods is selected by 4 policies. Each policy
// allows ingress from its namespace's clients on 8080/TCP and 8081/UDP and from the
// namespaces of team t<m%5> on the named port http; egress to its namespace's pods on
// 8080/TCP and 8081/UDP, to the servers of team t<(m+1)%5> on 5432/TCP, to 10.0.0.0/8 but
// the pod network, and DNS anywhere.
const (
	benchNamespaces   = 50
	benchPodsPerNS    = 100
	benchLocalPerNS   = 5
	benchPolicesPerNS = 20
)

func benchPodIP(ns, j int) netip.Addr {
	if j < benchLocalPerNS {
		return netip.AddrFrom4([4]byte{10, 42, 0, byte(2 + ns*benchLocalPerNS + j)})
	}
	r := ns*(benchPodsPerNS-benchLocalPerNS) + j - benchLocalPerNS
	return netip.AddrFrom4([4]byte{10, 42, byte(1 + r/250), byte(2 + r%250)})
}

func benchPod(ns, j int) *corev1.Pod {
	node := testNode
	if j >= benchLocalPerNS {
		node = fmt.Sprintf("node-%d", 1+(ns*(benchPodsPerNS-benchLocalPerNS)+j-benchLocalPerNS)/250)
	}
	role := "server"
	if j%2 == 1 {
		role = "client"
	}
	return testPod(fmt.Sprintf("ns-%02d", ns), fmt.Sprintf("pod-%03d", j), node, benchPodIP(ns, j).String(),
		fmt.Sprintf("app=g%d,role=%s", j%5, role), containerPort("http", corev1.ProtocolTCP, 8080))
}

func benchPolicy(ns, m int, clientRole string) *networkingv1.NetworkPolicy {
	name := fmt.Sprintf("ns-%02d", ns)
	return netpol(name, fmt.Sprintf("policy-%02d", m), fmt.Sprintf("app=g%d", m%5),
		types_(typeIngress, typeEgress),
		ingressRule(peers(podPeer("role="+clientRole)), port(corev1.ProtocolTCP, 8080), port(corev1.ProtocolUDP, 8081)),
		ingressRule(peers(nsPeer(fmt.Sprintf("team=t%d", m%5))), namedPortOf("", "http")),
		egressRule(peers(podPeer("")), port(corev1.ProtocolTCP, 8080), port(corev1.ProtocolUDP, 8081)),
		egressRule(peers(nsPodPeer(fmt.Sprintf("team=t%d", (m+1)%5), "role=server")), port(corev1.ProtocolTCP, 5432)),
		egressRule(peers(blockPeer("10.0.0.0/8", "10.42.0.0/16"))),
		egressRule(nil, port(corev1.ProtocolUDP, 53)),
	)
}

func benchObjects() []runtime.Object {
	var objs []runtime.Object
	for ns := range benchNamespaces {
		objs = append(objs, namespace(fmt.Sprintf("ns-%02d", ns), "team", fmt.Sprintf("t%d", ns%5)))
		for j := range benchPodsPerNS {
			objs = append(objs, benchPod(ns, j))
		}
		for m := range benchPolicesPerNS {
			objs = append(objs, benchPolicy(ns, m, "client"))
		}
	}
	return objs
}

// cpuTime is the process's CPU time so far, user and system (the kernel's work in sendmsg
// included): on a shared machine it varies less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}

// BenchmarkPolicyChange: with 5,000 pods and 1,000 policies (every one with chains in this
// node's table), one policy changes in the API: its first ingress rule's peers alternate
// between the namespace's clients and its servers (a peer set made and one removed, the
// policy's chain rewritten). Measured from the API write to the commit of the new rules
// (watch event, informer, handler, engine, build, diff, netlink transaction), in a netns;
// reports the p50 and p99 of the samples and the CPU time per change. Also reports the cold
// start (informers synced to the first commit).
func BenchmarkPolicyChange(b *testing.B) {
	ns, _ := netnstest.New(b)
	client := fake.NewClientset(benchObjects()...)
	start := time.Now()
	h := startPolicer(b, int(ns), client, testConfig())
	cold := time.Since(start)
	b.Cleanup(func() { _ = cleanup(testTable, int(ns)) })
	ctx := context.Background()
	var samples []time.Duration
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		role := "server"
		if i%2 == 1 {
			role = "client"
		}
		i++
		np := benchPolicy(0, 0, role)
		marked := h.p.nextEvent()
		t0 := time.Now()
		if _, err := client.NetworkingV1().NetworkPolicies(np.Namespace).Update(ctx, np, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-marked:
		case <-time.After(time.Minute):
			b.Fatal("the policy change did not reach the policer")
		}
		h.p.awaitApplied(b)
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(percentile(samples, 0.5), "p50-ms")
	b.ReportMetric(percentile(samples, 0.99), "p99-ms")
	b.ReportMetric(float64(cold.Milliseconds()), "cold-start-ms")
}

// BenchmarkPodLabelChange: the same cluster; a remote pod's labels alternate between client
// and server (it leaves one namespace's client peer set for its server set, and back): an
// element change. API write to commit.
func BenchmarkPodLabelChange(b *testing.B) {
	ns, _ := netnstest.New(b)
	client := fake.NewClientset(benchObjects()...)
	h := startPolicer(b, int(ns), client, testConfig())
	b.Cleanup(func() { _ = cleanup(testTable, int(ns)) })
	ctx := context.Background()
	pod := benchPod(0, 51)
	var samples []time.Duration
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		pod = pod.DeepCopy()
		pod.Labels["role"] = []string{"server", "client"}[i%2]
		i++
		marked := h.p.nextEvent()
		t0 := time.Now()
		if _, err := client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-marked:
		case <-time.After(time.Minute):
			b.Fatal("the pod change did not reach the policer")
		}
		h.p.awaitApplied(b)
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(percentile(samples, 0.5), "p50-ms")
	b.ReportMetric(percentile(samples, 0.99), "p99-ms")
}

// BenchmarkPodStarting: the same cluster; the agent tells the policer of a new pod of this
// node (selected by 4 policies; named ports, peer sets): PodStarting's own time, which a
// pod's start waits for.
func BenchmarkPodStarting(b *testing.B) {
	ns, _ := netnstest.New(b)
	client := fake.NewClientset(benchObjects()...)
	h := startPolicer(b, int(ns), client, testConfig())
	b.Cleanup(func() { _ = cleanup(testTable, int(ns)) })
	ctx := context.Background()
	var samples []time.Duration
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		p := benchPod(i%benchNamespaces, 2)
		p.Name = fmt.Sprintf("new-%d", i)
		p.UID = types.UID(fmt.Sprintf("new-%d", i))
		p.Status.PodIP, p.Status.PodIPs = "", nil
		ip := netip.AddrFrom4([4]byte{10, 42, 0, byte(252 + i%2)})
		i++
		t0 := time.Now()
		if err := h.p.PodStarting(ctx, p, []netip.Addr{ip}); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(percentile(samples, 0.5), "p50-ms")
	b.ReportMetric(percentile(samples, 0.99), "p99-ms")
}

// BenchmarkFirstPacket: what the policies add to the first packet of a connection between two
// pods on a bridge, in a node whose table holds the benchmark cluster's 1,000 policies (the
// client, pod 1 of ns-00, and the server, pod 0, are selected by 4 each; their first allowing
// rules are in the first policy tried). With "selected-by=100", 96 more policies select the
// server, each tried (and not allowing) before those that allow. Three twin nodes: one with
// the table ("policies"), one with the table but no policy ("dispatch": the pods classified,
// nothing selects them), one without ("none"; a one-rule table there loads conntrack, as the
// service proxy's tables do on a real node).
//
//   - tcp-*-µs: median TCP connect (SYN to accept, then RST) per node; the dials take turns.
//     Noisy (a connect is ~100 µs of two threads' scheduling): see the UDP figures.
//   - udp-*-µs: per datagram, sending 1,000 back-to-back on one socket to a server that never
//     answers: conntrack keeps the flow "new", so every datagram is checked against the
//     policies as a first packet would be, in the sender's system call (veth and bridge
//     deliver in its softirq). udp-added-µs is policies minus none; udp-denied-added-µs the
//     same for a port no policy allows (every policy of the client tried, then dropped).
func BenchmarkFirstPacket(b *testing.B) {
	for _, extra := range []int{0, 96} {
		b.Run(fmt.Sprintf("selected-by=%d", 4+extra), func(b *testing.B) {
			objs := benchObjects()
			for k := range extra {
				objs = append(objs, netpol("ns-00", fmt.Sprintf("aaa-%03d", k), "app=g0", types_(typeIngress),
					ingressRule(peers(podPeer("role=nobody")), port(corev1.ProtocolTCP, 8080), port(corev1.ProtocolUDP, 8081))))
			}
			var noPolicies []runtime.Object
			for _, o := range objs {
				if _, ok := o.(*networkingv1.NetworkPolicy); !ok {
					noPolicies = append(noPolicies, o)
				}
			}
			server, clientPod := benchPod(0, 0), benchPod(0, 1)
			names := []string{"policies", "dispatch", "none"}
			type node struct {
				w      *netnstest.Worker
				server netip.Addr
				udp    net.Conn // to 8081 (allowed)
				denied net.Conn // to 8082 (no policy allows it)
			}
			var nodes []*node
			for i := range names {
				tb := newTestbed(b)
				s := tb.addPod("server", benchPodIP(0, 0))
				s.serve(b, 8080)
				drainUDP(b, s, 8081, 8082)
				c := tb.addPod("client", benchPodIP(0, 1))
				switch i {
				case 0, 1:
					world := objs
					if i == 1 {
						world = noPolicies
					}
					h := startPolicer(b, int(tb.node), fake.NewClientset(world...), testConfig())
					h.startPods(server, clientPod)
					b.Cleanup(func() { h.stop(); _ = cleanup(testTable, int(tb.node)) })
				default:
					conntrackOnly(b, tb)
				}
				n := &node{w: netnstest.NewWorker(b, c.ns), server: s.ip}
				n.w.Run(func() {
					var err error
					if n.udp, err = net.Dial("udp4", netip.AddrPortFrom(s.ip, 8081).String()); err != nil {
						b.Fatal(err)
					}
					if n.denied, err = net.Dial("udp4", netip.AddrPortFrom(s.ip, 8082).String()); err != nil {
						b.Fatal(err)
					}
				})
				b.Cleanup(func() { n.udp.Close(); n.denied.Close() })
				nodes = append(nodes, n)
			}
			tcp := make([][]time.Duration, len(nodes))
			udp := make([][]time.Duration, len(nodes))
			denied := make([][]time.Duration, len(nodes))
			d := net.Dialer{Timeout: 5 * time.Second}
			msg := []byte("x")
			burst := func(c net.Conn) (time.Duration, error) {
				t0 := time.Now()
				for range 1000 {
					if _, err := c.Write(msg); err != nil {
						return 0, err
					}
				}
				return time.Since(t0) / 1000, nil
			}
			iter := 0
			for b.Loop() {
				for j := range nodes {
					i := (iter + j) % len(nodes)
					n := nodes[i]
					var err error
					n.w.Run(func() {
						t0 := time.Now()
						var c net.Conn
						if c, err = d.Dial("tcp4", netip.AddrPortFrom(n.server, 8080).String()); err != nil {
							return
						}
						tcp[i] = append(tcp[i], time.Since(t0))
						_ = c.(*net.TCPConn).SetLinger(0)
						c.Close()
						var per time.Duration
						if per, err = burst(n.udp); err != nil {
							return
						}
						udp[i] = append(udp[i], per)
						if per, err = burst(n.denied); err != nil {
							return
						}
						denied[i] = append(denied[i], per)
					})
					if err != nil {
						b.Fatalf("%s: %v", names[i], err)
					}
				}
				iter++
			}
			for i, name := range names {
				b.ReportMetric(median(tcp[i]), "tcp-"+name+"-µs")
				b.ReportMetric(median(udp[i]), "udp-"+name+"-µs")
			}
			b.ReportMetric(median(tcp[0])-median(tcp[2]), "tcp-added-µs")
			b.ReportMetric(median(udp[0])-median(udp[2]), "udp-added-µs")
			b.ReportMetric(median(udp[1])-median(udp[2]), "udp-dispatch-added-µs")
			b.ReportMetric(median(denied[0])-median(denied[2]), "udp-denied-added-µs")
		})
	}
}

// drainUDP reads and drops the datagrams sent to these ports of a pod: it never answers.
func drainUDP(b testing.TB, p *podNS, ports ...int) {
	b.Helper()
	err := netnstest.Do(p.ns, func() error {
		for _, port := range ports {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
			if err != nil {
				return err
			}
			b.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 64)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						return
					}
				}
			}()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// conntrackOnly programs a one-rule table in the testbed's node so that conntrack runs
// there, as on a node with the service proxy's tables.
func conntrackOnly(b testing.TB, tb *testbed) {
	b.Helper()
	conn, err := nft.Open(int(tb.node), "table ip ct-only")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	f := &nft.Fragment{Chains: []*nft.Chain{{Name: "forward", Base: &nft.Hook{Type: "filter", Hook: "forward", Priority: 0},
		Rules: []nft.Rule{{Match: []nft.Match{nft.MatchCtEstablished{}}, Stmt: nft.StmtVerdict{Kind: nft.VerdictAccept}}}}}}
	p, err := nft.Reconcile(nil, []*nft.Fragment{f})
	if err != nil {
		b.Fatal(err)
	}
	tx := conn.Begin()
	if err := tx.Queue("ct-only", p, nil, true); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds()) / 1000
}
