// Package hollow_test checks `havre agent --hollow N` against the real
// havre binary: simulated nodes register, keep their Leases, run the pods
// bound to them (Running and Ready, or exiting as asked) and finish their
// graceful deletion, as kubelets would.
package hollow_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const waitTimeout = 30 * time.Second

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t)
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

func pod(name, node string, annotations map[string]string, policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestHollowNodes(t *testing.T) {
	s := startServer(t)
	a := s.StartHollowAgent(t, 3)
	cs := s.Clientset()
	names := a.NodeNames()

	t.Run("nodes and leases", func(t *testing.T) {
		for _, name := range names {
			n, err := cs.CoreV1().Nodes().Get(ctx(t), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if n.Labels["node.havre.dev/hollow"] != "true" || n.Labels[corev1.LabelHostname] != name || n.Labels[corev1.LabelOSStable] != "linux" {
				t.Errorf("%s: labels %v", name, n.Labels)
			}
			if n.Status.Capacity.Pods().Value() != 110 || n.Status.Capacity.Cpu().String() != "4" || n.Status.Capacity.Memory().String() != "16Gi" {
				t.Errorf("%s: capacity %v", name, n.Status.Capacity)
			}
			l, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx(t), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s: lease: %v", name, err)
			}
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != name || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != n.UID {
				t.Errorf("%s: lease %+v owners %+v", name, l.Spec, l.OwnerReferences)
			}
		}
		out := s.MustKubectl(t, "get", "nodes", "-l", "node.havre.dev/hollow=true")
		if strings.Count(out, " Ready ") != 3 {
			t.Errorf("kubectl get nodes:\n%s", out)
		}
	})

	t.Run("pods run and are deleted", func(t *testing.T) {
		pods := cs.CoreV1().Pods("default")
		for i, name := range names {
			if _, err := pods.Create(ctx(t), pod(fmt.Sprintf("web-%d", i), name, nil, corev1.RestartPolicyAlways), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		ips := map[string]string{}
		for i, name := range names {
			pn := fmt.Sprintf("web-%d", i)
			var p *corev1.Pod
			framework.Eventually(t, waitTimeout, func() (bool, error) {
				var err error
				p, err = pods.Get(ctx(t), pn, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning && podReady(p), err
			}, "pod %s Running and Ready on %s", pn, name)
			if _, err := netip.ParseAddr(p.Status.PodIP); err != nil || p.Status.HostIP == "" {
				t.Errorf("%s: podIP %q hostIP %q", pn, p.Status.PodIP, p.Status.HostIP)
			}
			if other, dup := ips[p.Status.PodIP]; dup {
				t.Errorf("%s and %s share the IP %s", pn, other, p.Status.PodIP)
			}
			ips[p.Status.PodIP] = pn
			c := p.Status.ContainerStatuses
			if len(c) != 1 || c[0].State.Running == nil || !c[0].Ready || c[0].Image != "registry.example/app:1" {
				t.Errorf("%s: container statuses %+v", pn, c)
			}
		}
		// A graceful deletion (30s by default) ends as soon as the agent
		// stopped the containers.
		start := time.Now()
		if err := pods.Delete(ctx(t), "web-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 20*time.Second, func() (bool, error) {
			_, err := pods.Get(ctx(t), "web-0", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}, "deleted pod gone before its grace period")
		t.Logf("graceful deletion took %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("exit code annotation", func(t *testing.T) {
		pods := cs.CoreV1().Pods("default")
		cases := []struct {
			name   string
			code   string
			policy corev1.RestartPolicy
			phase  corev1.PodPhase
		}{
			{"job-ok", "0", corev1.RestartPolicyNever, corev1.PodSucceeded},
			{"job-failed", "2", corev1.RestartPolicyNever, corev1.PodFailed},
			{"job-onfailure", "0", corev1.RestartPolicyOnFailure, corev1.PodSucceeded},
		}
		for _, c := range cases {
			p := pod(c.name, names[1], map[string]string{"hollow.havre.dev/exit-code": c.code}, c.policy)
			if _, err := pods.Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			framework.Eventually(t, waitTimeout, func() (bool, error) {
				p, err := pods.Get(ctx(t), c.name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				if p.Status.Phase != c.phase {
					return false, fmt.Errorf("phase %s", p.Status.Phase)
				}
				st := p.Status.ContainerStatuses
				if len(st) != 1 || st[0].State.Terminated == nil || fmt.Sprint(st[0].State.Terminated.ExitCode) != c.code {
					return false, fmt.Errorf("container statuses %+v", st)
				}
				return true, nil
			}, "pod %s ends %s with exit code %s", c.name, c.phase, c.code)
		}
	})

	t.Run("agent restart keeps nodes", func(t *testing.T) {
		leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
		before, err := leases.Get(ctx(t), names[2], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a.Kill()
		a.Restart()
		// The new process renews the lease of the same node.
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			l, err := leases.Get(ctx(t), names[2], metav1.GetOptions{})
			return err == nil && l.Spec.RenewTime.After(before.Spec.RenewTime.Time), err
		}, "lease of %s renewed after the restart", names[2])
		p, err := cs.CoreV1().Pods("default").Get(ctx(t), "web-1", metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning || !podReady(p) {
			t.Fatalf("pod web-1 after the agent restarted: %v %+v", err, p.Status)
		}
	})
}

// TestHollowScale runs a few dozen nodes and a few hundred pods: every pod
// must be reported Running within the deadline.
func TestHollowScale(t *testing.T) {
	s := startServer(t)
	const nodes, pods = 50, 300
	start := time.Now()
	a := s.StartHollowAgent(t, nodes)
	t.Logf("%d hollow nodes Ready in %v", nodes, time.Since(start).Round(time.Millisecond))
	cs := s.Clientset()
	names := a.NodeNames()
	start = time.Now()
	for i := 0; i < pods; i++ {
		p := pod(fmt.Sprintf("p-%d", i), names[i%nodes], nil, corev1.RestartPolicyAlways)
		if _, err := cs.CoreV1().Pods("default").Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		list, err := cs.CoreV1().Pods("default").List(ctx(t), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		running := 0
		for i := range list.Items {
			if list.Items[i].Status.Phase == corev1.PodRunning && podReady(&list.Items[i]) {
				running++
			}
		}
		if running != pods {
			return false, fmt.Errorf("%d/%d running", running, pods)
		}
		return true, nil
	}, "every pod Running")
	t.Logf("%d pods created and Running in %v", pods, time.Since(start).Round(time.Millisecond))
}
