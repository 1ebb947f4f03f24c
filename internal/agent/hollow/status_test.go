package hollow

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestRunningStatusExitCodes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ip := netip.MustParseAddr("10.128.0.2")
	tests := []struct {
		name       string
		policy     corev1.RestartPolicy
		annotation string
		phase      corev1.PodPhase
		running    bool
		exitCode   int32 // of the terminated (or last terminated) state
		waiting    string
		ready      corev1.ConditionStatus
	}{
		{name: "runs forever", policy: corev1.RestartPolicyAlways, phase: corev1.PodRunning, running: true, ready: corev1.ConditionTrue},
		{name: "never without annotation runs", policy: corev1.RestartPolicyNever, phase: corev1.PodRunning, running: true, ready: corev1.ConditionTrue},
		{name: "never succeeds", policy: corev1.RestartPolicyNever, annotation: "0", phase: corev1.PodSucceeded, exitCode: 0, ready: corev1.ConditionFalse},
		{name: "never fails", policy: corev1.RestartPolicyNever, annotation: "3", phase: corev1.PodFailed, exitCode: 3, ready: corev1.ConditionFalse},
		{name: "onfailure succeeds", policy: corev1.RestartPolicyOnFailure, annotation: "0", phase: corev1.PodSucceeded, exitCode: 0, ready: corev1.ConditionFalse},
		{name: "onfailure crash-loops", policy: corev1.RestartPolicyOnFailure, annotation: "1", phase: corev1.PodRunning, exitCode: 1, waiting: "CrashLoopBackOff", ready: corev1.ConditionFalse},
		{name: "always crash-loops", policy: corev1.RestartPolicyAlways, annotation: "0", phase: corev1.PodRunning, exitCode: 0, waiting: "CrashLoopBackOff", ready: corev1.ConditionFalse},
		{name: "bad annotation ignored", policy: corev1.RestartPolicyNever, annotation: "x", phase: corev1.PodRunning, running: true, ready: corev1.ConditionTrue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("p", "h-0")
			pod.Spec.RestartPolicy = tc.policy
			if tc.annotation != "" {
				pod.Annotations = map[string]string{AnnotationExitCode: tc.annotation}
			}
			s := runningStatus(pod, "100.64.0.1", ip, now)
			if s.Phase != tc.phase {
				t.Errorf("phase %s, want %s", s.Phase, tc.phase)
			}
			cs := s.ContainerStatuses[0]
			switch {
			case tc.running:
				if cs.State.Running == nil || !cs.Ready {
					t.Errorf("container not running and ready: %+v", cs)
				}
			case tc.waiting != "":
				if cs.State.Waiting == nil || cs.State.Waiting.Reason != tc.waiting || cs.RestartCount != 1 ||
					cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != tc.exitCode {
					t.Errorf("container status %+v, want waiting %s after exit %d", cs, tc.waiting, tc.exitCode)
				}
			default:
				if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != tc.exitCode {
					t.Errorf("container status %+v, want terminated with %d", cs, tc.exitCode)
				}
			}
			if got := condition(s.Conditions, corev1.PodReady); got != tc.ready {
				t.Errorf("Ready=%s, want %s", got, tc.ready)
			}
			if s.PodIP != ip.String() || s.HostIP != "100.64.0.1" || s.StartTime == nil {
				t.Errorf("addresses/start: podIP %q hostIP %q start %v", s.PodIP, s.HostIP, s.StartTime)
			}
			// Stable: computing again over the written status changes
			// nothing.
			pod.Status = s
			if again := runningStatus(pod, "100.64.0.1", ip, now.Add(time.Minute)); !statusEqual(&s, &again) {
				t.Errorf("status is not stable:\n%+v\n%+v", s, again)
			}
		})
	}
}

func TestRunningStatusInitContainersAndGates(t *testing.T) {
	pod := testPod("p", "h-0")
	always := corev1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "i"}, {Name: "sidecar", Image: "s", RestartPolicy: &always}}
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/gate"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "x"}}
	s := runningStatus(pod, "100.64.0.1", netip.MustParseAddr("10.128.0.2"), time.Now())
	if ic := s.InitContainerStatuses; len(ic) != 2 || ic[0].State.Terminated == nil || ic[0].State.Terminated.ExitCode != 0 || ic[1].State.Running == nil {
		t.Errorf("init container statuses %+v", ic)
	}
	if got := condition(s.Conditions, corev1.ContainersReady); got != corev1.ConditionTrue {
		t.Errorf("ContainersReady=%s", got)
	}
	if got := condition(s.Conditions, corev1.PodReady); got != corev1.ConditionFalse {
		t.Errorf("Ready=%s with an unmet readiness gate", got)
	}
	if got := condition(s.Conditions, corev1.DisruptionTarget); got != corev1.ConditionTrue {
		t.Errorf("condition owned by others dropped: %+v", s.Conditions)
	}
}

func TestNodeAddresses(t *testing.T) {
	seen := map[string]bool{}
	cidrs := map[netip.Prefix]bool{}
	base := prefixSlot("x")
	for i := 0; i < 1000; i++ {
		n := newNode("x", i, base+uint32(i))
		if seen[n.hostIP] || cidrs[n.fakeCIDR] {
			t.Fatalf("node %d reuses an address: %s %s", i, n.hostIP, n.fakeCIDR)
		}
		seen[n.hostIP], cidrs[n.fakeCIDR] = true, true
		if !netip.MustParsePrefix("100.64.0.0/10").Contains(netip.MustParseAddr(n.hostIP)) || !netip.MustParsePrefix("10.128.0.0/9").Contains(n.fakeCIDR.Addr()) {
			t.Fatalf("node %d: addresses out of range: %s %s", i, n.hostIP, n.fakeCIDR)
		}
	}
}
