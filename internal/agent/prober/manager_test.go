package prober

import (
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// scripted is an Execer whose exec probes succeed or fail as told, per
// command name, and counts the runs.
type scripted struct {
	mu    sync.Mutex
	fail  map[string]bool
	calls map[string]int
}

func (s *scripted) exec(id string, cmd []string, _ time.Duration) ([]byte, []byte, int32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[cmd[0]]++
	if s.fail[cmd[0]] {
		return []byte("boom"), nil, 1, nil
	}
	return nil, nil, 0, nil
}

func (s *scripted) set(cmd string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[cmd] = fail
}

func (s *scripted) count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
}

type managerHarness struct {
	t       *testing.T
	m       *Manager
	ex      *scripted
	pod     *corev1.Pod
	now     time.Time
	changed int
	events  []string
}

func execProbe(cmd string, failure, success int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
		PeriodSeconds: 1, FailureThreshold: failure, SuccessThreshold: success}
}

func newManagerHarness(t *testing.T, c corev1.Container) *managerHarness {
	h := &managerHarness{t: t, ex: &scripted{fail: map[string]bool{}, calls: map[string]int{}}, now: time.Unix(1000, 0)}
	h.pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	h.m = NewManager(Options{
		Execer:  fakeExec(h.ex.exec),
		Changed: func(types.UID) { h.changed++ },
		Event: func(_ *corev1.Pod, c *corev1.Container, typ, reason, msg string) {
			h.events = append(h.events, typ+" "+reason+": "+msg)
		},
		Now: func() time.Time { return h.now },
	})
	h.m.manual = true
	t.Cleanup(h.m.Stop)
	return h
}

// run sets the container's instance and probes it once for a kind.
func (h *managerHarness) probe(kind Kind, id string, running bool) {
	h.t.Helper()
	h.m.UpdatePod(h.pod, "10.0.0.9", []ContainerState{{Name: "c", ID: id, Running: running, StartedAt: time.Unix(1000, 0)}})
	w := h.m.pods[h.pod.UID].workers[workerKey{"c", kind}]
	if w == nil {
		h.t.Fatalf("no %v worker", kind)
	}
	w.doProbe(h.m.ctx)
}

func (h *managerHarness) result(kind Kind, id string) string {
	r, ok := h.m.Result(h.pod.UID, "c", kind, id)
	if !ok {
		return "none"
	}
	return r.String()
}

func TestReadinessThresholds(t *testing.T) {
	h := newManagerHarness(t, corev1.Container{Name: "c", ReadinessProbe: execProbe("ready", 2, 2)})
	if got := h.result(Readiness, "c1"); got != "none" {
		t.Fatalf("result before any probe: %s", got)
	}
	// Two successes are needed.
	h.probe(Readiness, "c1", true)
	if got := h.result(Readiness, "c1"); got != "Failure" || h.changed != 0 {
		t.Fatalf("after one success: %s (changed %d)", got, h.changed)
	}
	h.probe(Readiness, "c1", true)
	if got := h.result(Readiness, "c1"); got != "Success" || h.changed != 1 {
		t.Fatalf("after two successes: %s (changed %d)", got, h.changed)
	}
	// One failure is tolerated, two are not.
	h.ex.set("ready", true)
	h.probe(Readiness, "c1", true)
	if got := h.result(Readiness, "c1"); got != "Success" {
		t.Fatalf("after one failure: %s", got)
	}
	h.probe(Readiness, "c1", true)
	if got := h.result(Readiness, "c1"); got != "Failure" || h.changed != 2 {
		t.Fatalf("after two failures: %s (changed %d)", got, h.changed)
	}
	if len(h.events) != 2 || h.events[0] != "Warning Unhealthy: Readiness probe failed: boom" {
		t.Errorf("events %q", h.events)
	}
	// A stopped container is not probed; a new instance starts unready.
	n := h.ex.count("ready")
	h.probe(Readiness, "c1", false)
	if h.ex.count("ready") != n {
		t.Error("a stopped container was probed")
	}
	h.ex.set("ready", false)
	h.m.UpdatePod(h.pod, "10.0.0.9", []ContainerState{{Name: "c", ID: "c2", Running: true, StartedAt: time.Unix(1000, 0)}})
	if got := h.result(Readiness, "c2"); got != "none" {
		t.Errorf("new instance: %s", got)
	}
}

func TestLivenessFailureHoldsUntilANewInstance(t *testing.T) {
	h := newManagerHarness(t, corev1.Container{Name: "c", LivenessProbe: execProbe("alive", 1, 1)})
	h.probe(Liveness, "c1", true)
	if got := h.result(Liveness, "c1"); got != "Success" || h.changed != 0 {
		t.Fatalf("healthy: %s (changed %d)", got, h.changed)
	}
	h.ex.set("alive", true)
	h.probe(Liveness, "c1", true)
	if got := h.result(Liveness, "c1"); got != "Failure" || h.changed != 1 {
		t.Fatalf("failed: %s (changed %d)", got, h.changed)
	}
	// On hold while it is killed.
	h.probe(Liveness, "c1", true)
	if n := h.ex.count("alive"); n != 2 {
		t.Errorf("probed %d times, want 2 (on hold after the failure)", n)
	}
	// The restarted instance is probed again, from Success.
	h.ex.set("alive", false)
	h.probe(Liveness, "c2", true)
	if got := h.result(Liveness, "c2"); got != "Success" || h.ex.count("alive") != 3 {
		t.Errorf("new instance: %s, %d probes", got, h.ex.count("alive"))
	}
	if !strings.HasPrefix(strings.Join(h.events, "\n"), "Warning Unhealthy: Liveness probe failed: boom") {
		t.Errorf("events %q", h.events)
	}
}

func TestStartupProbeGatesTheOthers(t *testing.T) {
	c := corev1.Container{Name: "c", StartupProbe: execProbe("started", 3, 1), LivenessProbe: execProbe("alive", 1, 1)}
	c.LivenessProbe.InitialDelaySeconds = 5
	h := newManagerHarness(t, c)
	h.ex.set("started", true)
	h.ex.set("alive", true)
	h.probe(Liveness, "c1", true)
	if h.ex.count("alive") != 0 {
		t.Fatal("liveness probed before the container started")
	}
	h.probe(Startup, "c1", true)
	if got := h.result(Startup, "c1"); got != "Unknown" {
		t.Fatalf("startup after one failure of three: %s", got)
	}
	h.ex.set("started", false)
	h.probe(Startup, "c1", true)
	if got := h.result(Startup, "c1"); got != "Success" {
		t.Fatalf("startup: %s", got)
	}
	h.probe(Startup, "c1", true)
	if h.ex.count("started") != 2 {
		t.Errorf("startup probed %d times, want 2 (not after success)", h.ex.count("started"))
	}
	// Liveness now runs, after its initial delay.
	h.probe(Liveness, "c1", true)
	if h.ex.count("alive") != 0 {
		t.Fatal("liveness probed within its initial delay")
	}
	h.now = h.now.Add(6 * time.Second)
	h.probe(Liveness, "c1", true)
	if h.ex.count("alive") != 1 || h.result(Liveness, "c1") != "Failure" {
		t.Errorf("liveness after the delay: %d probes, %s", h.ex.count("alive"), h.result(Liveness, "c1"))
	}
}

func TestStartupFailure(t *testing.T) {
	h := newManagerHarness(t, corev1.Container{Name: "c", StartupProbe: execProbe("started", 2, 1)})
	h.ex.set("started", true)
	h.probe(Startup, "c1", true)
	h.probe(Startup, "c1", true)
	if got := h.result(Startup, "c1"); got != "Failure" || h.changed != 1 {
		t.Errorf("startup after two failures: %s (changed %d)", got, h.changed)
	}
}

func TestRemovePodForgets(t *testing.T) {
	h := newManagerHarness(t, corev1.Container{Name: "c", ReadinessProbe: execProbe("ready", 1, 1)})
	h.probe(Readiness, "c1", true)
	h.m.RemovePod(h.pod.UID)
	if got := h.result(Readiness, "c1"); got != "none" {
		t.Errorf("result after RemovePod: %s", got)
	}
	var nilManager *Manager
	nilManager.UpdatePod(h.pod, "", nil)
	if _, ok := nilManager.Result("u", "c", Liveness, "x"); ok {
		t.Error("a nil manager has results")
	}
}

// TestWorkersRun checks the goroutines: a pod's readiness worker probes on
// its own and reports the change.
func TestWorkersRun(t *testing.T) {
	ex := &scripted{fail: map[string]bool{}, calls: map[string]int{}}
	changed := make(chan types.UID, 10)
	m := NewManager(Options{Execer: fakeExec(ex.exec), Changed: func(uid types.UID) { changed <- uid }})
	defer m.Stop()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", ReadinessProbe: execProbe("ready", 1, 1)}}}}
	m.UpdatePod(pod, "10.0.0.9", []ContainerState{{Name: "c", ID: "c1", Running: true, StartedAt: time.Now()}})
	select {
	case uid := <-changed:
		if uid != "u1" {
			t.Errorf("changed %s", uid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no readiness result within 5s")
	}
	if r, ok := m.Result("u1", "c", Readiness, "c1"); !ok || r != Success {
		t.Errorf("result %v %v", r, ok)
	}
	m.RemovePod("u1")
}
