package workloads_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// webImage is test/images/web, imported into the agent's containerd.
const webImage = "havre.local/e2e-web:v1"

// requireNode skips where the node agent cannot run pods.
func requireNode(t *testing.T) {
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

// TestDeploymentOnAgent rolls a 2-replica Deployment out on the server's
// own node: the scheduler binds the pods, the agent runs them in
// containerd, and the Deployment becomes Available.
func TestDeploymentOnAgent(t *testing.T) {
	requireNode(t)
	archive := framework.BuildImage(t, "test/images/web", webImage)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", "workloads-e2e"))
	cs := s.Clientset()
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctxFor(t), "workloads-e2e", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
			}
		}
		return false, nil
	}, "node Ready with a pod CIDR")
	s.ImportImage(t, archive)

	ns := newNamespace(t, cs, "agent")
	d := deployment("web", 2, webImage)
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	createDeployment(t, cs, ns, d)
	out := s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")
	if !strings.Contains(out, "successfully rolled out") {
		t.Errorf("rollout status: %s", out)
	}
	d = waitDeployment(t, cs, ns, "web", "Available", func(d *appsv1.Deployment) bool {
		c := condition(d, appsv1.DeploymentAvailable)
		return complete(d) && c != nil && c.Status == corev1.ConditionTrue
	})
	for _, p := range podsOf(t, cs, ns, "web") {
		if p.Spec.NodeName != "workloads-e2e" || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: node %q phase %s ip %q", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
		}
	}
	if d.Status.ReadyReplicas != 2 {
		t.Errorf("ready replicas %d", d.Status.ReadyReplicas)
	}
}
