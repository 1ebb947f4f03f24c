package storage_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// apply applies a manifest in a namespace.
func apply(t testing.TB, s *framework.Server, ns, manifest string) {
	t.Helper()
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
}

// podExec runs a command in a pod's first container.
func podExec(t testing.TB, s *framework.Server, ns, pod string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(s.MustKubectl(t, append([]string{"-n", ns, "exec", pod, "--"}, args...)...))
}

// claimPod is a pod of the web image mounting claim at /data.
func claimPod(name, claim string, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
%s  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: %s}
`, name, extra, webImage, claim)
}

// claim is a claim of class (the default one if empty) for size.
func claim(name, class, size, dataSource string) string {
	sc := ""
	if class != "" {
		sc = "  storageClassName: " + class + "\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s}
spec:
%s  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: %s}}
%s`, name, sc, size, dataSource)
}

// waitClaim waits for a claim to satisfy cond.
func waitClaim(t testing.TB, cs kubernetes.Interface, ns, name, what string, cond func(*corev1.PersistentVolumeClaim) bool) *corev1.PersistentVolumeClaim {
	t.Helper()
	var c *corev1.PersistentVolumeClaim
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		got, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c = got
		return cond(got), nil
	}, "claim %s/%s %s", ns, name, what)
	return c
}

func bound(c *corev1.PersistentVolumeClaim) bool { return c.Status.Phase == corev1.ClaimBound }

// volumeOf returns the volume bound to a claim.
func volumeOf(t testing.TB, cs kubernetes.Interface, ns, name string) *corev1.PersistentVolume {
	t.Helper()
	c := waitClaim(t, cs, ns, name, "bound", bound)
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx(t), c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// waitEvent waits for an event of the object with the reason whose message
// contains substr, and returns the message.
func waitEvent(t testing.TB, cs kubernetes.Interface, ns, kind, name, reason, substr string) string {
	t.Helper()
	var msg string
	var seen []string
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		l, err := cs.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		seen = seen[:0]
		for _, e := range l.Items {
			if e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("event %s %q of %s %s/%s: %v; events of it: %q", reason, substr, kind, ns, name, err, seen)
	}
	return msg
}

// deletePod deletes a pod and waits until it is gone (or replaced by a
// pod of the same name, as a StatefulSet's).
func deletePod(t testing.TB, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	old, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx(t), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		return err != nil || p.UID != old.UID, nil
	}, "pod %s/%s gone", ns, name)
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
