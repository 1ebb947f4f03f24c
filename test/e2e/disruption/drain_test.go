package disruption_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

// TestDrain runs `kubectl drain` on nodes whose pods a budget covers.
func TestDrain(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	drain := func(node, timeout string) (string, error) {
		out, errOut, err := s.Kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout="+timeout)
		return out + errOut, err
	}

	t.Run("budget forbids", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs, "drain-blocked")
		node := newNode(t, cs, ns)
		kubelet(t, cs, ns, node)
		rs := newReplicaSet(t, cs, ns, "web", 3)
		names := []string{"web-0", "web-1", "web-2"}
		for _, name := range names {
			newPod(t, cs, ns, name, "web", node, rs)
		}
		waitReady(t, cs, ns, names...)
		newPDB(t, cs, ns, "web", "web", ptr.To(intstr.FromInt32(3)), nil)
		waitPDBStatus(t, cs, ns, "web", pdbStatus{Expected: 3, Healthy: 3, Desired: 3, Allowed: 0, Reason: policyv1.InsufficientPodsReason})

		// kubectl keeps retrying the refused evictions (every 5s) until
		// its timeout, then fails.
		out, err := drain(node, "6s")
		if err == nil {
			t.Fatalf("kubectl drain succeeded despite the budget:\n%s", out)
		}
		for _, want := range []string{"node/" + node + " cordoned", violation, "global timeout reached: 6s"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl drain output lacks %q:\n%s", want, out)
			}
		}
		n, err := cs.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
		if err != nil || !n.Spec.Unschedulable {
			t.Errorf("node %s not cordoned: %v", node, err)
		}
		for _, name := range names {
			p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
			if err != nil || p.DeletionTimestamp != nil {
				t.Errorf("pod %s evicted despite the budget: %v", name, err)
			}
		}
	})

	t.Run("budget allows", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, cs, "drain")
		node, other := newNode(t, cs, ns), newNode(t, cs, ns+"-other")
		kubelet(t, cs, ns, node, other)
		rs := newReplicaSet(t, cs, ns, "api", 4)
		drained := []*corev1.Pod{newPod(t, cs, ns, "api-0", "api", node, rs), newPod(t, cs, ns, "api-1", "api", node, rs),
			emptyDirPod(t, cs, ns, "api-2", node, rs)}
		newPod(t, cs, ns, "api-3", "api", other, rs)
		daemonPod(t, cs, ns, node)
		waitReady(t, cs, ns, "api-0", "api-1", "api-2", "api-3")
		waitDaemonPod(t, cs, ns, node)
		// One pod stays on the other node: the budget lets the three
		// on the drained node go.
		newPDB(t, cs, ns, "api", "api", ptr.To(intstr.FromInt32(1)), nil)
		waitPDBStatus(t, cs, ns, "api", pdbStatus{Expected: 4, Healthy: 4, Desired: 1, Allowed: 3, Reason: policyv1.SufficientPodsReason})

		out, err := drain(node, "60s")
		if err != nil {
			t.Fatalf("kubectl drain: %v\n%s", err, out)
		}
		for _, want := range []string{"node/" + node + " cordoned", "evicting pod " + ns + "/api-0",
			"pod/api-2 evicted", "ignoring DaemonSet-managed Pods: " + ns + "/agent-", "node/" + node + " drained"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl drain output lacks %q:\n%s", want, out)
			}
		}
		for _, p := range drained {
			podGone(t, cs, ns, p.Name, p.UID)
		}
		if p, err := cs.CoreV1().Pods(ns).Get(ctx(t), "api-3", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("pod api-3, on another node, should have stayed: %v", err)
		}
		waitDaemonPod(t, cs, ns, node)
		waitPDBStatus(t, cs, ns, "api", pdbStatus{Expected: 1, Healthy: 1, Desired: 1, Allowed: 0, Reason: policyv1.InsufficientPodsReason})

		// Draining again finds nothing to evict; uncordon makes the node
		// schedulable again.
		if out, err := drain(node, "30s"); err != nil || !strings.Contains(out, "node/"+node+" already cordoned") {
			t.Errorf("second drain: %v\n%s", err, out)
		}
		s.MustKubectl(t, "uncordon", node)
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			n, err := cs.CoreV1().Nodes().Get(ctx(t), node, metav1.GetOptions{})
			return err == nil && !n.Spec.Unschedulable, err
		}, "node %s still cordoned after uncordon", node)
	})
}

// emptyDirPod is a pod of app "api" with an emptyDir volume, which drain
// deletes only with --delete-emptydir-data.
func emptyDirPod(t *testing.T, cs kubernetes.Interface, ns, name, node string, rs *appsv1.ReplicaSet) *corev1.Pod {
	t.Helper()
	pod, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels("api"),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{Name: "c", Image: image,
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return pod
}

// waitDaemonPod waits for a Ready pod of the DaemonSet on node: the test's
// own, or the one a DaemonSet controller replaced it with.
func waitDaemonPod(t *testing.T, cs kubernetes.Interface, ns, node string) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=agent", FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				return true, nil
			}
		}
		return false, nil
	}, "no Ready pod of DaemonSet agent on node %s", node)
}

// daemonNodeLabel marks the nodes the tests' DaemonSet runs on.
const daemonNodeLabel = "e2e.havre.dev/daemons"

// daemonPod creates a DaemonSet on node and a pod of it, which drain leaves
// alone with --ignore-daemonsets.
func daemonPod(t *testing.T, cs kubernetes.Interface, ns, node string) {
	t.Helper()
	labels := map[string]string{"app": "agent"}
	patch := []byte(`{"metadata":{"labels":{"` + daemonNodeLabel + `":"true"}}}`)
	if _, err := cs.CoreV1().Nodes().Patch(ctx(t), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("labelling node %s: %v", node, err)
	}
	ds, err := cs.AppsV1().DaemonSets(ns).Create(ctx(t), &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// A DaemonSet controller would replace the test's pod, which
			// lacks the revision hash, on a rolling update.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// Should a DaemonSet controller run, the pod below is
					// the one it wants, on the one node it selects.
					NodeSelector: map[string]string{daemonNodeLabel: "true"},
					Containers:   []corev1.Container{{Name: "c", Image: image}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating daemonset: %v", err)
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + node, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: image}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the daemon pod: %v", err)
	}
}
