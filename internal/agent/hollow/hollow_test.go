package hollow

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func startAgent(t *testing.T, n int) (*fake.Clientset, *Agent) {
	t.Helper()
	client := fake.NewClientset()
	ready := make(chan struct{})
	a, err := newAgent(Options{
		Count: n, Prefix: "h", Workers: 4, Ready: ready,
		LeaseRenewInterval: 50 * time.Millisecond, StatusUpdateInterval: 50 * time.Millisecond,
	}, client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before the nodes were registered: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nodes were not registered within 10s")
	}
	return client, a
}

func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

func condition(conds []corev1.PodCondition, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range conds {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestNodesRegisterAndHeartbeat(t *testing.T) {
	client, _ := startAgent(t, 3)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("h-%d", i)
		eventually(t, "node "+name+" Ready", func() (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					return c.Status == corev1.ConditionTrue && c.Reason == "KubeletReady", nil
				}
			}
			return false, nil
		})
		n, _ := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		for k, v := range map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux", LabelHollow: "true"} {
			if n.Labels[k] != v {
				t.Errorf("%s: label %s=%q, want %q", name, k, n.Labels[k], v)
			}
		}
		if got := n.Status.Capacity.Cpu().String(); got != "4" {
			t.Errorf("%s: cpu capacity %s, want 4", name, got)
		}
		if got := n.Status.Capacity.Memory().String(); got != "16Gi" {
			t.Errorf("%s: memory capacity %s, want 16Gi", name, got)
		}
		if got := n.Status.Capacity.Pods().Value(); got != 110 {
			t.Errorf("%s: pods capacity %d, want 110", name, got)
		}
		if len(n.Status.Addresses) != 2 || n.Status.Addresses[0].Type != corev1.NodeInternalIP {
			t.Errorf("%s: addresses %v", name, n.Status.Addresses)
		}
		// The lease is renewed.
		var first time.Time
		eventually(t, "lease of "+name+" renewed", func() (bool, error) {
			l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if *l.Spec.HolderIdentity != name || *l.Spec.LeaseDurationSeconds != 40 {
				return false, fmt.Errorf("lease %+v", l.Spec)
			}
			if first.IsZero() {
				first = l.Spec.RenewTime.Time
				return false, nil
			}
			return l.Spec.RenewTime.After(first), nil
		})
	}
}

func TestNodeStatusRestoredAfterUnknown(t *testing.T) {
	client, _ := startAgent(t, 1)
	ctx := context.Background()
	n, err := client.CoreV1().Nodes().Get(ctx, "h-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionUnknown
			n.Status.Conditions[i].Reason = "NodeStatusUnknown"
		}
	}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ready restored", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, "h-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

func testPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort},
	}
}

func TestPodsRunAndTerminate(t *testing.T) {
	client, a := startAgent(t, 2)
	ctx := context.Background()
	pods := client.CoreV1().Pods("default")
	for _, p := range []*corev1.Pod{testPod("a", "h-0"), testPod("b", "h-0"), testPod("other", "not-hollow"), testPod("pending", "")} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ips := map[string]bool{}
	for _, name := range []string{"a", "b"} {
		eventually(t, "pod "+name+" Running and Ready", func() (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodRunning && condition(p.Status.Conditions, corev1.PodReady) == corev1.ConditionTrue, nil
		})
		p, _ := pods.Get(ctx, name, metav1.GetOptions{})
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !a.nodes["h-0"].fakeCIDR.Contains(ip) {
			t.Errorf("pod %s: podIP %q not in the node's pod CIDR %s", name, p.Status.PodIP, a.nodes["h-0"].fakeCIDR)
		}
		ips[p.Status.PodIP] = true
		if p.Status.HostIP != a.nodes["h-0"].hostIP {
			t.Errorf("pod %s: hostIP %q, want %q", name, p.Status.HostIP, a.nodes["h-0"].hostIP)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || cs[0].Image != "busybox" {
			t.Errorf("pod %s: container statuses %+v", name, cs)
		}
		for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			if got := condition(p.Status.Conditions, ct); got != corev1.ConditionTrue {
				t.Errorf("pod %s: condition %s=%q", name, ct, got)
			}
		}
	}
	if len(ips) != 2 {
		t.Errorf("pods share an IP: %v", ips)
	}
	for _, name := range []string{"other", "pending"} {
		p, _ := pods.Get(ctx, name, metav1.GetOptions{})
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("pod %s of another node was changed: %s", name, p.Status.Phase)
		}
	}

	// Graceful deletion: the fake client deletes at once, so mark the pod
	// terminating by hand as the API server would.
	p, _ := pods.Get(ctx, "a", metav1.GetOptions{})
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.DeletionGracePeriodSeconds = new(int64(30))
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "terminating pod deleted", func() (bool, error) {
		_, err := pods.Get(ctx, "a", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	// The kubelet reports the containers killed before deleting the pod.
	var final *corev1.Pod
	deleted := false
	for _, act := range client.Actions() {
		if up, ok := act.(k8stesting.UpdateAction); ok && act.GetSubresource() == "status" && act.GetResource().Resource == "pods" {
			if p := up.GetObject().(*corev1.Pod); p.Name == "a" && p.Status.Phase == corev1.PodFailed {
				final = p
			}
		}
		if del, ok := act.(k8stesting.DeleteAction); ok && del.GetName() == "a" && act.GetResource().Resource == "pods" {
			deleted = final != nil
			if g := del.GetDeleteOptions().GracePeriodSeconds; g == nil || *g != 0 {
				t.Errorf("pod deleted with grace period %v, want 0", g)
			}
		}
	}
	if final == nil || !deleted {
		t.Fatalf("want a Failed status written before the delete (final status %v, deleted after it %v)", final != nil, deleted)
	}
	if cs := final.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 137 {
		t.Errorf("final container statuses %+v", cs)
	}
	if got := condition(final.Status.Conditions, corev1.PodReady); got != corev1.ConditionFalse {
		t.Errorf("final Ready condition %q", got)
	}
	// Its address is free again.
	eventually(t, "address released", func() (bool, error) {
		a.ipsMu.Lock()
		defer a.ipsMu.Unlock()
		_, ok := a.ips["default/a"]
		return !ok, nil
	})
}
