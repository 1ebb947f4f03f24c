package network_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/havre/havre/test/framework"
)

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReadyToReachable measures how long a pod that became Ready
// takes to be reachable through its Service: the Service's only pod is
// replaced each round; the clock starts when the watch delivers the new
// pod Ready and stops when a connection to the ClusterIP from the node
// succeeds (polled every 2 ms). Each iteration is one round.
//
//	go test ./test/e2e/network/ -run '^$' -bench ReadyToReachable -benchtime=20x
func BenchmarkReadyToReachable(b *testing.B) {
	c := framework.StartCluster(b, 1)
	c.ImportImage(b, framework.BuildImage(b, "test/images/web", webImage))
	cs := c.Server.Clientset()
	ns := framework.NewNamespace(b, cs, "bench")
	bg := context.Background()
	svc, err := cs.CoreV1().Services(ns).Create(bg, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "one"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "one"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	n0 := c.Nodes[0]
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("one-%d", i)
		w, err := cs.CoreV1().Pods(ns).Watch(bg, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			b.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "one"}},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(0)), Containers: []corev1.Container{{
				Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever,
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(bg, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		var ready time.Time
		deadline := time.After(2 * time.Minute)
		for ready.IsZero() {
			select {
			case ev := <-w.ResultChan():
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified && podReady(p) {
					ready = time.Now()
				}
			case <-deadline:
				b.Fatalf("pod %s not Ready in 2 minutes", name)
			}
		}
		w.Stop()
		for {
			dctx, cancel := context.WithTimeout(bg, time.Second)
			conn, err := n0.DialContext(dctx, "tcp", addr)
			cancel()
			if err == nil {
				conn.Close()
				break
			}
			if time.Since(ready) > time.Minute {
				b.Fatalf("pod %s not reachable through %s a minute after Ready: %v", name, addr, err)
			}
			time.Sleep(2 * time.Millisecond) // polling interval of the measurement
		}
		lat = append(lat, time.Since(ready))
		if err := cs.CoreV1().Pods(ns).Delete(bg, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
			b.Fatal(err)
		}
		framework.Eventually(b, time.Minute, func() (bool, error) {
			_, err := cs.CoreV1().Pods(ns).Get(bg, name, metav1.GetOptions{})
			return err != nil, nil
		}, "pod %s gone", name)
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// BenchmarkServiceResolvable measures how long a new Service takes to be
// answered by cluster DNS: from the create call's return to the first A
// answer from 10.43.0.10, asked from the node every 2 ms. Each iteration
// is one Service.
//
//	go test ./test/e2e/network/ -run '^$' -bench ServiceResolvable -benchtime=100x
func BenchmarkServiceResolvable(b *testing.B) {
	c := framework.StartCluster(b, 1)
	cs := c.Server.Clientset()
	ns := framework.NewNamespace(b, cs, "bench")
	bg := context.Background()
	n0 := c.Nodes[0]
	// A socket that cluster DNS answers (one made before the node's proxy
	// programmed kube-dns would stay on its un-NATed conntrack entry).
	var conn net.Conn
	var co *dns.Conn
	framework.Eventually(b, time.Minute, func() (bool, error) {
		var err error
		if conn, err = n0.DialContext(bg, "udp", "10.43.0.10:53"); err != nil {
			return false, nil
		}
		co = &dns.Conn{Conn: conn}
		q := new(dns.Msg)
		q.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if err := co.WriteMsg(q); err == nil {
			if r, err := co.ReadMsg(); err == nil && len(r.Answer) > 0 {
				return true, nil
			}
		}
		conn.Close()
		return false, nil
	}, "cluster DNS answers the node")
	defer conn.Close()
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("s%d", i)
		q := new(dns.Msg)
		q.SetQuestion(name+"."+ns+".svc.cluster.local.", dns.TypeA)
		if _, err := cs.CoreV1().Services(ns).Create(bg, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		created := time.Now()
		for {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			q.Id = dns.Id()
			if err := co.WriteMsg(q); err != nil {
				b.Fatal(err)
			}
			r, err := co.ReadMsg()
			if err == nil && r.Id == q.Id && len(r.Answer) > 0 {
				break
			}
			if time.Since(created) > 30*time.Second {
				b.Fatalf("service %s not resolvable 30 s after creation", name)
			}
			time.Sleep(2 * time.Millisecond) // polling interval of the measurement
		}
		lat = append(lat, time.Since(created))
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
}

// BenchmarkAgentServicesRSS measures the memory the service proxy and
// cluster DNS add to a node agent: the RSS of a joined agent (n1; the
// server runs on n0) before and after 1,000 Services, each with an
// EndpointSlice of one endpoint (1,000 endpoints, standing for 1,000 pods),
// once the node's proxy has programmed them.
//
//	go test ./test/e2e/network/ -run '^$' -bench AgentServicesRSS -benchtime=1x
func BenchmarkAgentServicesRSS(b *testing.B) {
	c := framework.StartCluster(b, 2)
	cs := c.Server.Clientset()
	n1 := c.Node("n1")
	bg := context.Background()
	for range b.N {
		ns := framework.NewNamespace(b, cs, "rss")
		time.Sleep(10 * time.Second) // let the idle agent settle: a measurement interval, not synchronisation
		before, err := framework.ProcessRSS(n1.PID())
		if err != nil {
			b.Fatal(err)
		}
		const n = 1000
		for i := range n {
			svc, err := cs.CoreV1().Services(ns).Create(bg, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
			}, metav1.CreateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ip := fmt.Sprintf("10.42.%d.%d", 100+i/250, 1+i%250)
			if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(bg, &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Labels: map[string]string{
					discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "bench"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("p%d", i)}}},
				Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}},
			}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		// Programmed: the last Service answers (its endpoint does not exist:
		// a refusal would mean no endpoints, a timeout means DNAT happened).
		last := fmt.Sprintf("s%d", n-1)
		svc, err := cs.CoreV1().Services(ns).Get(bg, last, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		framework.Eventually(b, 2*time.Minute, func() (bool, error) {
			out, _ := n1.Exec("nft", "list", "map", "ip", "havre0", "service-ips")
			return strings.Contains(out, svc.Spec.ClusterIP+" . tcp . 80"), nil
		}, "n1's proxy programs all 1,000 Services")
		time.Sleep(10 * time.Second) // as above
		after, err := framework.ProcessRSS(n1.PID())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(before)/(1<<20), "idle-rss-MiB")
		b.ReportMetric(float64(after)/(1<<20), "1000svc-rss-MiB")
		b.ReportMetric(float64(after-before)/(1<<20), "added-MiB")
	}
}

// BenchmarkNetworkPolicyEnforced measures how long a NetworkPolicy change
// takes to be enforced on every node of a three-node cluster holding 5,000
// pods and 1,000 policies. The 5,000 pods are API objects bound to a node
// no agent runs (with addresses of the cluster's pod network, so that every
// agent's policer keeps them in its peer sets); the 1,000 policies (20 in
// each of 50 namespaces) select them by label and allow ingress from pods
// and namespaces by label, on numbered and named ports. Three real pods,
// one per node, serve port 8080; one more policy selects them and, each
// iteration, flips from allowing ingress from anywhere (an ipBlock
// 0.0.0.0/0) to allowing nothing, and back. The clock starts when the
// update call returns and stops when the change is seen on the last of the
// three nodes: a connection to the pod on it, from the next node, starts
// or stops getting through (the start of the first attempt that does;
// attempts every 2 ms, each given 20 ms). Also
// reports what the 5,000 pods and 1,000 policies added to the RSS of an
// agent (node n1; n0's process is also the server).
//
//	go test ./test/e2e/network/ -run '^$' -bench NetworkPolicyEnforced -benchtime=40x
func BenchmarkNetworkPolicyEnforced(b *testing.B) {
	c := framework.StartCluster(b, 3)
	c.ImportImage(b, framework.BuildImage(b, "test/images/web", webImage))
	cs := c.Server.Clientset()
	bg := context.Background()
	before, err := framework.ProcessRSS(c.Node("n1").PID())
	if err != nil {
		b.Fatal(err)
	}
	populateNetworkPolicies(b, c)

	ns := framework.NewNamespace(b, cs, "enforced")
	var servers []*corev1.Pod
	for i, n := range c.Nodes {
		p, err := cs.CoreV1().Pods(ns).Create(bg, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("server-%d", i), Labels: map[string]string{"app": "server"}},
			Spec: corev1.PodSpec{NodeName: n.Name, TerminationGracePeriodSeconds: new(int64(0)),
				Containers: []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, p)
	}
	c.Server.MustKubectl(b, "-n", ns, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
	addrs := make([]string, len(servers))
	for i, p := range servers {
		p, err := cs.CoreV1().Pods(ns).Get(bg, p.Name, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = net.JoinHostPort(p.Status.PodIP, "8080")
	}
	var pol *networkingv1.NetworkPolicy
	allow := []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}}
	deny := []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "nobody"}}}}}}
	pol, err = cs.NetworkingV1().NetworkPolicies(ns).Create(bg, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "flip"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, Ingress: allow},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// reaches says whether server i answers from the next node.
	reaches := func(i int) bool {
		dctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		defer cancel()
		conn, err := c.Nodes[(i+1)%len(c.Nodes)].DialContext(dctx, "tcp", addrs[i])
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	// seen waits until every server's reachability is want and returns
	// when the last one was first seen so: the start of the first attempt
	// that saw it (its SYN met the new rules), the servers probed at once.
	seen := func(want bool, start time.Time) time.Duration {
		var mu sync.Mutex
		var last time.Duration
		var failed error
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() {
				for {
					t := time.Since(start)
					if reaches(i) == want {
						mu.Lock()
						last = max(last, t)
						mu.Unlock()
						return
					}
					if t > time.Minute {
						mu.Lock()
						failed = fmt.Errorf("server %d: reachable=%v a minute after the change", i, !want)
						mu.Unlock()
						return
					}
					time.Sleep(2 * time.Millisecond) // polling interval of the measurement
				}
			})
		}
		wg.Wait()
		if failed != nil {
			b.Fatal(failed)
		}
		return last
	}
	seen(true, time.Now())
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		rules, want := deny, false
		if i%2 == 1 {
			rules, want = allow, true
		}
		pol.Spec.Ingress = rules
		if pol, err = cs.NetworkingV1().NetworkPolicies(ns).Update(bg, pol, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, seen(want, time.Now()))
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	after, err := framework.ProcessRSS(c.Node("n1").PID())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/(1<<20), "agent-added-MiB")
}

// populateNetworkPolicies creates 50 namespaces (team=t0…t4) of 100 pods
// each, bound to a node no agent runs and given addresses at the top of
// the cluster's pod network, and 20 policies in each namespace.
func populateNetworkPolicies(b *testing.B, c *framework.Cluster) {
	cs := c.Server.Clientset()
	bg := context.Background()
	cidr := netip.MustParsePrefix(c.Server.ClusterCIDR())
	base := cidr.Addr().As4()
	var next atomic.Uint32
	next.Store(uint32(base[0])<<24 | uint32(base[1])<<16 | 200<<8) // x.y.200.0 on: past the nodes' /24s
	const namespaces, pods, policies = 50, 100, 20
	var wg sync.WaitGroup
	errs := make(chan error, namespaces)
	sem := make(chan struct{}, 8)
	for n := range namespaces {
		ns := fmt.Sprintf("ghosts-%d", n)
		if _, err := cs.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"team": fmt.Sprintf("t%d", n%5)}}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for j := range pods {
				role := "server"
				if j%2 == 1 {
					role = "client"
				}
				p, err := cs.CoreV1().Pods(ns).Create(bg, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", j), Labels: map[string]string{"app": fmt.Sprintf("g%d", j%5), "role": role}},
					Spec: corev1.PodSpec{NodeName: "ghost", Containers: []corev1.Container{{Name: "c", Image: webImage,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					return
				}
				v := next.Add(1)
				ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
				p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
				if _, err := cs.CoreV1().Pods(ns).UpdateStatus(bg, p, metav1.UpdateOptions{}); err != nil {
					errs <- err
					return
				}
			}
			for m := range policies {
				tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
				p8080, p8081, named := intstr.FromInt32(8080), intstr.FromInt32(8081), intstr.FromString("http")
				_, err := cs.NetworkingV1().NetworkPolicies(ns).Create(bg, &networkingv1.NetworkPolicy{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("np%d", m)},
					Spec: networkingv1.NetworkPolicySpec{
						PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("g%d", m%5)}},
						Ingress: []networkingv1.NetworkPolicyIngressRule{
							{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
								Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p8080}, {Protocol: &udp, Port: &p8081}}},
							{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t%d", m%5)}}}},
								Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &named}}},
						},
					},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
