package workloads_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/test/framework"
)

// webImage is test/images/web, imported into the agent's containerd.
const webImage = "havre.local/e2e-web:v1"

// TestDeploymentOnAgent rolls a 2-replica Deployment out on the server's
// own node: the scheduler binds the pods, the agent runs them in
// containerd, and the Deployment becomes Available.
func TestDeploymentOnAgent(t *testing.T) {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/web", webImage)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", "workloads-e2e"))
	cs := s.Clientset()
	s.WaitNodeReady(t, "workloads-e2e", 60*time.Second)
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
