package network_test

import (
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/test/framework"
)

// TestClusterHarness: two nodes in namespaces of their own join, run pods,
// and reach each other's node addresses; the pods get their own node's
// pod CIDR.
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
