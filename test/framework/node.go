package framework

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RequireNodeAgent skips a test that runs containers where the node agent
// cannot run them: with -short, without root, containerd, runc and ctr, or
// without the CNI plugins.
func RequireNodeAgent(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: runs containers (skipped with -short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("the node agent needs %s (hack/install-deps.sh installs it)", bin)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if _, err2 := os.Stat("/opt/cni/bin/bridge"); err2 != nil {
			t.Skip("the node agent needs the CNI plugins (containernetworking-plugins)")
		}
	}
}

// WaitNodeReady waits until the node is Ready and has a pod CIDR (what a
// pod needs to start on it).
func (s *Server) WaitNodeReady(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	cs := s.Clientset()
	Eventually(t, timeout, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
			}
		}
		return false, nil
	}, "node %s Ready with a pod CIDR", name)
}
