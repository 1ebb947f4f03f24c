package network_test

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/test/framework"
)

// TestClusterHarness: two nodes in namespaces of their own join and run
// pods, which each node reaches on its own bridge.
func TestClusterHarness(t *testing.T) {
	c := startCluster(t, 2)
	out := c.Server.MustKubectl(t, "get", "nodes", "-o", "wide")
	for _, n := range c.Nodes {
		if !strings.Contains(out, n.Name) || !strings.Contains(out, n.IP) {
			t.Errorf("kubectl get nodes lacks %s (%s):\n%s", n.Name, n.IP, out)
		}
	}
	c.Server.MustKubectl(t, "create", "deployment", "web", "--image="+webImage, "--replicas=2")
	c.Server.MustKubectl(t, "rollout", "status", "deployment/web", "--timeout=120s")
	// Each node reaches its own pods.
	out = c.Server.MustKubectl(t, "get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP}{\"\\n\"}{end}")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("pods: %q", out)
		}
		node := c.Node(f[0])
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			code, body, err := node.Get("http://"+f[1]+":8080/", 2*time.Second)
			return err == nil && code == 200 && strings.HasPrefix(body, "web "), nil
		}, "GET http://%s:8080/ from %s", f[1], f[0])
	}
}

// TestAgentOwnsItsNetwork: a node's Services keep working while its agent
// is stopped; an agent restarted on a node whose pod bridge has another
// address (left by an earlier run, another pod CIDR) puts its own back and
// runs pods; `havre agent reset` then removes the pods, the bridge and the
// node's nftables tables.
func TestAgentOwnsItsNetwork(t *testing.T) {
	c := startCluster(t, 2)
	n1 := c.Node("n1")
	// A Service whose pod runs on n1 keeps answering there while n1's
	// agent is stopped (its rules stay) and after it restarts.
	c.Server.MustKubectl(t, "run", "kept", "--image="+webImage, "--image-pull-policy=Never", "--labels=app=kept",
		`--overrides={"spec":{"nodeName":"n1"}}`)
	c.Server.MustKubectl(t, "wait", "--for=condition=Ready", "pod/kept", "--timeout=90s")
	svc := service(t, c, "default", "kept", "kept", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(8080) })
	url := "http://" + svc.Spec.ClusterIP + "/"
	getFrom(t, n1, url)
	n1.Stop()
	if code, body, err := n1.Get(url, 2*time.Second); err != nil || code != 200 {
		t.Errorf("with the agent stopped, GET %s: %d %q %v", url, code, body, err)
	}
	for _, args := range [][]string{{"addr", "flush", "dev", "havre0"}, {"addr", "add", "10.200.0.1/24", "dev", "havre0"}} {
		if out, err := n1.Exec("ip", args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	n1.Restart()
	c.WaitNodesReady(t, time.Minute)
	getFrom(t, n1, url)
	c.Server.MustKubectl(t, "run", "pinned", "--image="+webImage, "--image-pull-policy=Never",
		`--overrides={"spec":{"nodeName":"n1"}}`)
	c.Server.MustKubectl(t, "wait", "--for=condition=Ready", "pod/pinned", "--timeout=90s")
	node, err := c.Server.Clientset().CoreV1().Nodes().Get(framework.RequestContext(t), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gateway := strings.TrimSuffix(node.Spec.PodCIDR, "0/24") + "1/24"
	out, err := n1.Exec("ip", "-4", "-o", "addr", "show", "dev", "havre0")
	if err != nil || !strings.Contains(out, gateway) || strings.Contains(out, "10.200.0.1") {
		t.Errorf("the bridge's addresses after the restart: %s (%v)", out, err)
	}

	n1.Stop()
	if out, err := n1.Exec(framework.Havre(t), "agent", "reset", "--data-dir", n1.DataDir()); err != nil {
		t.Fatalf("havre agent reset: %v\n%s", err, out)
	}
	if out, err := n1.Exec("ip", "link", "show", "havre0"); err == nil {
		t.Errorf("the pod bridge is still there after reset:\n%s", out)
	}
	if out, err := n1.Exec("nft", "list", "tables"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("nftables tables left after reset: %q (%v)", out, err)
	}
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil && strings.Contains(string(mounts), n1.DataDir()) {
		t.Errorf("mounts left under %s after reset", n1.DataDir())
	}
}
