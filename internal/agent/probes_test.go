package agent

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/agent/prober"
)

// fakeProbes is a probeManager whose results the test sets.
type fakeProbes struct {
	mu      sync.Mutex
	results map[string]prober.Result
	updates map[types.UID][]prober.ContainerState
	podIPs  map[types.UID]string
}

func newFakeProbes() *fakeProbes {
	return &fakeProbes{results: map[string]prober.Result{}, updates: map[types.UID][]prober.ContainerState{}, podIPs: map[types.UID]string{}}
}

func probeKey(uid types.UID, name string, kind prober.Kind, id string) string {
	return string(uid) + "/" + name + "/" + kind.String() + "/" + id
}

func (f *fakeProbes) set(uid types.UID, name string, kind prober.Kind, id string, r prober.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results[probeKey(uid, name, kind, id)] = r
}

func (f *fakeProbes) UpdatePod(pod *corev1.Pod, podIP string, containers []prober.ContainerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates[pod.UID] = containers
	f.podIPs[pod.UID] = podIP
}

func (f *fakeProbes) RemovePod(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.updates, uid)
}

func (f *fakeProbes) Result(uid types.UID, name string, kind prober.Kind, id string) (prober.Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.results[probeKey(uid, name, kind, id)]
	return r, ok
}

func (f *fakeProbes) Stop() {}

// runningID returns the id of the running instance of a container.
func (h *harness) runningID(name string) string {
	h.t.Helper()
	for id, c := range h.rt.containers {
		if c.c.Metadata.Name == name && c.c.State == isRunning {
			return id
		}
	}
	h.t.Fatalf("no running %s", name)
	return ""
}

func execProbe(cmd ...string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}, PeriodSeconds: 1, FailureThreshold: 1}
}

func TestLivenessFailureKillsAndRestarts(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	c := &pod.Spec.Containers[0]
	c.LivenessProbe = execProbe("check")
	c.LivenessProbe.TerminationGracePeriodSeconds = new(int64(5))
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"bye"}}}}
	h := newHarness(t, pod)
	probes := h.a.probes.(*fakeProbes)
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer web attempt=0", "StartContainer web")
	id := h.runningID("web")
	if got := probes.updates[pod.UID]; len(got) != 1 || got[0].ID != id || !got[0].Running || probes.podIPs[pod.UID] != "10.42.0.7" {
		t.Fatalf("prober told %+v (pod IP %q)", got, probes.podIPs[pod.UID])
	}
	h.events()

	// Healthy: nothing happens.
	probes.set(pod.UID, "web", prober.Liveness, id, prober.Success)
	h.sync()
	h.expectCalls()

	// Failed: preStop, then SIGTERM with the probe's grace period, and a
	// restart at the next sync.
	probes.set(pod.UID, "web", prober.Liveness, id, prober.Failure)
	requeue, _ := h.sync()
	h.expectCalls("ExecSync web bye", "StopContainer web timeout=5")
	if requeue > 10*time.Millisecond {
		t.Errorf("requeue %v after a kill", requeue)
	}
	if ev := h.events(); !strings.Contains(ev, "Normal Killing Container web failed liveness probe, will be restarted") {
		t.Errorf("events:\n%s", ev)
	}
	h.sync()
	h.expectCalls("CreateContainer web attempt=1", "StartContainer web")
	if cs := ctrStatus(h.pod(), "web"); cs.RestartCount != 1 || cs.State.Running == nil || cs.LastTerminationState.Terminated == nil {
		t.Errorf("restarted container %+v", cs)
	}

	// A startup failure with restartPolicy Never kills without restart.
	never := testPod(corev1.RestartPolicyNever, nil, "web")
	never.Spec.Containers[0].StartupProbe = execProbe("started")
	h = newHarness(t, never)
	probes = h.a.probes.(*fakeProbes)
	h.sync()
	h.rt.Calls()
	probes.set(never.UID, "web", prober.Startup, h.runningID("web"), prober.Failure)
	h.sync()
	h.expectCalls("StopContainer web timeout=30")
	if ev := h.events(); !strings.Contains(ev, "Normal Killing Container web failed startup probe\n") && !strings.HasSuffix(ev, "Normal Killing Container web failed startup probe") {
		t.Errorf("events:\n%s", ev)
	}
	h.sync()
	h.sync()
	if calls := h.rt.Calls(); slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "CreateContainer") }) {
		t.Errorf("restarted under restartPolicy Never: %v", calls)
	}
}

func TestProbesSetReadyAndStarted(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web", "plain")
	pod.Spec.Containers[0].StartupProbe = execProbe("started")
	pod.Spec.Containers[0].ReadinessProbe = execProbe("ready")
	h := newHarness(t, pod)
	probes := h.a.probes.(*fakeProbes)
	h.sync()
	id := h.runningID("web")
	check := func(what string, started, ready bool, podReady corev1.ConditionStatus) {
		t.Helper()
		h.sync()
		p := h.pod()
		cs := ctrStatus(p, "web")
		if *cs.Started != started || cs.Ready != ready || condition(p.Status, corev1.PodReady).Status != podReady ||
			condition(p.Status, corev1.ContainersReady).Status != podReady {
			t.Errorf("%s: started=%v ready=%v Ready=%s, want %v %v %s", what, *cs.Started, cs.Ready,
				condition(p.Status, corev1.PodReady).Status, started, ready, podReady)
		}
		if plain := ctrStatus(p, "plain"); !plain.Ready || !*plain.Started {
			t.Errorf("%s: a container without probes is not ready: %+v", what, plain)
		}
	}
	check("before any probe", false, false, corev1.ConditionFalse)
	probes.set(pod.UID, "web", prober.Startup, id, prober.Success)
	check("started", true, false, corev1.ConditionFalse)
	probes.set(pod.UID, "web", prober.Readiness, id, prober.Success)
	check("ready", true, true, corev1.ConditionTrue)
	if msg := condition(h.pod().Status, corev1.PodReady).Message; msg != "" {
		t.Errorf("message %q", msg)
	}
	probes.set(pod.UID, "web", prober.Readiness, id, prober.Failure)
	check("unready again", true, false, corev1.ConditionFalse)
	if c := condition(h.pod().Status, corev1.PodReady); c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [web]" {
		t.Errorf("Ready condition %+v", c)
	}
}

func TestPostStartHook(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"setup", "-x"}}}}
	h := newHarness(t, pod)
	h.rt.execFn = func(id string, cmd []string) ([]byte, int32, error) { return []byte("no luck"), 3, nil }
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer web attempt=0", "StartContainer web", "ExecSync web setup -x", "StopContainer web timeout=30")
	ev := h.events()
	for _, want := range []string{
		`Warning FailedPostStartHook Exec lifecycle hook ([setup -x]) for Container "web" in Pod "p_ns(u1)" failed - error: command 'setup -x' exited with 3: , message: "no luck"`,
		"Normal Killing FailedPostStartHook",
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event %q in:\n%s", want, ev)
		}
	}
	if w := ctrStatus(h.pod(), "web").State.Waiting; w == nil || w.Reason != reasonPostStartHookError || !strings.Contains(w.Message, "Exec lifecycle hook") {
		t.Errorf("status after a failed postStart: %+v", ctrStatus(h.pod(), "web"))
	}
	// It starts again, and a hook that works leaves it running.
	h.rt.execFn = nil
	h.sync()
	h.expectCalls("CreateContainer web attempt=1", "StartContainer web", "ExecSync web setup -x")
	if cs := ctrStatus(h.pod(), "web"); cs.State.Running == nil {
		t.Errorf("container after a good postStart: %+v", cs)
	}
}

func TestPreStopHookOnDeletion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hook  *corev1.LifecycleHandler
		grace int64
		fail  bool
		calls []string
		event string
	}{
		{"exec within the grace period", &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}, 10, false,
			[]string{"ExecSync web drain", "StopContainer web timeout=10"}, ""},
		{"failing exec", &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}, 10, true,
			[]string{"ExecSync web drain", "StopContainer web timeout=10"}, "Warning FailedPreStopHook PreStopHook failed"},
		{"sleep takes from the grace period", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}, 4, false,
			[]string{"StopContainer web timeout=3"}, ""},
		{"sleep longer than the grace period", &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 60}}, 1, false,
			[]string{"StopContainer web timeout=2"}, ""},
		{"force deletion skips the hook", &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}, 0, false,
			[]string{"StopContainer web timeout=2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(corev1.RestartPolicyAlways, nil, "web")
			pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: tc.hook}
			h := newHarness(t, pod)
			if tc.fail {
				h.rt.execFn = func(string, []string) ([]byte, int32, error) { return nil, 1, nil }
			}
			h.sync()
			h.rt.Calls()
			h.events()
			p := h.pod()
			now := metav1.NewTime(h.clock)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, new(tc.grace)
			if _, err := h.cs.CoreV1().Pods(h.ns).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			h.refresh()
			start := time.Now()
			h.sync()
			if took := time.Since(start); took > time.Duration(max(tc.grace, 1)+1)*time.Second {
				t.Errorf("termination took %v, beyond the grace period", took)
			}
			calls := h.rt.Calls()
			var got []string
			for _, c := range calls {
				if strings.HasPrefix(c, "ExecSync") || strings.HasPrefix(c, "StopContainer") {
					got = append(got, c)
				}
			}
			if !slices.Equal(got, tc.calls) {
				t.Errorf("calls %v, want %v", got, tc.calls)
			}
			ev := h.events()
			if !strings.Contains(ev, "Normal Killing Stopping container web") {
				t.Errorf("events:\n%s", ev)
			}
			if tc.event != "" && !strings.Contains(ev, tc.event) || tc.event == "" && strings.Contains(ev, "FailedPreStopHook") {
				t.Errorf("events:\n%s\nwant %q", ev, tc.event)
			}
		})
	}
}
