package scheduler_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUnschedulable checks, on a cluster of its own, the FailedScheduling
// Event and PodScheduled condition of pods that fit nowhere, in
// upstream's words, and that they are retried when a node comes.
func TestUnschedulable(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	ns := newNamespace(t, cs)

	// No node at all.
	createPod(t, cs, ns, podSpec{name: "early", cpu: "100m"})
	if msg := waitUnschedulable(t, cs, ns, "early"); msg != "no nodes available to schedule pods" {
		t.Errorf("message with no nodes: %q", msg)
	}
	waitEvent(t, cs, ns, "early", "FailedScheduling", "no nodes available to schedule pods")

	createNode(t, cs, nodeSpec{name: "n0", cpu: "2"})
	if got := waitBound(t, cs, ns, "early"); got != "n0" {
		t.Errorf("pod bound to %s after n0 came, want n0", got)
	}
	createNode(t, cs, nodeSpec{name: "n1", cpu: "2"})
	createNode(t, cs, nodeSpec{name: "n2", cpu: "2", taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}}})
	// Fill n0 and n1 with pods of the same priority as the next one.
	for _, name := range []string{"fill-0", "fill-1"} {
		createPod(t, cs, ns, podSpec{name: name, cpu: "1400m"})
		waitBound(t, cs, ns, name)
	}

	createPod(t, cs, ns, podSpec{name: "big", cpu: "1"})
	const want = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, 2 Insufficient cpu. " +
		"preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
	if msg := waitUnschedulable(t, cs, ns, "big"); msg != want {
		t.Errorf("PodScheduled message:\n got %q\nwant %q", msg, want)
	}
	ev := waitEvent(t, cs, ns, "big", "FailedScheduling", want)
	if ev.Type != corev1.EventTypeWarning || ev.Message != want {
		t.Errorf("FailedScheduling event: type %s, message %q", ev.Type, ev.Message)
	}
	if ev.ReportingController != corev1.DefaultSchedulerName && ev.Source.Component != corev1.DefaultSchedulerName {
		t.Errorf("event reported by %q/%q, want %s", ev.ReportingController, ev.Source.Component, corev1.DefaultSchedulerName)
	}

	// A new node is a cluster event: the pod is retried and bound there.
	createNode(t, cs, nodeSpec{name: "n3", cpu: "2"})
	if got := waitBound(t, cs, ns, "big"); got != "n3" {
		t.Errorf("pod bound to %s, want n3", got)
	}
	waitEvent(t, cs, ns, "big", "Scheduled", "Successfully assigned "+ns+"/big to n3")
	pod, err := cs.CoreV1().Pods(ns).Get(ctx(t), "big", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			t.Errorf("bound pod has PodScheduled=%s", c.Status)
		}
	}
}
