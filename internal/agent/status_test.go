package agent

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// states
	isRunning = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited    = runtimeapi.ContainerState_CONTAINER_EXITED
	created   = runtimeapi.ContainerState_CONTAINER_CREATED
)

func testPod(policy corev1.RestartPolicy, inits []string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}, Spec: corev1.PodSpec{RestartPolicy: policy}}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "img"})
	}
	for _, n := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img"})
	}
	return p
}

func inst(name string, attempt uint32, state runtimeapi.ContainerState, exit int32) *containerState {
	c := &containerState{ID: name + "-" + string(rune('0'+attempt)), Name: name, SandboxID: "sb", Attempt: attempt, State: state,
		ImageRef: "sha256:img", CreatedAt: t0.Add(time.Duration(attempt) * time.Minute)}
	if state != created {
		c.StartedAt = c.CreatedAt.Add(time.Second)
	}
	if state == exited {
		c.FinishedAt = c.StartedAt.Add(time.Second)
		c.ExitCode = exit
		c.Reason = "Error"
		if exit == 0 {
			c.Reason = "Completed"
		}
	}
	return c
}

func condition(s corev1.PodStatus, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func TestComputeStatus(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		insts       []*containerState
		noSandbox   bool
		waiting     map[string]waitingState
		terminating bool
		phase       corev1.PodPhase
		ready       bool
		initialized bool
		check       func(t *testing.T, s corev1.PodStatus)
	}{
		{
			name: "no sandbox yet", pod: testPod(corev1.RestartPolicyAlways, nil, "web"), noSandbox: true,
			phase: corev1.PodPending, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				if s.PodIP != "" || s.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
					t.Errorf("status %+v", s)
				}
				if c := condition(s, corev1.PodReadyToStartContainers); c.Status != corev1.ConditionFalse {
					t.Errorf("PodReadyToStartContainers %+v", c)
				}
				if c := condition(s, corev1.ContainersReady); c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [web]" {
					t.Errorf("ContainersReady %+v", c)
				}
			},
		},
		{
			name: "running", pod: testPod(corev1.RestartPolicyAlways, nil, "web"), insts: []*containerState{inst("web", 0, isRunning, 0)},
			phase: corev1.PodRunning, ready: true, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				cs := s.ContainerStatuses[0]
				if s.PodIP != "10.42.0.9" || len(s.PodIPs) != 1 || s.HostIP != "192.0.2.2" || !*cs.Started || cs.ContainerID != "containerd://web-0" ||
					cs.ImageID != "sha256:img" || !cs.State.Running.StartedAt.Time.Equal(t0.Add(time.Second)) {
					t.Errorf("status %+v", s)
				}
			},
		},
		{
			name: "crash loop", pod: testPod(corev1.RestartPolicyAlways, nil, "web"),
			insts:   []*containerState{inst("web", 2, exited, 1), inst("web", 1, exited, 1)},
			waiting: map[string]waitingState{"web": {Reason: reasonCrashLoopBackOff, Message: "back-off 20s"}},
			phase:   corev1.PodRunning, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				cs := s.ContainerStatuses[0]
				if cs.RestartCount != 2 || cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonCrashLoopBackOff ||
					cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 || cs.LastTerminationState.Terminated.ContainerID != "containerd://web-2" {
					t.Errorf("container status %+v", cs)
				}
			},
		},
		{
			name: "restarted and running shows the last termination", pod: testPod(corev1.RestartPolicyAlways, nil, "web"),
			insts: []*containerState{inst("web", 1, isRunning, 0), {ID: "old", Name: "web", SandboxID: "sb", State: exited, ExitCode: 137, Reason: "OOMKilled", CreatedAt: t0}},
			phase: corev1.PodRunning, ready: true, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				if l := s.ContainerStatuses[0].LastTerminationState.Terminated; l == nil || l.Reason != "OOMKilled" || l.ExitCode != 137 {
					t.Errorf("last state %+v", s.ContainerStatuses[0].LastTerminationState)
				}
			},
		},
		{
			name: "never, succeeded", pod: testPod(corev1.RestartPolicyNever, nil, "job"), insts: []*containerState{inst("job", 0, exited, 0)},
			phase: corev1.PodSucceeded, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				if c := condition(s, corev1.PodReady); c.Reason != "PodCompleted" {
					t.Errorf("Ready %+v", c)
				}
				if s.ContainerStatuses[0].State.Terminated.Reason != "Completed" {
					t.Errorf("state %+v", s.ContainerStatuses[0].State)
				}
			},
		},
		{
			name: "never, failed", pod: testPod(corev1.RestartPolicyNever, nil, "job", "side"),
			insts: []*containerState{inst("job", 0, exited, 2), inst("side", 0, exited, 0)},
			phase: corev1.PodFailed, initialized: true,
		},
		{
			name: "never, one still running", pod: testPod(corev1.RestartPolicyNever, nil, "job", "side"),
			insts: []*containerState{inst("job", 0, exited, 2), inst("side", 0, isRunning, 0)},
			phase: corev1.PodRunning, initialized: true,
		},
		{
			name: "on failure, failed container restarts", pod: testPod(corev1.RestartPolicyOnFailure, nil, "job"),
			insts: []*containerState{inst("job", 0, exited, 1)}, waiting: map[string]waitingState{"job": {Reason: reasonCrashLoopBackOff}},
			phase: corev1.PodRunning, initialized: true,
		},
		{
			name: "on failure, succeeded", pod: testPod(corev1.RestartPolicyOnFailure, nil, "job"),
			insts: []*containerState{inst("job", 1, exited, 0), inst("job", 0, exited, 1)},
			phase: corev1.PodSucceeded, initialized: true,
		},
		{
			name: "init containers in progress", pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2"}, "web"),
			insts: []*containerState{inst("i1", 0, exited, 0), inst("i2", 0, isRunning, 0)},
			phase: corev1.PodPending,
			check: func(t *testing.T, s corev1.PodStatus) {
				if c := condition(s, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Message != "containers with incomplete status: [i2]" {
					t.Errorf("Initialized %+v", c)
				}
				if w := s.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
					t.Errorf("regular container %+v", s.ContainerStatuses[0].State)
				}
				if s.InitContainerStatuses[0].State.Terminated == nil || s.InitContainerStatuses[1].State.Running == nil {
					t.Errorf("init statuses %+v", s.InitContainerStatuses)
				}
			},
		},
		{
			name: "init containers done", pod: testPod(corev1.RestartPolicyAlways, []string{"i1"}, "web"),
			insts: []*containerState{inst("i1", 0, exited, 0), inst("web", 0, isRunning, 0)},
			phase: corev1.PodRunning, ready: true, initialized: true,
		},
		{
			name: "init container failed, never", pod: testPod(corev1.RestartPolicyNever, []string{"i1"}, "web"),
			insts: []*containerState{inst("i1", 0, exited, 3)},
			phase: corev1.PodFailed,
		},
		{
			name: "init container failed, always: back-off", pod: testPod(corev1.RestartPolicyAlways, []string{"i1"}, "web"),
			insts: []*containerState{inst("i1", 0, exited, 3)}, waiting: map[string]waitingState{"i1": {Reason: reasonCrashLoopBackOff}},
			phase: corev1.PodPending,
		},
		{
			name: "image pull error", pod: testPod(corev1.RestartPolicyAlways, nil, "web"),
			waiting: map[string]waitingState{"web": {Reason: reasonErrImagePull, Message: "not found"}},
			phase:   corev1.PodPending, initialized: true,
			check: func(t *testing.T, s corev1.PodStatus) {
				if w := s.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != reasonErrImagePull || w.Message != "not found" {
					t.Errorf("state %+v", s.ContainerStatuses[0].State)
				}
			},
		},
		{
			name: "created, not started", pod: testPod(corev1.RestartPolicyAlways, nil, "web"), insts: []*containerState{inst("web", 0, created, 0)},
			phase: corev1.PodPending, initialized: true,
		},
		{
			name: "terminated by deletion", pod: testPod(corev1.RestartPolicyAlways, nil, "web"), insts: []*containerState{inst("web", 0, exited, 137)},
			terminating: true, phase: corev1.PodFailed, initialized: true,
		},
		{
			name: "terminated by deletion, exited 0", pod: testPod(corev1.RestartPolicyAlways, nil, "web"), insts: []*containerState{inst("web", 0, exited, 0)},
			terminating: true, phase: corev1.PodSucceeded, initialized: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := statusInputs{
				pod: tc.pod, state: &podState{Containers: tc.insts}, sandboxID: "sb", sandboxReady: !tc.terminating,
				podIPs: []string{"10.42.0.9"}, hostIPs: []string{"192.0.2.2"}, waiting: tc.waiting, runtimeName: "containerd", now: t0.Add(time.Hour),
				terminating: tc.terminating,
			}
			if tc.noSandbox {
				in.sandboxID, in.sandboxReady, in.podIPs = "", false, nil
			}
			s := computeStatus(in)
			if s.Phase != tc.phase {
				t.Errorf("phase %s, want %s", s.Phase, tc.phase)
			}
			if got := condition(s, corev1.PodReady).Status == corev1.ConditionTrue; got != tc.ready {
				t.Errorf("Ready %v, want %v (%+v)", got, tc.ready, s.Conditions)
			}
			if got := condition(s, corev1.PodInitialized).Status == corev1.ConditionTrue; got != tc.initialized {
				t.Errorf("Initialized %v, want %v", got, tc.initialized)
			}
			if condition(s, corev1.PodScheduled).Status != corev1.ConditionTrue || s.StartTime == nil {
				t.Errorf("PodScheduled or startTime missing: %+v", s)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestComputeStatusKeepsWhatItDoesNotOwn(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	start := metav1.NewTime(t0)
	ready := metav1.NewTime(t0.Add(time.Minute))
	pod.Status = corev1.PodStatus{
		StartTime:         &start,
		NominatedNodeName: "n",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ready},
			{Type: "example.com/gate", Status: corev1.ConditionTrue},
		},
	}
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/gate"}}
	in := statusInputs{pod: pod, state: &podState{Containers: []*containerState{inst("web", 0, isRunning, 0)}}, sandboxID: "sb", sandboxReady: true,
		runtimeName: "containerd", now: t0.Add(time.Hour)}
	s := computeStatus(in)
	if !s.StartTime.Equal(&start) || s.NominatedNodeName != "n" {
		t.Errorf("startTime %v nominated %q", s.StartTime, s.NominatedNodeName)
	}
	if c := condition(s, corev1.PodReady); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&ready) {
		t.Errorf("Ready %+v: the transition time of an unchanged condition must be kept", c)
	}
	if c := condition(s, "example.com/gate"); c.Status != corev1.ConditionTrue {
		t.Errorf("readiness gate condition lost: %+v", s.Conditions)
	}
	if c := condition(s, corev1.ContainersReady); !c.LastTransitionTime.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("new condition's transition time %v", c.LastTransitionTime)
	}
	// Recomputing from the written status changes nothing.
	pod.Status = s
	again := computeStatus(in)
	if !statusEqual(&s, &again) {
		t.Errorf("status is not stable:\n%+v\n%+v", s, again)
	}

	// A missing readiness gate keeps the pod unready.
	pod.Status.Conditions = nil
	s = computeStatus(in)
	if c := condition(s, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" {
		t.Errorf("Ready without its gate: %+v", c)
	}
	// Terminal phases are final.
	pod.Status.Phase = corev1.PodFailed
	if s := computeStatus(in); s.Phase != corev1.PodFailed {
		t.Errorf("phase left Failed: %s", s.Phase)
	}
}

func TestContainerStatusFromPreviousStatus(t *testing.T) {
	// The runtime forgot the container (its sandbox was removed): the
	// restart count and last state come from the previous status.
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", RestartCount: 4,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
	s := computeStatus(statusInputs{pod: pod, state: &podState{}, sandboxID: "sb", runtimeName: "containerd", now: t0})
	cs := s.ContainerStatuses[0]
	if cs.RestartCount != 4 || cs.LastTerminationState.Terminated == nil || cs.State.Waiting == nil {
		t.Errorf("container status %+v", cs)
	}
	if n := nextAttempt(pod, &pod.Spec.Containers[0], &podState{}, false); n != 5 {
		t.Errorf("next attempt %d, want 5", n)
	}
	if n := nextAttempt(pod, &pod.Spec.Containers[0], &podState{Containers: []*containerState{inst("web", 7, exited, 1)}}, false); n != 8 {
		t.Errorf("next attempt %d, want 8", n)
	}
	fresh := testPod(corev1.RestartPolicyAlways, nil, "web")
	if n := nextAttempt(fresh, &fresh.Spec.Containers[0], &podState{}, false); n != 0 {
		t.Errorf("first attempt %d", n)
	}
	if !strings.HasPrefix(s.ContainerStatuses[0].State.Waiting.Reason, "Container") {
		t.Errorf("waiting %+v", s.ContainerStatuses[0].State.Waiting)
	}
}

func TestShouldRestart(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		exit   int32
		side   bool
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, false, true},
		{corev1.RestartPolicyAlways, 1, false, true},
		{corev1.RestartPolicyOnFailure, 0, false, false},
		{corev1.RestartPolicyOnFailure, 1, false, true},
		{corev1.RestartPolicyNever, 1, false, false},
		{corev1.RestartPolicyNever, 0, true, true}, // sidecars always restart
	} {
		pod := testPod(tc.policy, nil, "c")
		c := &pod.Spec.Containers[0]
		if tc.side {
			c.RestartPolicy = &always
		}
		if got := shouldRestart(pod, c, tc.exit); got != tc.want {
			t.Errorf("shouldRestart(%s, exit %d, sidecar %v) = %v", tc.policy, tc.exit, tc.side, got)
		}
	}
}
