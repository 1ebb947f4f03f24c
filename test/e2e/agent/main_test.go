// Package agent_test is the end-to-end suite of Havre's node agent: a real
// `havre server` with its in-process agent runs pods on a real containerd
// (the agent's own), with images built from test/images and imported with
// `havre image import`, and the tests check what a user sees through the
// API, kubectl and the pods' network.
//
// It needs root, containerd, runc and the CNI plugins
// (hack/install-deps.sh installs them); without them the suite is skipped
// and says why.
package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// nodeName is what the tests' agents register as.
	nodeName = "havre-e2e"
	// webImage is test/images/web, imported into every server's node.
	webImage = "havre.local/e2e-web:v1"
	// callTimeout bounds single API calls.
	callTimeout = 30 * time.Second
)

// startNode starts a server with its agent, waits for the node to be Ready
// with a pod CIDR, and imports the web image.
func startNode(t testing.TB, opts ...framework.Option) *framework.Server {
	t.Helper()
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/web", webImage)
	s := framework.StartServer(t, append([]framework.Option{framework.WithAgent(), framework.WithArgs("--node-name", nodeName)}, opts...)...)
	waitNodeReady(t, s)
	s.ImportImage(t, archive)
	return s
}

func waitNodeReady(t testing.TB, s *framework.Server) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		n, err := s.Clientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
			}
		}
		return false, nil
	}, "node %s Ready with a pod CIDR", nodeName)
	return node
}

// createNamespace makes a namespace for one test.
func createNamespace(t testing.TB, s *framework.Server, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := s.Clientset().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func getPod(t *testing.T, s *framework.Server, ns, name string) (*corev1.Pod, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return s.Clientset().CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

// waitPod waits until cond holds for the pod, and returns it.
func waitPod(t *testing.T, s *framework.Server, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	err := framework.WaitFor(timeout, func() (bool, error) {
		p, err := getPod(t, s, ns, name)
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: %s: %v\nlast status: %s\nevents:\n%s", ns, name, what, err, statusSummary(last), events(t, s, ns, name))
	}
	return last
}

func statusSummary(p *corev1.Pod) string {
	if p == nil {
		return "(none)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s podIP=%s", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "\n  %s: restarts=%d ready=%v state=%s last=%s", cs.Name, cs.RestartCount, cs.Ready, stateString(cs.State), stateString(cs.LastTerminationState))
		}
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%d %s: %s)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "-"
}

// events lists the Events about a pod, one "reason: message" a line.
func events(t *testing.T, s *framework.Server, ns, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	list, err := s.Clientset().CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s %s: %s (x%d)\n", e.Type, e.Reason, e.Message, e.Count)
	}
	return b.String()
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(body), nil
}

// waitHTTP polls a URL until it answers 200 and returns the body.
func waitHTTP(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	var body string
	framework.Eventually(t, timeout, func() (bool, error) {
		b, err := httpGet(url)
		body = b
		return err == nil, err
	}, "GET %s", url)
	return body
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// ctr runs containerd's ctr against the node's containerd, in the CRI
// namespace.
func ctr(socket string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", socket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}
