package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/havre/havre/test/framework"
)

// TestProbes runs one node and checks probes, lifecycle hooks and volumes
// that follow their sources; each subtest has its own namespace and pods
// and runs in parallel with the others.
func TestProbes(t *testing.T) {
	s := startNode(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *framework.Server)
	}{
		{"LivenessRestarts", testLivenessRestarts},
		{"ReadinessTogglesReady", testReadinessTogglesReady},
		{"StartupDelaysLiveness", testStartupDelaysLiveness},
		{"ExecTCPAndGRPCProbes", testExecTCPAndGRPCProbes},
		{"PreStopOnDeletion", testPreStopOnDeletion},
		{"PostStart", testPostStart},
		{"ConfigMapUpdatesReachPods", testConfigMapUpdates},
		{"MemoryEmptyDirIsTmpfs", testMemoryEmptyDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s)
		})
	}
}

// webContainer is a container of the web image with extra arguments.
func webContainer(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: webImage, Args: args}
}

// createPod creates a pod with the given containers on the test node;
// mutate sets the rest.
func createPod(t *testing.T, s *framework.Server, ns, name string, mutate func(*corev1.Pod), containers ...corev1.Container) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{NodeName: nodeName, Containers: containers}}
	if mutate != nil {
		mutate(pod)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := s.Clientset().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
}

// fastProbe has the tightest timings: every second, one failure is enough.
func fastProbe(h corev1.ProbeHandler) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1}
}

func httpGetProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return fastProbe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}})
}

func conditionStatus(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// waitEvent waits for an Event about a pod containing want ("Type Reason:
// message", as events() prints them).
func waitEvent(t *testing.T, s *framework.Server, ns, name, want string, timeout time.Duration) {
	t.Helper()
	waitEvents(t, s, ns, name, timeout, want)
}

// waitEvents waits until the pod's events hold every one of wants (events
// are recorded asynchronously, after the status they go with) and returns
// them; it fails the test with the missing ones otherwise.
func waitEvents(t *testing.T, s *framework.Server, ns, name string, timeout time.Duration, wants ...string) string {
	t.Helper()
	var last string
	var missing []string
	if err := framework.WaitFor(timeout, func() (bool, error) {
		last = events(t, s, ns, name)
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(last, want) {
				missing = append(missing, want)
			}
		}
		return len(missing) == 0, nil
	}); err != nil {
		t.Fatalf("pod %s/%s: no event %q: %v\nevents:\n%s", ns, name, missing, err, last)
	}
	return last
}

// podGet GETs a path of the web server on a pod's IP.
func podGet(t *testing.T, p *corev1.Pod, port int, path string) string {
	t.Helper()
	return waitHTTP(t, fmt.Sprintf("http://%s:%d%s", p.Status.PodIP, port, path), 20*time.Second)
}

func testLivenessRestarts(t *testing.T, s *framework.Server) {
	ns := "liveness"
	createNamespace(t, s, ns)
	c := webContainer("web")
	c.LivenessProbe = httpGetProbe("/health", intstr.FromInt32(8080))
	// The liveness probe (one failure kills) waits for the server to
	// listen: on a loaded machine its first probe could come first.
	c.StartupProbe = httpGetProbe("/health", intstr.FromInt32(8080))
	c.StartupProbe.FailureThreshold = 60
	createPod(t, s, ns, "live", nil, c)
	p := waitPod(t, s, ns, "live", 60*time.Second, "Running and Ready", running)
	podGet(t, p, 8080, "/sethealth?ok=false")
	p = waitPod(t, s, ns, "live", 60*time.Second, "restarted after failing its liveness probe", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Running != nil
	})
	if cs := p.Status.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil {
		t.Errorf("no last termination state: %+v", cs)
	}
	for _, want := range []string{
		"Warning Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
		"Normal Killing: Container web failed liveness probe, will be restarted",
	} {
		waitEvent(t, s, ns, "live", want, 10*time.Second)
	}
	// The new instance is healthy and stays.
	waitPod(t, s, ns, "live", 30*time.Second, "Running and Ready after the restart", running)
}

func testReadinessTogglesReady(t *testing.T, s *framework.Server) {
	ns := "readiness"
	createNamespace(t, s, ns)
	c := webContainer("web")
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	c.ReadinessProbe = httpGetProbe("/health", intstr.FromString("http"))
	createPod(t, s, ns, "toggle", nil, c)
	// Probe headers: the User-Agent is the kubelet's and httpHeaders are
	// sent; without them the same path answers 400.
	headers := webContainer("web")
	headers.ReadinessProbe = httpGetProbe("/require-header?X-Probe=yes&User-Agent=kube-probe/1.37", intstr.FromInt32(8080))
	withHeader := headers.DeepCopy()
	withHeader.ReadinessProbe.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}
	createPod(t, s, ns, "headers", nil, *withHeader)
	createPod(t, s, ns, "noheader", nil, headers)

	p := waitPod(t, s, ns, "toggle", 60*time.Second, "Running and Ready", running)
	podGet(t, p, 8080, "/sethealth?ok=false")
	p = waitPod(t, s, ns, "toggle", 30*time.Second, "unready", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return conditionStatus(p, corev1.PodReady) == corev1.ConditionFalse && conditionStatus(p, corev1.ContainersReady) == corev1.ConditionFalse &&
			len(cs) == 1 && !cs[0].Ready && cs[0].State.Running != nil
	})
	if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || p.Status.Phase != corev1.PodRunning || cs.Started == nil || !*cs.Started {
		t.Errorf("an unready container: phase %s, %+v", p.Status.Phase, cs)
	}
	waitEvent(t, s, ns, "toggle", "Warning Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 500", 10*time.Second)
	podGet(t, p, 8080, "/sethealth?ok=true")
	waitPod(t, s, ns, "toggle", 30*time.Second, "Ready again", running)

	waitPod(t, s, ns, "headers", 60*time.Second, "Ready (probe headers sent)", running)
	waitEvent(t, s, ns, "noheader", "Readiness probe failed: HTTP probe failed with statuscode: 400", 60*time.Second)
	if p, err := getPod(t, s, ns, "noheader"); err != nil || conditionStatus(p, corev1.PodReady) == corev1.ConditionTrue {
		t.Errorf("a pod failing its readiness probe is Ready: %v %s", err, statusSummary(p))
	}
}

func testStartupDelaysLiveness(t *testing.T, s *framework.Server) {
	ns := "startup"
	createNamespace(t, s, ns)
	// Both answer /health only after 4 s; the liveness probe alone kills
	// the container before that, the startup probe holds it off.
	guarded := webContainer("web", "-ready-after", "4s")
	guarded.LivenessProbe = httpGetProbe("/health", intstr.FromInt32(8080))
	guarded.StartupProbe = httpGetProbe("/health", intstr.FromInt32(8080))
	guarded.StartupProbe.FailureThreshold = 30
	bare := webContainer("web", "-ready-after", "4s")
	bare.LivenessProbe = httpGetProbe("/health", intstr.FromInt32(8080))
	createPod(t, s, ns, "guarded", nil, guarded)
	createPod(t, s, ns, "bare", nil, bare)

	waitPod(t, s, ns, "guarded", 60*time.Second, "running but not started", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Running != nil && cs[0].Started != nil && !*cs[0].Started && !cs[0].Ready
	})
	p := waitPod(t, s, ns, "guarded", 60*time.Second, "Running and Ready", running)
	if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.Started == nil || !*cs.Started {
		t.Errorf("the startup probe did not hold off the liveness probe: %+v\nevents:\n%s", cs, events(t, s, ns, "guarded"))
	}
	waitPod(t, s, ns, "bare", 60*time.Second, "killed by its liveness probe", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1
	})
}

func testExecTCPAndGRPCProbes(t *testing.T, s *framework.Server) {
	ns := "kinds"
	createNamespace(t, s, ns)
	c := webContainer("web", "-grpc", ":9090")
	c.StartupProbe = fastProbe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-probe", "http://127.0.0.1:8080/health"}}})
	c.StartupProbe.FailureThreshold = 30
	c.LivenessProbe = fastProbe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}})
	c.ReadinessProbe = fastProbe(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}})
	createPod(t, s, ns, "kinds", nil, c)
	failing := webContainer("web")
	failing.ReadinessProbe = fastProbe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-exit", "3"}}})
	failing.LivenessProbe = fastProbe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(81)}})
	createPod(t, s, ns, "failing", nil, failing)
	slow := webContainer("web")
	slow.ReadinessProbe = fastProbe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-sleep", "5s", "-exit", "0"}}})
	createPod(t, s, ns, "slowexec", nil, slow)

	p := waitPod(t, s, ns, "kinds", 60*time.Second, "Running and Ready (exec startup, grpc readiness)", running)
	podGet(t, p, 8080, "/sethealth?ok=false")
	waitPod(t, s, ns, "kinds", 30*time.Second, "unready (grpc NOT_SERVING)", func(p *corev1.Pod) bool {
		return conditionStatus(p, corev1.PodReady) == corev1.ConditionFalse
	})
	waitEvent(t, s, ns, "kinds", `Readiness probe failed: service unhealthy (responded with "NOT_SERVING")`, 10*time.Second)
	podGet(t, p, 8080, "/sethealth?ok=true")
	p = waitPod(t, s, ns, "kinds", 30*time.Second, "Ready again", running)
	if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 {
		t.Errorf("the tcp liveness probe restarted a healthy container: %+v\nevents:\n%s", cs, events(t, s, ns, "kinds"))
	}

	waitEvent(t, s, ns, "failing", "Readiness probe failed: exiting with code 3", 60*time.Second)
	waitEvent(t, s, ns, "failing", ":81: connect: connection refused", 60*time.Second)
	waitPod(t, s, ns, "failing", 30*time.Second, "restarted by its tcp liveness probe", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && !cs[0].Ready
	})
	// An exec probe that outlives its timeoutSeconds fails.
	waitEvent(t, s, ns, "slowexec", `Readiness probe failed: command "/web -sleep 5s -exit 0" timed out`, 60*time.Second)
	if p, err := getPod(t, s, ns, "slowexec"); err != nil || conditionStatus(p, corev1.PodReady) == corev1.ConditionTrue {
		t.Errorf("a pod whose exec readiness probe times out is Ready: %v %s", err, statusSummary(p))
	}
}

func testPreStopOnDeletion(t *testing.T, s *framework.Server) {
	ns := "prestop"
	createNamespace(t, s, ns)
	dir := t.TempDir()
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	hostVolume := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirOrCreate}}}}
		p.Spec.TerminationGracePeriodSeconds = new(int64(30))
	}
	mount := []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	execHook := webContainer("exec", "-term-append", "/host/exec=term")
	execHook.VolumeMounts = mount
	execHook.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-append", "/host/exec=prestop", "-exit", "0"}}}}
	httpHook := webContainer("http", "-listen", ":8081", "-term-append", "/host/http=term")
	httpHook.VolumeMounts = mount
	httpHook.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/append?path=/host/http&line=prestop", Port: intstr.FromInt32(8081)}}}
	createPod(t, s, ns, "hooks", hostVolume, execHook, httpHook)
	bad := webContainer("web")
	bad.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-exit", "1"}}}}
	createPod(t, s, ns, "badhook", nil, bad)

	hooks := waitPod(t, s, ns, "hooks", 60*time.Second, "Running and Ready", running)
	podGet(t, hooks, 8080, "/healthz")
	podGet(t, hooks, 8081, "/healthz")
	waitPod(t, s, ns, "badhook", 60*time.Second, "Running and Ready", running)
	for _, name := range []string{"hooks", "badhook"} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := s.Clientset().CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 25*time.Second, func() (bool, error) {
			_, err := getPod(t, s, ns, name)
			return isNotFound(err), nil
		}, "pod %s removed well within its 30s grace period", name)
		t.Logf("pod %s deleted in %v", name, time.Since(start).Round(time.Millisecond))
	}
	for _, f := range []string{"exec", "http"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(data) != "prestop\nterm\n" {
			t.Errorf("%s hook: the container wrote %q (%v), want the preStop hook's line then SIGTERM's", f, data, err)
		}
	}
	if ev := waitEvents(t, s, ns, "hooks", 10*time.Second, "Normal Killing: Stopping container exec"); strings.Contains(ev, "FailedPreStopHook") {
		t.Errorf("events:\n%s", ev)
	}
	waitEvent(t, s, ns, "badhook", "Warning FailedPreStopHook: PreStopHook failed", 10*time.Second)
}

func testPostStart(t *testing.T, s *framework.Server) {
	ns := "poststart"
	createNamespace(t, s, ns)
	work := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	mount := []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	web := webContainer("web")
	web.VolumeMounts = mount
	web.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-append", "/work/poststart=exec", "-exit", "0"}}}}
	// An httpGet hook, to the first container's server (the second
	// container's own may not listen yet when its hook runs).
	second := webContainer("second", "-listen", ":8081")
	second.VolumeMounts = mount
	second.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/append?path=/work/http&line=http", Port: intstr.FromInt32(8080)}}}
	createPod(t, s, ns, "hooked", work, web, second)
	bad := webContainer("web")
	bad.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/web", "-exit", "1"}}}}
	createPod(t, s, ns, "badstart", nil, bad)

	p := waitPod(t, s, ns, "hooked", 60*time.Second, "Running and Ready", running)
	if got := podGet(t, p, 8080, "/file?path=/work/poststart"); got != "exec\n" {
		t.Errorf("exec postStart hook wrote %q", got)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		got, err := httpGet("http://" + p.Status.PodIP + ":8080/file?path=/work/http")
		return strings.HasPrefix(got, "http\n"), err
	}, "the httpGet postStart hook ran")

	waitPod(t, s, ns, "badstart", 60*time.Second, "restarted after its postStart hook failed", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1
	})
	pod, err := getPod(t, s, ns, "badstart")
	if err != nil {
		t.Fatal(err)
	}
	waitEvents(t, s, ns, "badstart", 10*time.Second,
		fmt.Sprintf(`Warning FailedPostStartHook: Exec lifecycle hook ([/web -exit 1]) for Container "web" in Pod "badstart_poststart(%s)" failed - error: command '/web -exit 1' exited with 1`, pod.UID),
		"Normal Killing: FailedPostStartHook")
}

func testConfigMapUpdates(t *testing.T, s *framework.Server) {
	ns := "cmupdate"
	createNamespace(t, s, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cms := s.Clientset().CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"greeting": "hello"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	volumes := func(p *corev1.Pod) {
		p.Labels = map[string]string{"tier": "one"}
		p.Spec.Volumes = []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}},
			}}}},
		}
	}
	c := webContainer("web")
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/cfg"},
		{Name: "proj", MountPath: "/proj"},
		{Name: "cfg", MountPath: "/sub/greeting", SubPath: "greeting"},
	}
	createPod(t, s, ns, "reader", volumes, c)
	p := waitPod(t, s, ns, "reader", 60*time.Second, "Running and Ready", running)
	for path, want := range map[string]string{
		"/cfg/greeting": "hello", "/cfg/..data/greeting": "hello", "/proj/greeting": "hello", "/proj/labels": `tier="one"`, "/sub/greeting": "hello",
	} {
		if got := podGet(t, p, 8080, "/file?path="+path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if _, err := httpGet("http://" + p.Status.PodIP + ":8080/file?path=/proj/token"); err == nil {
		t.Error("a token file was written (the API server issues no tokens)")
	}

	// The update reaches the volumes (not the subPath mount, as upstream).
	cm.Data["greeting"] = "bye"
	start := time.Now()
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/cfg/greeting", "/proj/greeting"} {
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			got, err := httpGet("http://" + p.Status.PodIP + ":8080/file?path=" + path)
			return got == "bye", err
		}, "%s updated", path)
	}
	t.Logf("configMap update reached the pod in %v", time.Since(start).Round(time.Millisecond))
	if got := podGet(t, p, 8080, "/file?path=/sub/greeting"); got != "hello" {
		t.Errorf("subPath mount = %q, want the content it was started with", got)
	}

	// A label change reaches the downward API file.
	patch := []byte(`{"metadata":{"labels":{"tier":"two"}}}`)
	if _, err := s.Clientset().CoreV1().Pods(ns).Patch(ctx, "reader", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		got, err := httpGet("http://" + p.Status.PodIP + ":8080/file?path=/proj/labels")
		return got == `tier="two"`, err
	}, "labels file updated")
}

func testMemoryEmptyDir(t *testing.T, s *framework.Server) {
	ns := "tmpfs"
	createNamespace(t, s, ns)
	limit := resource.MustParse("16Mi")
	c := webContainer("web")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}
	createPod(t, s, ns, "ram", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}}}
	}, c)
	p := waitPod(t, s, ns, "ram", 60*time.Second, "Running and Ready", running)
	line := firstLine(podGet(t, p, 8080, "/file?path=/proc/mounts"), " /cache ")
	if f := strings.Fields(line); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(f[3], "size=16384k") {
		t.Errorf("/cache is mounted as %q, want a tmpfs of 16Mi", line)
	}
	// The tmpfs goes with the pod.
	if !hostMountsContain(string(p.UID)) {
		t.Fatal("no mount of the pod's on the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.Clientset().CoreV1().Pods(ns).Delete(ctx, "ram", metav1.DeleteOptions{GracePeriodSeconds: new(int64(1))}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		return !hostMountsContain(string(p.UID)), nil
	}, "the pod's tmpfs unmounted after deletion")
}

// hostMountsContain reports whether a mount point of this host contains s.
func hostMountsContain(s string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.Contains(fields[4], s) {
			return true
		}
	}
	return false
}
