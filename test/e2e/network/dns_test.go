package network_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// fakeUpstream serves what stands for the world's DNS, in the cluster's
// underlay namespace, on the address every node's resolv.conf names: it
// knows www.example.test and counts the questions it gets.
func fakeUpstream(t *testing.T, c *framework.Cluster) {
	t.Helper()
	var pc net.PacketConn
	if err := c.DoOutside(func() error {
		var err error
		pc, err = net.ListenPacket("udp", net.JoinHostPort(c.OutsideAddr(), "53"))
		return err
	}); err != nil {
		t.Fatalf("listening in the underlay: %v", err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case strings.EqualFold(q.Name, "www.example.test.") && q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR("www.example.test. 60 IN A 192.0.2.77")
			m.Answer = append(m.Answer, rr)
		case strings.EqualFold(q.Name, "www.example.test."):
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
}

// TestDNS checks cluster DNS from inside pods, on three nodes (each pod's
// node answers it; the endpoints spread over the nodes): every record of the
// Kubernetes DNS specification, names outside the cluster through the
// node's forwarder, and resolv.conf for each dnsPolicy. Subtests named as
// upstream's [sig-network] DNS conformance specs check the same behaviour.
func TestDNS(t *testing.T) {
	c := startCluster(t, 3)
	fakeUpstream(t, c)
	cs := c.Server.Clientset()
	ns := framework.NewNamespace(t, cs, "dns")

	webDeployment(t, c, ns, "web", 2)
	web := service(t, c, ns, "web", "web", nil)
	service(t, c, ns, "headless", "web", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
	service(t, c, ns, "ext", "", func(s *corev1.Service) {
		s.Spec.Selector = nil
		s.Spec.Type = corev1.ServiceTypeExternalName
		s.Spec.ExternalName = "www.example.test"
		s.Spec.Ports = nil
	})
	// A pod with a hostname in the headless Service's subdomain.
	host := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "host", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Hostname: "host1", Subdomain: "headless",
			Containers: []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), host, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Server.MustKubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/host", "--timeout=120s")
	waitEndpoints(t, c, ns, "headless", 3)
	hostPod, err := cs.CoreV1().Pods(ns).Get(ctx(t), "host", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := podsOf(t, c, ns, "web")[0].Name
	domain := "cluster.local"
	fq := func(name string) string { return name + "." + ns + ".svc." + domain }

	// dnsq asks from the client pod, retrying while the answer lacks want.
	dnsq := func(t *testing.T, want string, args ...string) string {
		t.Helper()
		var out string
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			out, _ = execIn(t, c, ns, client, append([]string{"dnsq"}, args...)...)
			return strings.Contains(out, want), nil
		}, "dnsq %v answers %q (last: %q)", args, want, out)
		return out
	}

	t.Run("DNS should provide DNS for services", func(t *testing.T) {
		dnsq(t, web.Spec.ClusterIP, fq("web"))
		dnsq(t, web.Spec.ClusterIP, "-tcp", fq("web"))
		srv := dnsq(t, "SRV", "-t", "SRV", "_http._tcp."+fq("web"))
		if !strings.Contains(srv, fq("web")+".") {
			t.Errorf("SRV answer %q lacks the service target", srv)
		}
		rev, _ := dns.ReverseAddr(web.Spec.ClusterIP)
		dnsq(t, fq("web")+".", "-t", "PTR", strings.TrimSuffix(rev, "."))
		out := dnsq(t, "NXDOMAIN", fq("nosuch"))
		if strings.Contains(out, "\tA\t") {
			t.Errorf("an unknown Service resolved: %q", out)
		}
	})

	t.Run("DNS should provide DNS for the cluster", func(t *testing.T) {
		kube, err := cs.CoreV1().Services("default").Get(ctx(t), "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dnsq(t, kube.Spec.ClusterIP, "kubernetes.default.svc."+domain)
		dnsq(t, `"1.1.0"`, "-t", "TXT", "dns-version."+domain)
	})

	t.Run("DNS should resolve DNS of partial qualified names for services [LinuxOnly]", func(t *testing.T) {
		for _, name := range []string{"web", "web." + ns, "web." + ns + ".svc"} {
			var out string
			framework.Eventually(t, 20*time.Second, func() (bool, error) {
				out, _ = execIn(t, c, ns, client, "lookup", name)
				return strings.TrimSpace(out) == web.Spec.ClusterIP, nil
			}, "lookup %s gives %s (got %q)", name, web.Spec.ClusterIP, out)
		}
	})

	t.Run("DNS should provide DNS for pods for Hostname [LinuxOnly]", func(t *testing.T) {
		dnsq(t, hostPod.Status.PodIP, "host1."+fq("headless"))
		dashed := strings.ReplaceAll(hostPod.Status.PodIP, ".", "-")
		dnsq(t, hostPod.Status.PodIP, dashed+"."+ns+".pod."+domain)
	})

	t.Run("DNS should provide DNS for pods for Subdomain", func(t *testing.T) {
		out := dnsq(t, hostPod.Status.PodIP, fq("headless"))
		if n := strings.Count(out, "\tA\t"); n != 3 {
			t.Errorf("headless Service answered %d addresses, want its 3 ready endpoints:\n%s", n, out)
		}
	})

	t.Run("DNS should provide DNS for ExternalName services", func(t *testing.T) {
		out := dnsq(t, "CNAME", fq("ext"))
		if !strings.Contains(out, "www.example.test.") || !strings.Contains(out, "192.0.2.77") {
			t.Errorf("ExternalName answer %q, want the CNAME and the target's address", out)
		}
	})

	t.Run("names outside the cluster through the node's forwarder and the search path", func(t *testing.T) {
		dnsq(t, "192.0.2.77", "www.example.test")
		var out string
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			out, _ = execIn(t, c, ns, client, "lookup", "www.example.test")
			return strings.TrimSpace(out) == "192.0.2.77", nil
		}, "lookup www.example.test through the search path (got %q)", out)
		dnsq(t, "NXDOMAIN", "nosuch.example.test")
	})

	t.Run("the node itself reaches cluster DNS", func(t *testing.T) {
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			conn, err := c.Nodes[0].DialContext(ctx(t), "udp", "10.43.0.10:53")
			if err != nil {
				return false, nil
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			co := &dns.Conn{Conn: conn}
			m := new(dns.Msg)
			m.SetQuestion(fq("web")+".", dns.TypeA)
			if err := co.WriteMsg(m); err != nil {
				return false, nil
			}
			r, err := co.ReadMsg()
			return err == nil && len(r.Answer) == 1 && strings.Contains(r.Answer[0].String(), web.Spec.ClusterIP), nil
		}, "a query from the node to 10.43.0.10")
	})

	t.Run("DNS should support configurable pod DNS nameservers, and resolv.conf for each dnsPolicy", func(t *testing.T) {
		for i, tc := range []struct {
			policy      corev1.DNSPolicy
			hostNetwork bool
			cfg         *corev1.PodDNSConfig
			want        []string
		}{
			{policy: corev1.DNSClusterFirst, want: []string{"nameserver 10.43.0.10", "search " + ns + ".svc." + domain + " svc." + domain + " " + domain, "options ndots:5"}},
			{policy: corev1.DNSDefault, want: []string{"nameserver " + c.OutsideAddr()}},
			{policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true, want: []string{"nameserver 10.43.0.10", "options ndots:5"}},
			{policy: corev1.DNSClusterFirst, hostNetwork: true, want: []string{"nameserver " + c.OutsideAddr()}},
			{policy: corev1.DNSNone, cfg: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"example.test"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: new("2")}}},
				want: []string{"nameserver 192.0.2.53", "search example.test", "options ndots:2"}},
		} {
			name := strings.ToLower(string(tc.policy))
			if tc.hostNetwork {
				name += "-hostnet"
			}
			t.Run(name, func(t *testing.T) {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNetwork, DNSConfig: tc.cfg,
						Containers: []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever,
							Args: []string{"-listen", fmt.Sprintf(":%d", 18080+i)}}}},
				}
				if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				c.Server.MustKubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=120s")
				out, err := execIn(t, c, ns, name, "cat", "/etc/resolv.conf")
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("resolv.conf lacks %q:\n%s", w, out)
					}
				}
			})
		}
	})
}
