package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// harness drives syncPod for one pod against a fake runtime and a fake
// API, playing the informer's part by hand.
type harness struct {
	t     *testing.T
	a     *Agent
	rt    *fakeRuntime
	cs    *fake.Clientset
	rec   *record.FakeRecorder
	w     *podWorker
	ns    string
	name  string
	clock time.Time
}

func newHarness(t *testing.T, pod *corev1.Pod) *harness {
	t.Helper()
	h := &harness{t: t, ns: pod.Namespace, name: pod.Name, clock: t0}
	now := func() time.Time { return h.clock }
	h.cs = fake.NewClientset(pod)
	h.rt = newFakeRuntime()
	h.rt.now = now
	h.rec = record.NewFakeRecorder(1000)
	h.newAgent(pod)
	return h
}

// newAgent gives the harness a fresh agent (as after a restart) sharing
// the fake runtime and API.
func (h *harness) newAgent(pod *corev1.Pod) {
	h.t.Helper()
	now := func() time.Time { return h.clock }
	h.a = &Agent{
		nodeName: "n1", dirs: newLayout(h.t.TempDir()), client: h.cs, rt: h.rt, runtimeName: "containerd",
		recorder: h.rec, objects: apiObjects{client: h.cs}, now: now,
		crashBO: newBackoff(initialBackoff, maxBackoff, now), pullBO: newBackoff(initialBackoff, maxBackoff, now),
		sandboxBO: newBackoff(time.Second, time.Minute, now),
		hostDNS:   &runtimeapi.DNSConfig{}, hostIPs: []string{"192.0.2.2"}, machine: machineInfo{MemTotal: 8 << 30},
		probes: newFakeProbes(),
	}
	h.a.podIndexer = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*corev1.Pod).UID)}, nil
	}})
	if err := h.a.podIndexer.Add(pod); err != nil {
		h.t.Fatal(err)
	}
	h.w = &podWorker{uid: pod.UID, notify: make(chan struct{}, 1)}
}

// sync runs one sync and then updates the informer's copy of the pod.
func (h *harness) sync() (time.Duration, bool) {
	h.t.Helper()
	requeue, done := h.a.syncPod(context.Background(), h.w)
	h.refresh()
	return requeue, done
}

func (h *harness) refresh() {
	h.t.Helper()
	p, err := h.cs.CoreV1().Pods(h.ns).Get(context.Background(), h.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		for _, obj := range h.a.podIndexer.List() {
			_ = h.a.podIndexer.Delete(obj)
		}
		return
	}
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.a.podIndexer.Update(p); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) pod() *corev1.Pod {
	h.t.Helper()
	p, err := h.cs.CoreV1().Pods(h.ns).Get(context.Background(), h.name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// events drains the recorded events.
func (h *harness) events() string {
	var out []string
	for {
		select {
		case e := <-h.rec.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

// statusWrites counts and forgets the pod status updates made.
func (h *harness) statusWrites() int {
	n := 0
	for _, a := range h.cs.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	h.cs.ClearActions()
	return n
}

func (h *harness) expectCalls(want ...string) {
	h.t.Helper()
	got := h.rt.Calls()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("runtime calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func ctrStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}

func TestSyncRunsRestartsAndTerminatesAPod(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, []string{"setup"}, "web")
	pod.Spec.NodeName = "n1"
	pod.Status.Phase = corev1.PodPending
	h := newHarness(t, pod)

	// The sandbox, then the init container alone.
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer setup attempt=0", "StartContainer setup")
	if p := h.pod(); p.Status.Phase != corev1.PodPending || p.Status.PodIP != "10.42.0.7" || ctrStatus(p, "web").State.Waiting.Reason != "PodInitializing" {
		t.Fatalf("status after the first sync: %+v", p.Status)
	}
	// Nothing to do while it runs.
	h.sync()
	h.expectCalls()

	// The init container finished: the regular one starts.
	h.rt.Exit("setup", 0)
	h.sync()
	h.expectCalls("CreateContainer web attempt=0", "StartContainer web")
	p := h.pod()
	if p.Status.Phase != corev1.PodRunning || condition(p.Status, corev1.PodReady).Status != corev1.ConditionTrue {
		t.Fatalf("status of the running pod: %+v", p.Status)
	}
	h.statusWrites()

	// Steady state: no runtime calls, no status writes.
	h.sync()
	h.expectCalls()
	if n := h.statusWrites(); n != 0 {
		t.Errorf("%d status writes in steady state", n)
	}

	// The first crash restarts at once, the second backs off 10s.
	h.clock = h.clock.Add(time.Minute)
	h.rt.Exit("web", 1)
	h.sync()
	h.expectCalls("CreateContainer web attempt=1", "StartContainer web")
	h.clock = h.clock.Add(time.Second)
	h.rt.Exit("web", 1)
	requeue, _ := h.sync()
	h.expectCalls()
	cs := ctrStatus(h.pod(), "web")
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonCrashLoopBackOff || cs.RestartCount != 1 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Fatalf("crash-looping container: %+v", cs)
	}
	if requeue != 10*time.Second {
		t.Errorf("requeue after %v, want the 10s back-off", requeue)
	}
	if ev := h.events(); !strings.Contains(ev, "Warning BackOff Back-off restarting failed container web") {
		t.Errorf("events:\n%s", ev)
	}
	h.clock = h.clock.Add(10 * time.Second)
	h.sync()
	h.expectCalls("CreateContainer web attempt=2", "StartContainer web")
	if cs := ctrStatus(h.pod(), "web"); cs.State.Running == nil || cs.RestartCount != 2 {
		t.Fatalf("restarted container: %+v", cs)
	}

	// Deletion: SIGTERM with the grace period, final status, delete.
	p = h.pod()
	now := metav1.NewTime(h.clock)
	p.DeletionTimestamp = &now
	p.DeletionGracePeriodSeconds = new(int64(7))
	if _, err := h.cs.CoreV1().Pods(h.ns).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.refresh()
	h.cs.ClearActions()
	h.sync()
	calls := h.rt.Calls()
	if !slices.Contains(calls, "StopContainer web timeout=7") || !slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "StopPodSandbox") }) {
		t.Fatalf("termination calls %v", calls)
	}
	var deleted bool
	for _, a := range h.cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok {
			o := d.GetDeleteOptions()
			deleted = o.GracePeriodSeconds != nil && *o.GracePeriodSeconds == 0 && o.Preconditions != nil && *o.Preconditions.UID == pod.UID
		}
	}
	if !deleted {
		t.Fatalf("no final delete with grace 0 and the UID precondition: %v", h.cs.Actions())
	}
	// The pod is gone: its sandbox is removed and the worker is done.
	_, done := h.sync()
	if !done {
		t.Error("worker not done once the pod is gone")
	}
	if calls := h.rt.Calls(); !slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "RemovePodSandbox") }) {
		t.Errorf("cleanup calls %v", calls)
	}
	if len(h.rt.sandboxes)+len(h.rt.containers) != 0 {
		t.Errorf("left in the runtime: %v %v", h.rt.sandboxes, h.rt.containers)
	}
}

func TestSyncAdoptsRunningPods(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.NodeName = "n1"
	h := newHarness(t, pod)
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer web attempt=0", "StartContainer web")
	// A new agent (no memory of the pod) finds it running and leaves it.
	h.newAgent(h.pod())
	h.statusWrites()
	h.sync()
	h.expectCalls()
	if n := h.statusWrites(); n != 0 {
		t.Errorf("adopting a running pod wrote its status %d times", n)
	}
}

func TestSyncImagePullBackOff(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.Containers[0].Image = "missing"
	pod.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	h := newHarness(t, pod)
	h.rt.pullErr = errors.New("connection refused")

	requeue, _ := h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "PullImage missing")
	if w := ctrStatus(h.pod(), "web").State.Waiting; w == nil || w.Reason != reasonErrImagePull || w.Message != "connection refused" {
		t.Fatalf("after a failed pull: %+v", w)
	}
	if requeue != time.Second {
		t.Errorf("requeue %v", requeue)
	}
	requeue, _ = h.sync()
	h.expectCalls()
	if w := ctrStatus(h.pod(), "web").State.Waiting; w == nil || w.Reason != reasonImagePullBackOff {
		t.Fatalf("during the back-off: %+v", w)
	}
	if requeue != 10*time.Second {
		t.Errorf("requeue %v, want the 10s back-off", requeue)
	}
	ev := h.events()
	for _, want := range []string{"Normal Pulling Pulling image \"missing\"", "Warning Failed Failed to pull image \"missing\": connection refused",
		"Warning Failed Error: ErrImagePull", "Normal BackOff Back-off pulling image \"missing\""} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event %q in:\n%s", want, ev)
		}
	}
	// After the back-off the pull is tried again, and now works.
	h.clock = h.clock.Add(10 * time.Second)
	h.rt.pullErr = nil
	h.sync()
	h.expectCalls("PullImage missing", "CreateContainer web attempt=0", "StartContainer web")

	// Never does not pull.
	never := testPod(corev1.RestartPolicyAlways, nil, "web")
	never.Spec.Containers[0].Image = "absent"
	never.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	h = newHarness(t, never)
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0")
	if w := ctrStatus(h.pod(), "web").State.Waiting; w == nil || w.Reason != reasonErrImageNeverPull {
		t.Fatalf("pull policy Never: %+v", w)
	}
}

func TestSyncFinishesPods(t *testing.T) {
	pod := testPod(corev1.RestartPolicyNever, nil, "job")
	h := newHarness(t, pod)
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer job attempt=0", "StartContainer job")
	h.rt.Exit("job", 0)
	requeue, _ := h.sync()
	h.expectCalls()
	p := h.pod()
	if p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("phase %s", p.Status.Phase)
	}
	if requeue > 10*time.Millisecond {
		t.Errorf("requeue %v: a finished pod's sandbox should be stopped at once", requeue)
	}
	h.sync()
	if calls := h.rt.Calls(); len(calls) != 1 || !strings.HasPrefix(calls[0], "StopPodSandbox") {
		t.Errorf("finishing calls %v", calls)
	}
	// Nothing restarts a finished pod.
	h.sync()
	h.expectCalls()
	if p := h.pod(); p.Status.Phase != corev1.PodSucceeded || p.Status.PodIP != "10.42.0.7" {
		t.Errorf("finished pod status %+v", p.Status)
	}
}

func TestSyncWaitsForTheNetwork(t *testing.T) {
	h := newHarness(t, testPod(corev1.RestartPolicyAlways, nil, "web"))
	h.rt.networkOK = false
	requeue, _ := h.sync()
	h.expectCalls()
	if requeue != time.Second {
		t.Errorf("requeue %v", requeue)
	}
	if cs := ctrStatus(h.pod(), "web"); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonContainerCreating {
		t.Errorf("waiting for the network: %+v", cs)
	}
	// Host-network pods do not wait.
	host := testPod(corev1.RestartPolicyAlways, nil, "web")
	host.Spec.HostNetwork = true
	h = newHarness(t, host)
	h.rt.networkOK = false
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer web attempt=0", "StartContainer web")
	if p := h.pod(); p.Status.PodIP != "192.0.2.2" {
		t.Errorf("host-network pod IP %q, want the host's", p.Status.PodIP)
	}
}

func TestSyncConfigErrors(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsNonRoot: new(true)}
	h := newHarness(t, pod)
	requeue, _ := h.sync()
	h.expectCalls("RunPodSandbox p attempt=0")
	w := ctrStatus(h.pod(), "web").State.Waiting
	if w == nil || w.Reason != reasonCreateConfigError || !strings.Contains(w.Message, "runAsNonRoot and image will run as root") {
		t.Fatalf("runAsNonRoot with a root image: %+v", w)
	}
	if requeue <= 0 {
		t.Error("a configuration error is not retried")
	}
}

func TestSyncSandboxDied(t *testing.T) {
	h := newHarness(t, testPod(corev1.RestartPolicyAlways, nil, "web"))
	h.sync()
	h.rt.Calls()
	for id := range h.rt.sandboxes {
		if err := h.rt.StopPodSandbox(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	h.rt.Calls()
	h.sync()
	calls := h.rt.Calls()
	// A new sandbox, the container again (restart count goes on), and the
	// dead sandbox is removed.
	if len(calls) < 3 || calls[0] != "RunPodSandbox p attempt=1" || calls[1] != "CreateContainer web attempt=1" {
		t.Fatalf("calls after the sandbox died: %v", calls)
	}
	if cs := ctrStatus(h.pod(), "web"); cs.State.Running == nil || cs.RestartCount != 1 {
		t.Errorf("container after the sandbox died: %+v", cs)
	}
}

// TestSyncSandboxFailureBacksOffAndLeavesNothing: a sandbox whose creation
// failed is kept by the runtime (with its network namespace and address)
// until removed. Each retry removes it first, and retries back off: 1 s,
// 2 s, 4 s.
func TestSyncSandboxFailureBacksOffAndLeavesNothing(t *testing.T) {
	h := newHarness(t, testPod(corev1.RestartPolicyAlways, nil, "web"))
	h.rt.sandboxErr = errors.New(`failed to setup network for sandbox "x": plugin type="bridge" failed (add)`)
	requeue, _ := h.sync()
	if calls := h.rt.Calls(); len(calls) != 1 || calls[0] != "RunPodSandbox p attempt=0" {
		t.Fatalf("first sync: %v", calls)
	}
	if requeue != time.Second {
		t.Errorf("requeue after the first failure %v, want 1s", requeue)
	}
	if ev := h.events(); !strings.Contains(ev, "Warning FailedCreatePodSandBox Failed to create pod sandbox: failed to setup network") {
		t.Errorf("events %q, want FailedCreatePodSandBox", ev)
	}

	// Within the back-off: nothing is tried.
	h.clock = h.clock.Add(500 * time.Millisecond)
	if requeue, _ := h.sync(); requeue != 500*time.Millisecond {
		t.Errorf("requeue within the back-off %v, want 500ms", requeue)
	}
	if calls := h.rt.Calls(); len(calls) != 0 {
		t.Fatalf("calls within the back-off: %v", calls)
	}

	for _, wantDelay := range []time.Duration{2 * time.Second, 4 * time.Second} {
		h.clock = h.clock.Add(wantDelay)
		requeue, _ := h.sync()
		calls := h.rt.Calls()
		if len(calls) != 3 || !strings.HasPrefix(calls[0], "StopPodSandbox sb") || !strings.HasPrefix(calls[1], "RemovePodSandbox sb") || !strings.HasPrefix(calls[2], "RunPodSandbox p") {
			t.Fatalf("retry: %v, want the failed sandbox stopped and removed, then a new one", calls)
		}
		if requeue != wantDelay {
			t.Errorf("requeue %v, want %v", requeue, wantDelay)
		}
		if n := len(h.rt.sandboxes); n != 1 {
			t.Errorf("%d sandboxes in the runtime, want the one failed attempt", n)
		}
	}

	h.rt.sandboxErr = nil
	h.clock = h.clock.Add(4 * time.Second)
	h.sync()
	if n := len(h.rt.sandboxes); n != 1 {
		t.Fatalf("%d sandboxes after success, want 1", n)
	}
	for _, sb := range h.rt.sandboxes {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox %s is %v", sb.Id, sb.State)
		}
	}
	if cs := ctrStatus(h.pod(), "web"); cs.State.Running == nil {
		t.Errorf("container after the sandbox came up: %+v", cs)
	}
}
