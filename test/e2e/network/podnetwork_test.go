package network_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// spreadDeployment runs one web pod on each node (a pod anti-affinity on
// the host name) and returns the pods by node name.
func spreadDeployment(t *testing.T, c *framework.Cluster, ns, name string) map[string]corev1.Pod {
	t.Helper()
	replicas := int32(len(c.Nodes))
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(2)),
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
							TopologyKey:   "kubernetes.io/hostname",
						}},
					}},
					Containers: []corev1.Container{{
						Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever, Args: []string{"-udp", ":8080"},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					}},
				},
			},
		},
	}
	if _, err := c.Server.Clientset().AppsV1().Deployments(ns).Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Server.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=180s")
	byNode := map[string]corev1.Pod{}
	for _, p := range podsOf(t, c, ns, name) {
		byNode[p.Spec.NodeName] = p
	}
	if len(byNode) != len(c.Nodes) {
		t.Fatalf("pods on %d nodes, want one on each of %d", len(byNode), len(c.Nodes))
	}
	return byNode
}

// TestPodNetworkAcrossNodes checks the flat pod network on three nodes:
// every pod reaches every other pod by its IP over TCP, UDP and ICMP, each
// node reaches remote pods, a Service whose only endpoint is on another
// node answers, the path MTU is the pod MTU, a deleted node's routes go,
// and an established flow survives an agent restart.
func TestPodNetworkAcrossNodes(t *testing.T) {
	c := startCluster(t, 3)
	cs := c.Server.Clientset()
	ns := framework.NewNamespace(t, cs, "flat")
	pods := spreadDeployment(t, c, ns, "web")

	t.Run("pod to pod across nodes over TCP, UDP and ICMP", func(t *testing.T) {
		for from, src := range pods {
			for to, dst := range pods {
				if from == to {
					continue
				}
				out, err := execIn(t, c, ns, src.Name, "get", "http://"+dst.Status.PodIP+":8080/")
				if err != nil || strings.TrimSpace(out) != "web "+dst.Name {
					t.Errorf("TCP %s (%s) → %s (%s): %q %v", src.Name, from, dst.Name, to, out, err)
				}
				out, err = execIn(t, c, ns, src.Name, "udpsend", dst.Status.PodIP+":8080", "hello")
				if err != nil || !strings.HasPrefix(out, "web "+dst.Name+" "+src.Status.PodIP+":") {
					t.Errorf("UDP %s → %s: %q %v (the source address must be the pod's: no NAT inside the cluster)", src.Name, dst.Name, out, err)
				}
				out, err = execIn(t, c, ns, src.Name, "ping", "-c", "2", dst.Status.PodIP)
				if err != nil {
					t.Errorf("ICMP %s → %s: %q %v", src.Name, dst.Name, out, err)
				}
			}
		}
	})

	t.Run("each node reaches the pods of the others", func(t *testing.T) {
		for _, n := range c.Nodes {
			for to, dst := range pods {
				if to == n.Name {
					continue
				}
				if body := getFrom(t, n, "http://"+dst.Status.PodIP+":8080/"); strings.TrimSpace(body) != "web "+dst.Name {
					t.Errorf("%s → %s: %q", n.Name, dst.Name, body)
				}
			}
		}
	})

	t.Run("a Service whose only endpoint is on another node", func(t *testing.T) {
		last := c.Nodes[len(c.Nodes)-1].Name
		svc := service(t, c, ns, "remote", "web", func(s *corev1.Service) {
			s.Spec.Selector = map[string]string{"app": "web", "pick": "remote"}
		})
		// Select the one pod on the last node by a label of its own.
		c.Server.MustKubectl(t, "-n", ns, "label", "pod", pods[last].Name, "pick=remote")
		waitEndpoints(t, c, ns, "remote", 1)
		for _, n := range c.Nodes[:len(c.Nodes)-1] {
			if body := getFrom(t, n, "http://"+svc.Spec.ClusterIP+"/"); strings.TrimSpace(body) != "web "+pods[last].Name {
				t.Errorf("%s → ClusterIP: %q", n.Name, body)
			}
			src := pods[n.Name]
			var out string
			framework.Eventually(t, 20*time.Second, func() (bool, error) {
				var err error
				out, err = execIn(t, c, ns, src.Name, "get", "http://remote/")
				return err == nil, nil
			}, "pod on %s reaches the Service by name (last: %q)", n.Name, out)
		}
	})

	t.Run("the path MTU is the pod MTU", func(t *testing.T) {
		src, dst := pods[c.Nodes[0].Name], pods[c.Nodes[1].Name]
		out, err := execIn(t, c, ns, src.Name, "cat", "/sys/class/net/eth0/mtu")
		if err != nil {
			t.Fatal(err)
		}
		mtu, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil || mtu < 1000 || mtu > 1500-50 {
			t.Fatalf("pod MTU %q: want the uplink's less the 50 bytes VXLAN takes", out)
		}
		payload := mtu - 28 // IP and ICMP headers
		if out, err := execIn(t, c, ns, src.Name, "ping", "-M", "do", "-s", strconv.Itoa(payload), dst.Status.PodIP); err != nil {
			t.Errorf("the largest unfragmented ping (%d bytes) failed: %q %v", payload, out, err)
		}
		if out, err := execIn(t, c, ns, src.Name, "ping", "-M", "do", "-s", strconv.Itoa(payload+1), dst.Status.PodIP); err == nil {
			t.Errorf("a ping one byte over the MTU went through unfragmented: %q", out)
		}
	})

	t.Run("an established flow survives an agent restart", func(t *testing.T) {
		n0, n1 := c.Nodes[0], c.Nodes[1]
		dst := pods[n1.Name]
		conn, err := n0.DialContext(ctx(t), "tcp", net.JoinHostPort(dst.Status.PodIP, "8080"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		request := func() string {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatalf("writing on the connection: %v", err)
			}
			resp, err := readResponse(r)
			if err != nil {
				t.Fatalf("reading on the connection: %v", err)
			}
			return resp
		}
		if got := request(); !strings.Contains(got, "web "+dst.Name) {
			t.Fatalf("answer %q", got)
		}
		n1.Restart()
		c.WaitNodesReady(t, time.Minute)
		if got := request(); !strings.Contains(got, "web "+dst.Name) {
			t.Errorf("after the agent restart, answer %q", got)
		}
	})

	t.Run("a deleted node's routes go", func(t *testing.T) {
		last := c.Nodes[len(c.Nodes)-1]
		node, err := cs.CoreV1().Nodes().Get(ctx(t), last.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cidr := node.Spec.PodCIDR
		n0 := c.Nodes[0]
		if out, _ := n0.Exec("ip", "route", "show", cidr); !strings.Contains(out, cidr) {
			t.Fatalf("%s has no route to %s's pods:\n%s", n0.Name, last.Name, out)
		}
		last.Stop()
		if err := cs.CoreV1().Nodes().Delete(ctx(t), last.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			out, _ := n0.Exec("ip", "route", "show", cidr)
			return strings.TrimSpace(out) == "", nil
		}, "%s's route to the deleted node's pods removed", n0.Name)
		out, _ := n0.Exec("bridge", "fdb", "show")
		if strings.Contains(out, "dst "+last.IP) {
			t.Errorf("FDB entries towards the deleted node left:\n%s", out)
		}
		out, _ = n0.Exec("ip", "neigh", "show")
		if strings.Contains(out, strings.TrimSuffix(cidr, "/24")+" ") {
			t.Errorf("neighbour entries of the deleted node left:\n%s", out)
		}
	})
}

// readResponse reads one HTTP/1.1 response with a Content-Length body.
func readResponse(r *bufio.Reader) (string, error) {
	var b strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(line)
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return b.String(), err
	}
	b.Write(body)
	return b.String(), nil
}
