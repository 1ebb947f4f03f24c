package network_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/internal/network/netpol/netpolmodel"
	"github.com/havre/havre/test/framework"
)

// The NetworkPolicy model of upstream's e2e tests (test/e2e/network/netpol,
// in netpolmodel): namespaces x, y and z, each with pods a, b and c serving
// ports 80 and 81 over TCP and UDP, spread over three nodes; every case's
// every step checks the whole reachability matrix, probed from inside each
// pod, against the API's semantics.

// probeProtocols are what the web image serves and probes (SCTP: the
// netpol package's model and kernel tests).
var probeProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}

// probeTimeout is how long a probe waits for an answer: a denied
// connection's packets are dropped, so every denied probe lasts this long.
const probeTimeout = 300 * time.Millisecond

// netpolCluster is the model deployed on a cluster.
type netpolCluster struct {
	c       *framework.Cluster
	cs      kubernetes.Interface
	base    *netpolmodel.World // as deployed: no policies
	applied *netpolmodel.World // what the API holds
}

// deployModel creates the namespaces and the nine pods, spread over the
// nodes, and waits for them.
func deployModel(t *testing.T, c *framework.Cluster) *netpolCluster {
	t.Helper()
	cs := c.Server.Clientset()
	for _, ns := range netpolmodel.NamespaceNames {
		if _, err := cs.CoreV1().Namespaces().Create(ctx(t), netpolmodel.Namespace(ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, key := range netpolmodel.PodKeys() {
		p := netpolmodel.Pod(key, c.Nodes[i%len(c.Nodes)].Name, "")
		p.UID, p.Status = "", corev1.PodStatus{}
		p.Spec.TerminationGracePeriodSeconds = new(int64(0))
		p.Spec.Containers[0].Name = "web"
		p.Spec.Containers[0].Image = webImage
		p.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
		p.Spec.Containers[0].Args = []string{"-ports", "80,81"}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range netpolmodel.NamespaceNames {
		c.Server.MustKubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=180s")
	}
	base := netpolmodel.NewWorld(func(key string) (string, string) {
		ns, name, _ := strings.Cut(key, "/")
		p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Spec.NodeName, p.Status.PodIP
	})
	return &netpolCluster{c: c, cs: cs, base: base, applied: base.Clone()}
}

// apply makes the API hold w: namespaces' and pods' labels, and policies
// created, updated and deleted.
func (m *netpolCluster) apply(t *testing.T, w *netpolmodel.World) {
	t.Helper()
	for name, ns := range w.Namespaces {
		if m.applied.Namespaces[name] != ns {
			m.patchLabels(t, "", name, ns.Labels, m.applied.Namespaces[name].Labels)
		}
	}
	for key, p := range w.Pods {
		if old := m.applied.Pods[key]; old != p {
			m.patchLabels(t, p.Namespace, p.Name, p.Labels, old.Labels)
		}
	}
	for key, np := range w.Policies {
		old := m.applied.Policies[key]
		if old == np {
			continue
		}
		api := m.cs.NetworkingV1().NetworkPolicies(key.Namespace)
		if old == nil {
			if _, err := api.Create(ctx(t), np, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cur, err := api.Get(ctx(t), key.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec = np.Spec
		if _, err := api.Update(ctx(t), cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for key := range m.applied.Policies {
		if w.Policies[key] == nil {
			err := m.cs.NetworkingV1().NetworkPolicies(key.Namespace).Delete(ctx(t), key.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
	m.applied = w.Clone()
}

// patchLabels merge-patches an object's labels from old to labels.
func (m *netpolCluster) patchLabels(t *testing.T, namespace, name string, labels, old map[string]string) {
	t.Helper()
	l := map[string]any{}
	for k := range old {
		l[k] = nil
	}
	for k, v := range labels {
		l[k] = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": l}})
	if err != nil {
		t.Fatal(err)
	}
	if namespace == "" {
		_, err = m.cs.CoreV1().Namespaces().Patch(ctx(t), name, types.MergePatchType, patch, metav1.PatchOptions{})
	} else {
		_, err = m.cs.CoreV1().Pods(namespace).Patch(ctx(t), name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// probe asks every pod, through its node, to connect to every other pod on
// every port and protocol, and returns what answered, by port and protocol.
func (m *netpolCluster) probe(t *testing.T) map[string]netpolmodel.Matrix {
	t.Helper()
	keys := netpolmodel.PodKeys()
	var targets []string
	target := map[string][3]string{} // target → key, port, proto
	for _, to := range keys {
		for _, port := range netpolmodel.Ports {
			for _, proto := range probeProtocols {
				tg := fmt.Sprintf("%s/%s", net.JoinHostPort(m.base.Pods[to].Status.PodIP, fmt.Sprint(port)), strings.ToLower(string(proto)))
				targets = append(targets, tg)
				target[tg] = [3]string{to, fmt.Sprint(port), string(proto)}
			}
		}
	}
	out := map[string]netpolmodel.Matrix{}
	for _, port := range netpolmodel.Ports {
		for _, proto := range probeProtocols {
			out[matrixName(port, proto)] = netpolmodel.Matrix{}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, from := range keys {
		p := m.base.Pods[from]
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/probe?timeout=%s&to=%s", net.JoinHostPort(p.Status.PodIP, "8080"), probeTimeout, strings.Join(targets, ","))
			code, body, err := m.c.Node(p.Spec.NodeName).Get(url, 10*time.Second)
			var answers map[string]bool
			if err == nil && code == 200 {
				err = json.Unmarshal([]byte(body), &answers)
			}
			if err != nil {
				t.Logf("probing from %s: %v", from, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, tg := range targets {
				k := target[tg]
				if k[0] != from {
					out[k[2]+"/"+k[1]][[2]string{from, k[0]}] = err == nil && answers[tg]
				}
			}
		})
	}
	wg.Wait()
	return out
}

func matrixName(port int32, proto corev1.Protocol) string { return fmt.Sprintf("%s/%d", proto, port) }

// want is the matrix of every port and protocol the API's semantics say
// for w.
func want(w *netpolmodel.World) map[string]netpolmodel.Matrix {
	out := map[string]netpolmodel.Matrix{}
	for _, port := range netpolmodel.Ports {
		for _, proto := range probeProtocols {
			out[matrixName(port, proto)] = w.Expect(port, proto)
		}
	}
	return out
}

// converge probes until the cluster's matrix is w's, and returns how long
// that took from now.
func (m *netpolCluster) converge(t *testing.T, w *netpolmodel.World) time.Duration {
	t.Helper()
	start := time.Now()
	exp := want(w)
	var wrong []string
	err := framework.WaitFor(60*time.Second, func() (bool, error) {
		got := m.probe(t)
		wrong = wrong[:0]
		for _, name := range slices.Sorted(maps.Keys(exp)) {
			if netpolmodel.Differ(got[name], exp[name]) {
				wrong = append(wrong, fmt.Sprintf("%s (rows from, columns to; . connected, X not, * wrong):\n%s", name, netpolmodel.TruthTable(got[name], exp[name])))
			}
		}
		return len(wrong) == 0, nil
	})
	if err != nil {
		t.Fatalf("the reachability matrix is not what the policies say after %v:\n%s", time.Since(start), strings.Join(wrong, "\n"))
	}
	return time.Since(start)
}

// TestNetworkPolicy runs every case of upstream's NetworkPolicy e2e tests
// whose protocol the pods serve (TCP and UDP) on three nodes, the model's
// nine pods spread over them: each step's changes are written to the API,
// then the whole matrix (81 pairs, ports 80 and 81, TCP and UDP) is probed
// until it is what the API's semantics say; upstream's own expectations
// must agree with those semantics. Between cases the model goes back to no
// policies. The time each step took to converge is logged.
func TestNetworkPolicy(t *testing.T) {
	c := startCluster(t, 3)
	m := deployModel(t, c)
	m.converge(t, m.base)
	var worst time.Duration
	var worstStep string
	for _, tc := range netpolmodel.Cases() {
		if !slices.Contains(probeProtocols, tc.Context) {
			continue
		}
		t.Run(tc.FullName(), func(t *testing.T) {
			w := m.base.Clone()
			for i, step := range tc.Steps {
				step.Do(w)
				for _, chk := range step.Checks {
					if netpolmodel.Differ(w.Expect(chk.Port, chk.Proto), chk.Want(w).Expected) {
						t.Fatalf("step %d: upstream's expectation for %d/%s differs from the API's semantics", i, chk.Port, chk.Proto)
					}
				}
				m.apply(t, w)
				took := m.converge(t, w)
				t.Logf("step %d converged in %v (probing included)", i, took)
				if took > worst {
					worst, worstStep = took, fmt.Sprintf("%s, step %d", tc.FullName(), i)
				}
			}
			m.apply(t, m.base)
		})
	}
	t.Logf("the slowest step to converge (probing included): %v (%s)", worst, worstStep)
}

// TestNetworkPolicyNoWindowAtStart: a pod that a default-deny-egress policy
// selects tries to reach a server from the first instant its container
// runs, for three seconds, and never does; a pod the policy does not select,
// started the same way, does (so the first one's silence is the policy's).
func TestNetworkPolicyNoWindowAtStart(t *testing.T) {
	c := startCluster(t, 2)
	cs := c.Server.Clientset()
	ns := framework.NewNamespace(t, cs, "netpol-start")
	server := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Labels: map[string]string{"app": "server"}},
		Spec: corev1.PodSpec{NodeName: c.Nodes[1].Name, TerminationGracePeriodSeconds: new(int64(0)),
			Containers: []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever, Args: []string{"-ports", "80"}}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), server, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Server.MustKubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/server", "--timeout=120s")
	s, err := cs.CoreV1().Pods(ns).Get(ctx(t), "server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deny := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-egress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"isolated": "true"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx(t), deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(s.Status.PodIP, "80") + "/tcp"
	for _, isolated := range []string{"true", "false"} {
		// Both on the node the server is not on, so the first packet
		// crosses the overlay as well as the policies.
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "client-isolated-" + isolated, Labels: map[string]string{"isolated": isolated}},
			Spec: corev1.PodSpec{NodeName: c.Nodes[0].Name, RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: new(int64(0)),
				Containers: []corev1.Container{{Name: "client", Image: webImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"unreachable", target, "3s"}}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for isolated, phase := range map[string]corev1.PodPhase{"true": corev1.PodSucceeded, "false": corev1.PodFailed} {
		name := "client-isolated-" + isolated
		var got corev1.PodPhase
		framework.Eventually(t, 120*time.Second, func() (bool, error) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got = p.Status.Phase
			return got == corev1.PodSucceeded || got == corev1.PodFailed, nil
		}, "pod %s to finish", name)
		if got != phase {
			logs, _, _ := c.Server.Kubectl("-n", ns, "logs", name)
			t.Errorf("%s: phase %s, want %s (its log: %s)", name, got, phase, logs)
		}
	}
}
