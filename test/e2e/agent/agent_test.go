package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// overrides binds a `kubectl run` pod to the test node (there is no
// scheduler yet) and sets extra pod spec fields.
func overrides(spec map[string]any) string {
	if spec == nil {
		spec = map[string]any{}
	}
	spec["nodeName"] = nodeName
	data, _ := json.Marshal(map[string]any{"apiVersion": "v1", "spec": spec})
	return string(data)
}

// TestAgent runs one node and checks, in turn, what pods do on it.
func TestAgent(t *testing.T) {
	s := startNode(t)
	t.Run("NodeRegisters", func(t *testing.T) { testNodeRegisters(t, s) })
	t.Run("PodRunsAndServes", func(t *testing.T) { testPodRunsAndServes(t, s) })
	t.Run("Environment", func(t *testing.T) { testEnvironment(t, s) })
	t.Run("CrashLoopBackOff", func(t *testing.T) { testCrashLoopBackOff(t, s) })
	t.Run("ImagePullBackOff", func(t *testing.T) { testImagePullBackOff(t, s) })
	t.Run("InitContainers", func(t *testing.T) { testInitContainers(t, s) })
	t.Run("GracefulDeletion", func(t *testing.T) { testGracefulDeletion(t, s) })
	t.Run("OOMKilled", func(t *testing.T) { testOOMKilled(t, s) })
	t.Run("SecurityContext", func(t *testing.T) { testSecurityContext(t, s) })
	t.Run("HostPort", func(t *testing.T) { testHostPort(t, s) })
	t.Run("StartupLatencyAndRSS", func(t *testing.T) { testStartupLatencyAndRSS(t, s) })
}

func testHostPort(t *testing.T, s *framework.Server) {
	ns := "hostport"
	createNamespace(t, s, ns)
	port, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.MustKubectl(t, "-n", ns, "run", "exposed", "--image="+webImage, "--overrides="+overrides(map[string]any{"containers": []any{map[string]any{
		"name": "exposed", "image": webImage, "ports": []any{map[string]any{"containerPort": 8080, "hostPort": port}},
	}}}))
	waitPod(t, s, ns, "exposed", 60*time.Second, "Running and Ready", running)
	if body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 20*time.Second); body != "web exposed\n" {
		t.Errorf("GET through the host port = %q", body)
	}
}

// testStartupLatencyAndRSS measures how long one pod takes from creation to
// Ready (seen through a watch), and the memory of the server (API server
// and agent) and of the agent's containerd once idle.
func testStartupLatencyAndRSS(t *testing.T, s *framework.Server) {
	ns := "latency"
	createNamespace(t, s, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pods := s.Clientset().CoreV1().Pods(ns)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=fast"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	start := time.Now()
	_, err = pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Spec: corev1.PodSpec{
		NodeName: nodeName, Containers: []corev1.Container{{Name: "web", Image: webImage}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var latency time.Duration
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok && running(p) {
			latency = time.Since(start)
			break
		}
	}
	if latency == 0 {
		t.Fatalf("pod not Ready: %v", ctx.Err())
	}
	t.Logf("pod startup latency (create → Ready, watched): %v", latency.Round(time.Millisecond))

	rss := func(pid int) string {
		b, err := framework.ProcessRSS(pid)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	data, err := os.ReadFile(filepath.Join(s.DataDir(), "agent", "containerd", "containerd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	t.Logf("RSS after the suite's pods ran: havre server (API server + agent) %s, containerd %s", rss(s.PID()), rss(cpid))
}

func testOOMKilled(t *testing.T, s *framework.Server) {
	ns := "oom"
	createNamespace(t, s, ns)
	s.MustKubectl(t, "-n", ns, "run", "hog", "--image="+webImage, "--overrides="+overrides(map[string]any{"containers": []any{map[string]any{
		"name": "hog", "image": webImage, "resources": map[string]any{"limits": map[string]any{"memory": "32Mi"}},
	}}}))
	pod := waitPod(t, s, ns, "hog", 60*time.Second, "Running and Ready", running)
	waitHTTP(t, "http://"+pod.Status.PodIP+":8080/healthz", 20*time.Second)
	_, _ = httpGet("http://" + pod.Status.PodIP + ":8080/alloc?mb=100") // killed while answering
	pod = waitPod(t, s, ns, "hog", 60*time.Second, "restarted after an OOM kill", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].LastTerminationState.Terminated != nil
	})
	last := pod.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last.Reason != "OOMKilled" || last.ExitCode != 137 {
		t.Errorf("last termination %+v, want OOMKilled with exit code 137", last)
	}
}

func testSecurityContext(t *testing.T, s *framework.Server) {
	ns := "security"
	createNamespace(t, s, ns)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: locked}
spec:
  nodeName: %[1]s
  securityContext: {runAsUser: 1234, runAsGroup: 5678, runAsNonRoot: true}
  containers:
  - name: web
    image: %[2]s
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
---
apiVersion: v1
kind: Pod
metadata: {name: rootimage}
spec:
  nodeName: %[1]s
  containers:
  - name: web
    image: %[2]s
    securityContext: {runAsNonRoot: true}
`, nodeName, webImage)
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
	pod := waitPod(t, s, ns, "locked", 60*time.Second, "Running and Ready", running)
	status := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/file?path=/proc/self/status", 20*time.Second)
	for _, want := range []string{"Uid:\t1234\t1234\t1234\t1234", "Gid:\t5678\t5678\t5678\t5678", "NoNewPrivs:\t1",
		"CapBnd:\t0000000000000400"} { // NET_BIND_SERVICE alone
		if !strings.Contains(status, want) {
			t.Errorf("/proc/self/status lacks %q:\n%s", want, status)
		}
	}
	if _, err := httpGet("http://" + pod.Status.PodIP + ":8080/file?path=/etc/hostname"); err != nil {
		t.Errorf("reading a file: %v", err)
	}
	mounts := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/file?path=/proc/self/mounts", 5*time.Second)
	if line := firstLine(mounts, " / "); !strings.Contains(line, " ro,") {
		t.Errorf("root filesystem is not read-only: %q", line)
	}
	waitPod(t, s, ns, "rootimage", 30*time.Second, "CreateContainerConfigError for a root image", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CreateContainerConfigError" &&
			strings.Contains(cs[0].State.Waiting.Message, "runAsNonRoot and image will run as root")
	})
}

// firstLine returns the first line of text containing sub.
func firstLine(text, sub string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func testNodeRegisters(t *testing.T, s *framework.Server) {
	node := waitNodeReady(t, s)
	if node.Labels["kubernetes.io/hostname"] != nodeName || node.Labels["kubernetes.io/os"] != "linux" || node.Labels["kubernetes.io/arch"] == "" {
		t.Errorf("node labels %v", node.Labels)
	}
	info := node.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") || !strings.HasPrefix(info.KubeletVersion, "v1.") || info.KernelVersion == "" || info.OSImage == "" {
		t.Errorf("node info %+v", info)
	}
	if node.Status.Capacity.Cpu().IsZero() || node.Status.Capacity.Memory().IsZero() || node.Status.Capacity.Pods().Value() != 110 ||
		node.Status.Allocatable.StorageEphemeral().IsZero() {
		t.Errorf("capacity %v allocatable %v", node.Status.Capacity, node.Status.Allocatable)
	}
	var internal, hostname bool
	for _, a := range node.Status.Addresses {
		internal = internal || a.Type == corev1.NodeInternalIP && a.Address != ""
		hostname = hostname || a.Type == corev1.NodeHostName && a.Address == nodeName
	}
	if !internal || !hostname {
		t.Errorf("addresses %v", node.Status.Addresses)
	}
	for _, want := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		found := false
		for _, c := range node.Status.Conditions {
			if c.Type == want {
				found = true
				if c.Status != corev1.ConditionFalse {
					t.Errorf("condition %s is %s", want, c.Status)
				}
			}
		}
		if !found {
			t.Errorf("no %s condition", want)
		}
	}
	if _, cluster, err := net.ParseCIDR(s.ClusterCIDR()); err != nil {
		t.Error(err)
	} else if ip, podNet, err := net.ParseCIDR(node.Spec.PodCIDR); err != nil || !cluster.Contains(ip) || podNet.Mask.String() != net.CIDRMask(24, 32).String() {
		t.Errorf("pod CIDR %q: want a /24 of the cluster CIDR %s", node.Spec.PodCIDR, s.ClusterCIDR())
	}
	// The heartbeat: a Lease renewed every 10 seconds.
	var first *coordinationv1.Lease
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		l, err := s.Clientset().CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != nodeName || l.Spec.RenewTime == nil {
			return false, fmt.Errorf("lease %+v", l.Spec)
		}
		if first == nil {
			first = l
			return false, nil
		}
		return l.Spec.RenewTime.After(first.Spec.RenewTime.Time), nil
	}, "the node lease is renewed")
	out := s.MustKubectl(t, "get", "nodes")
	if !strings.Contains(out, nodeName) || !strings.Contains(out, "Ready") {
		t.Errorf("kubectl get nodes:\n%s", out)
	}
}

func testPodRunsAndServes(t *testing.T, s *framework.Server) {
	ns := "run"
	createNamespace(t, s, ns)
	start := time.Now()
	s.MustKubectl(t, "-n", ns, "run", "web", "--image="+webImage, "--port=8080", "--env=GREETING=hello",
		"--overrides="+overrides(nil))
	pod := waitPod(t, s, ns, "web", 60*time.Second, "Running and Ready", running)
	t.Logf("pod startup latency (kubectl run → Ready in the API): %v", time.Since(start).Round(time.Millisecond))

	body := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/", 20*time.Second)
	if body != "web web\n" {
		t.Errorf("GET / = %q, want the pod's hostname", body)
	}
	env := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/env", 5*time.Second)
	if !strings.Contains(env, "GREETING=hello\n") {
		t.Errorf("environment lacks GREETING:\n%s", env)
	}

	cs := pod.Status.ContainerStatuses
	if len(cs) != 1 || !cs[0].Ready || cs[0].Started == nil || !*cs[0].Started || cs[0].RestartCount != 0 ||
		!strings.HasPrefix(cs[0].ContainerID, "containerd://") || cs[0].ImageID == "" || cs[0].State.Running == nil {
		t.Errorf("container statuses %+v", cs)
	}
	if pod.Status.HostIP == "" || pod.Status.StartTime == nil || pod.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("status %+v", pod.Status)
	}
	want := map[corev1.PodConditionType]bool{corev1.PodReadyToStartContainers: true, corev1.PodInitialized: true,
		corev1.ContainersReady: true, corev1.PodReady: true, corev1.PodScheduled: true}
	for _, c := range pod.Status.Conditions {
		if want[c.Type] && c.Status == corev1.ConditionTrue {
			delete(want, c.Type)
		}
	}
	if len(want) > 0 {
		t.Errorf("conditions not True: %v (have %+v)", want, pod.Status.Conditions)
	}
	waitEvents(t, s, ns, "web", 10*time.Second, " Pulled: ", " Created: ", " Started: ")
	out := s.MustKubectl(t, "-n", ns, "get", "pod", "web", "-o", "wide")
	if !strings.Contains(out, "Running") || !strings.Contains(out, pod.Status.PodIP) || !strings.Contains(out, nodeName) {
		t.Errorf("kubectl get pod -o wide:\n%s", out)
	}
}

func testEnvironment(t *testing.T, s *framework.Server) {
	ns := "env"
	createNamespace(t, s, ns)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, size: large}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: envpod, labels: {app: envpod}}
spec:
  nodeName: %s
  containers:
  - name: web
    image: %s
    workingDir: /
    envFrom:
    - configMapRef: {name: settings}
      prefix: CM_
    env:
    - {name: FIRST, value: one}
    - {name: SECOND, value: "$(FIRST)-two"}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: COLOR
      valueFrom: {configMapKeyRef: {name: settings, key: color}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MEM_LIMIT_MI
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    resources:
      limits: {memory: 64Mi, cpu: 200m}
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
  volumes:
  - name: settings
    configMap: {name: settings}
`, nodeName, webImage)
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
	pod := waitPod(t, s, ns, "envpod", 60*time.Second, "Running and Ready", running)
	env := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/env", 20*time.Second)
	kube, err := s.Clientset().CoreV1().Services("default").Get(framework.RequestContext(t), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FIRST=one", "SECOND=one-two", "POD_NAME=envpod", "POD_NAMESPACE=env", "POD_IP=" + pod.Status.PodIP,
		"NODE_NAME=" + nodeName, "APP=envpod", "COLOR=blue", "PASSWORD=s3cret", "MEM_LIMIT_MI=64", "CM_color=blue", "CM_size=large",
		"KUBERNETES_SERVICE_HOST=" + kube.Spec.ClusterIP, "KUBERNETES_SERVICE_PORT=443",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	if got := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/file?path=/etc/settings/size", 5*time.Second); got != "large" {
		t.Errorf("configMap volume file: %q", got)
	}
	if pod.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("QoS class %s, want Guaranteed", pod.Status.QOSClass)
	}

	// A reference to a missing ConfigMap is the user's error.
	s.MustKubectl(t, "-n", ns, "run", "missing", "--image="+webImage,
		"--overrides="+overrides(map[string]any{"containers": []any{map[string]any{
			"name": "missing", "image": webImage,
			"env": []any{map[string]any{"name": "X", "valueFrom": map[string]any{"configMapKeyRef": map[string]any{"name": "nope", "key": "k"}}}},
		}}}))
	waitPod(t, s, ns, "missing", 30*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CreateContainerConfigError" &&
			strings.Contains(cs[0].State.Waiting.Message, `configmap "nope" not found`)
	})
}

func testCrashLoopBackOff(t *testing.T, s *framework.Server) {
	ns := "crash"
	createNamespace(t, s, ns)
	s.MustKubectl(t, "-n", ns, "run", "crash", "--image="+webImage, "--overrides="+overrides(nil), "--", "-exit", "3")
	pod := waitPod(t, s, ns, "crash", 60*time.Second, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "CrashLoopBackOff" && cs[0].RestartCount >= 1
	})
	cs := pod.Status.ContainerStatuses[0]
	last := cs.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("last state %+v, want terminated with exit code 3", cs.LastTerminationState)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=crash") {
		t.Errorf("waiting message %q", cs.State.Waiting.Message)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running (restartPolicy Always)", pod.Status.Phase)
	}
	waitEvent(t, s, ns, "crash", "Warning BackOff: Back-off restarting failed container crash", 10*time.Second)
	out := s.MustKubectl(t, "-n", ns, "get", "pod", "crash")
	if !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("kubectl get pod:\n%s", out)
	}

	// With restartPolicy Never the pod fails instead.
	s.MustKubectl(t, "-n", ns, "run", "once", "--image="+webImage, "--restart=Never", "--overrides="+overrides(nil), "--", "-exit", "4")
	pod = waitPod(t, s, ns, "once", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if cs := pod.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 4 || cs[0].RestartCount != 0 {
		t.Errorf("container statuses %+v", cs)
	}
}

func testImagePullBackOff(t *testing.T, s *framework.Server) {
	ns := "pull"
	createNamespace(t, s, ns)
	// A registry on a closed loopback port fails fast.
	image := "127.0.0.1:1/missing:v1"
	waiting := func(reason string) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == reason
		}
	}
	// Every status the agent writes is seen through a watch.
	reasons := watchWaitingReasons(t, s, ns, "missing")
	s.MustKubectl(t, "-n", ns, "run", "missing", "--image="+image, "--overrides="+overrides(nil))
	pod := waitPod(t, s, ns, "missing", 60*time.Second, "ImagePullBackOff", waiting("ImagePullBackOff"))
	// The watch may deliver the status a moment after a get returned it.
	var seq []string
	_ = framework.WaitFor(10*time.Second, func() (bool, error) {
		seq = reasons()
		return slices.Contains(seq, "ImagePullBackOff"), nil
	})
	iErr, iBackOff := slices.Index(seq, "ErrImagePull"), slices.Index(seq, "ImagePullBackOff")
	if iErr < 0 || iBackOff < iErr {
		t.Errorf("waiting reasons %v, want ErrImagePull then ImagePullBackOff", seq)
	}
	if msg := pod.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, image) {
		t.Errorf("waiting message %q", msg)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", pod.Status.Phase)
	}
	waitEvents(t, s, ns, "missing", 30*time.Second, "Normal Pulling: Pulling image", "Warning Failed: Failed to pull image \""+image+"\"",
		"Warning Failed: Error: ErrImagePull", "Normal BackOff: Back-off pulling image")

	// imagePullPolicy Never with a missing image.
	s.MustKubectl(t, "-n", ns, "run", "never", "--image=havre.local/absent:v1", "--image-pull-policy=Never", "--overrides="+overrides(nil))
	waitPod(t, s, ns, "never", 30*time.Second, "ErrImageNeverPull", waiting("ErrImageNeverPull"))
}

func testInitContainers(t *testing.T, s *framework.Server) {
	ns := "init"
	createNamespace(t, s, ns)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  nodeName: %[1]s
  initContainers:
  - {name: first, image: %[2]s, args: ["-append", "/work/order=first", "-sleep", "300ms", "-exit", "0"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: %[2]s, args: ["-append", "/work/order=second", "-exit", "0"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: web, image: %[2]s, volumeMounts: [{name: work, mountPath: /work}]}
  volumes:
  - {name: work, emptyDir: {}}
`, nodeName, webImage)
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
	pod := waitPod(t, s, ns, "inits", 60*time.Second, "Running and Ready", running)
	if got := waitHTTP(t, "http://"+pod.Status.PodIP+":8080/file?path=/work/order", 20*time.Second); got != "first\nsecond\n" {
		t.Errorf("init containers ran as %q, want first then second", got)
	}
	ics := pod.Status.InitContainerStatuses
	if len(ics) != 2 {
		t.Fatalf("init container statuses %+v", ics)
	}
	for _, cs := range ics {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("init container %s: %+v", cs.Name, cs.State)
		}
	}
	if !ics[0].State.Terminated.FinishedAt.Time.After(ics[0].State.Terminated.StartedAt.Time.Add(-time.Second)) ||
		ics[1].State.Terminated.StartedAt.Before(&ics[0].State.Terminated.FinishedAt) {
		t.Errorf("second init container started before the first finished: %+v / %+v", ics[0].State.Terminated, ics[1].State.Terminated)
	}

	// A failing init container with restartPolicy Never fails the pod and
	// the regular container never starts.
	manifest = fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: badinit}
spec:
  nodeName: %[1]s
  restartPolicy: Never
  initContainers:
  - {name: fail, image: %[2]s, args: ["-exit", "7"]}
  containers:
  - {name: web, image: %[2]s}
`, nodeName, webImage)
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
	pod = waitPod(t, s, ns, "badinit", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if cs := pod.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "PodInitializing" {
		t.Errorf("regular container of a pod whose init failed: %+v", cs)
	}
}

func testGracefulDeletion(t *testing.T, s *framework.Server) {
	ns := "grace"
	createNamespace(t, s, ns)
	// "slow" takes 2s to stop after SIGTERM, well within its 30s grace
	// period; "stubborn" would take a minute but gets 3s.
	s.MustKubectl(t, "-n", ns, "run", "slow", "--image="+webImage, "--overrides="+overrides(nil), "--", "-term-delay", "2s")
	s.MustKubectl(t, "-n", ns, "run", "stubborn", "--image="+webImage,
		"--overrides="+overrides(map[string]any{"terminationGracePeriodSeconds": 3}), "--", "-term-delay", "60s")
	slow := waitPod(t, s, ns, "slow", 60*time.Second, "Running and Ready", running)
	stubborn := waitPod(t, s, ns, "stubborn", 60*time.Second, "Running and Ready", running)
	waitHTTP(t, "http://"+slow.Status.PodIP+":8080/healthz", 20*time.Second)
	waitHTTP(t, "http://"+stubborn.Status.PodIP+":8080/healthz", 20*time.Second)

	for _, tc := range []struct {
		pod      *corev1.Pod
		min, max time.Duration
	}{
		// The bounds prove the grace period decides (slow is gone well
		// before its 30s, stubborn long before its 60s delay), with room
		// for a loaded machine whose fsyncs are slow.
		{slow, 2 * time.Second, 25 * time.Second},
		{stubborn, 3 * time.Second, 25 * time.Second},
	} {
		start := time.Now()
		s.MustKubectl(t, "-n", ns, "delete", "pod", tc.pod.Name, "--wait=false")
		p, err := getPod(t, s, ns, tc.pod.Name)
		if err != nil || p.DeletionTimestamp == nil {
			t.Fatalf("after delete: %v, %+v", err, p)
		}
		framework.Eventually(t, tc.max, func() (bool, error) {
			_, err := getPod(t, s, ns, tc.pod.Name)
			return isNotFound(err), nil
		}, "pod %s removed", tc.pod.Name)
		took := time.Since(start)
		t.Logf("pod %s deleted in %v", tc.pod.Name, took.Round(time.Millisecond))
		if took < tc.min {
			t.Errorf("pod %s was gone after %v, before its container could have stopped (%v)", tc.pod.Name, took, tc.min)
		}
		if _, err := httpGet("http://" + tc.pod.Status.PodIP + ":8080/healthz"); err == nil {
			t.Errorf("pod %s still answers after deletion", tc.pod.Name)
		}
	}
	// Nothing of them remains in the runtime.
	sock := s.DataDir() + "/agent/containerd/containerd.sock"
	framework.Eventually(t, 20*time.Second, func() (bool, error) {
		out, err := ctr(sock, "containers", "ls", "-q")
		if err != nil {
			return false, err
		}
		for _, id := range []*corev1.Pod{slow, stubborn} {
			for _, cs := range id.Status.ContainerStatuses {
				if strings.Contains(out, strings.TrimPrefix(cs.ContainerID, "containerd://")) {
					return false, fmt.Errorf("container %s remains", cs.ContainerID)
				}
			}
		}
		return true, nil
	}, "the deleted pods' containers are removed")
}

// watchWaitingReasons watches a pod from before it exists and returns a
// function giving the waiting reasons its container went through, in order.
func watchWaitingReasons(t *testing.T, s *framework.Server, ns, name string) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := s.Clientset().CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seq []string
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting == nil {
					continue
				}
				mu.Lock()
				if len(seq) == 0 || seq[len(seq)-1] != cs.State.Waiting.Reason {
					seq = append(seq, cs.State.Waiting.Reason)
				}
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seq)
	}
}

// TestAgentRestartKeepsPods restarts the server (and so its agent and
// containerd) and checks that the running pod is adopted, not restarted.
func TestAgentRestartKeepsPods(t *testing.T) {
	s := startNode(t)
	ns := "restart"
	createNamespace(t, s, ns)
	s.MustKubectl(t, "-n", ns, "run", "web", "--image="+webImage, "--overrides="+overrides(nil))
	before := waitPod(t, s, ns, "web", 60*time.Second, "Running and Ready", running)
	waitHTTP(t, "http://"+before.Status.PodIP+":8080/healthz", 20*time.Second)
	sock := s.DataDir() + "/agent/containerd/containerd.sock"
	tasksBefore, err := ctr(sock, "tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}

	s.Restart()
	waitNodeReady(t, s)
	// The pod kept answering on its IP, and after the agent synced it is
	// still the same container.
	if _, err := httpGet("http://" + before.Status.PodIP + ":8080/healthz"); err != nil {
		t.Errorf("the pod stopped answering across the restart: %v", err)
	}
	framework.Eventually(t, 20*time.Second, func() (bool, error) {
		out, err := ctr(sock, "tasks", "ls")
		return err == nil && out == tasksBefore, err
	}, "the runtime runs the same tasks as before the restart")
	after, err := getPod(t, s, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if a.ContainerID != b.ContainerID || a.RestartCount != 0 || a.State.Running == nil || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
		t.Errorf("container before the restart %+v, after %+v", b, a)
	}
	if after.Status.PodIP != before.Status.PodIP || !running(after) {
		t.Errorf("pod after the restart: %s", statusSummary(after))
	}

	// The adopted pod is still managed: deleting it stops it.
	s.MustKubectl(t, "-n", ns, "delete", "pod", "web", "--grace-period=5")
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, err := ctr(sock, "tasks", "ls", "-q")
		return err == nil && strings.TrimSpace(out) == "", err
	}, "the runtime runs nothing once the pod is deleted")
}
