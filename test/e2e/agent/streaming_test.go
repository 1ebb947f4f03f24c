package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/havre/havre/test/framework"
)

// TestStreaming checks what kubectl and client-go do through the API
// server's proxy to the node agent's streaming API: logs, exec, attach, cp
// and port-forward, over WebSocket (current kubectl's default) and SPDY.
func TestStreaming(t *testing.T) {
	s := startNode(t)
	ns := "streams"
	createNamespace(t, s, ns)
	s.MustKubectl(t, "-n", ns, "run", "web", "--image="+webImage, "--overrides="+overrides(nil))
	pod := waitPod(t, s, ns, "web", 60*time.Second, "Running and Ready", running)
	podURL := "http://" + pod.Status.PodIP + ":8080"

	t.Run("Logs", func(t *testing.T) { testLogs(t, s, ns, podURL) })
	t.Run("LogsFollow", func(t *testing.T) { testLogsFollow(t, s, ns, podURL) })
	t.Run("LogsErrors", func(t *testing.T) { testLogsErrors(t, s, ns) })
	t.Run("LogsPrevious", func(t *testing.T) { testLogsPrevious(t, s, ns) })
	t.Run("Exec", func(t *testing.T) { testExec(t, s, ns) })
	t.Run("ExecClientGo", func(t *testing.T) { testExecClientGo(t, s, ns) })
	t.Run("Attach", func(t *testing.T) { testAttach(t, s, ns) })
	t.Run("Copy", func(t *testing.T) { testCopy(t, s, ns) })
	t.Run("PortForward", func(t *testing.T) { testPortForward(t, s, ns) })
}

// both runs kubectl's WebSocket and SPDY clients in turn.
var both = []struct {
	name string
	env  string
}{
	{"WebSocket", ""},
	{"SPDY", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"},
}

func kubectlEnv(t *testing.T, s *framework.Server, env, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.KubectlCommand(ctx, args...)
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func testLogs(t *testing.T, s *framework.Server, ns, podURL string) {
	defer func() {
		if t.Failed() {
			out, _ := exec.Command("sh", "-c", "find "+s.DataDir()+"/agent/logs -type f | xargs -r tail -n 5").CombinedOutput()
			t.Logf("logs on disk:\n%s", out)
		}
	}()
	// Ready (no readiness probe) can come before the program listens.
	waitHTTP(t, podURL+"/log?line=first-line", 20*time.Second)
	if _, err := httpGet(podURL + "/log?line=to-stderr&stream=stderr"); err != nil {
		t.Fatal(err)
	}
	var out string
	logged := func(lines ...string) func() (bool, error) {
		return func() (bool, error) {
			var stderr string
			var err error
			out, stderr, err = s.Kubectl("-n", ns, "logs", "web")
			if err != nil {
				return false, fmt.Errorf("%v: %s", err, stderr)
			}
			for _, l := range lines {
				if !strings.Contains(out, l) {
					return false, nil
				}
			}
			return true, nil
		}
	}
	// The runtime copies stdout and stderr separately, so lines of the two
	// written together may be logged in either order.
	framework.Eventually(t, 20*time.Second, logged("serving on :8080", "first-line", "to-stderr"),
		"kubectl logs shows the lines written, got %q", out)
	// A line written once both are logged is the last.
	if _, err := httpGet(podURL + "/log?line=last-line"); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, logged("last-line"), "kubectl logs shows the last line, got %q", out)
	if got := s.MustKubectl(t, "-n", ns, "logs", "web", "--tail=1"); got != "last-line\n" {
		t.Errorf("logs --tail=1 = %q", got)
	}
	if got := s.MustKubectl(t, "-n", ns, "logs", "web", "--tail=0"); got != "" {
		t.Errorf("logs --tail=0 = %q", got)
	}
	stamped := s.MustKubectl(t, "-n", ns, "logs", "web", "--timestamps", "--tail=1")
	ts, rest, _ := strings.Cut(strings.TrimSpace(stamped), " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || rest != "last-line" {
		t.Errorf("logs --timestamps = %q: want an RFC 3339 time then the line (%v)", stamped, err)
	}
	if got := s.MustKubectl(t, "-n", ns, "logs", "web", "--limit-bytes=5"); got != "servi" {
		t.Errorf("logs --limit-bytes=5 = %q", got)
	}
	if got := s.MustKubectl(t, "-n", ns, "logs", "web", "--since=1h"); !strings.Contains(got, "first-line") {
		t.Errorf("logs --since=1h = %q", got)
	}
	// The raw API, as client-go reads it, with the container named.
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	raw, err := s.Clientset().CoreV1().Pods(ns).GetLogs("web", &corev1.PodLogOptions{Container: "web"}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(raw), "first-line") {
		t.Errorf("GET pods/log = %q, %v", raw, err)
	}
}

func testLogsFollow(t *testing.T, s *framework.Server, ns, podURL string) {
	// The last line before kubectl starts is its first line of output: once
	// it is printed, kubectl is following.
	if _, err := httpGet(podURL + "/log?line=follow-start"); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() (bool, error) {
		out, _, err := s.Kubectl("-n", ns, "logs", "web", "--tail=1")
		return out == "follow-start\n", err
	}, "the marker line is logged")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := s.KubectlCommand(ctx, "-n", ns, "logs", "-f", "web", "--tail=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl logs -f ended early: %s", stderr.String())
			}
			if got != want {
				t.Fatalf("kubectl logs -f printed %q, want %q", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("kubectl logs -f did not print %q: %s", want, stderr.String())
		}
	}
	next("follow-start")
	// Lines written while kubectl runs arrive as they are written.
	for i := range 3 {
		want := fmt.Sprintf("followed-%d", i)
		if _, err := httpGet(podURL + "/log?line=" + want); err != nil {
			t.Fatal(err)
		}
		next(want)
	}
}

func testLogsErrors(t *testing.T, s *framework.Server, ns string) {
	// A container that never started: kube's message, exit code 1.
	s.MustKubectl(t, "-n", ns, "run", "missing", "--image=havre.local/does-not-exist:v1", "--overrides="+overrides(nil))
	waitPod(t, s, ns, "missing", 60*time.Second, "waiting on its image", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Reason, "Image")
	})
	_, stderr, err := s.Kubectl("-n", ns, "logs", "missing")
	if err == nil || !strings.Contains(stderr, `container "missing" in pod "missing" is waiting to start:`) {
		t.Errorf("logs of a waiting container: err=%v stderr=%q", err, stderr)
	}
	_, stderr, err = s.Kubectl("-n", ns, "logs", "web", "-c", "nope")
	if err == nil || !strings.Contains(stderr, "container nope is not valid for pod web") {
		t.Errorf("logs of an unknown container: err=%v stderr=%q", err, stderr)
	}
	_, stderr, err = s.Kubectl("-n", ns, "logs", "web", "--previous")
	if err == nil || !strings.Contains(stderr, `previous terminated container "web" in pod "web" not found`) {
		t.Errorf("logs --previous without a restart: err=%v stderr=%q", err, stderr)
	}
}

func testLogsPrevious(t *testing.T, s *framework.Server, ns string) {
	s.MustKubectl(t, "-n", ns, "run", "restarts", "--image="+webImage, "--overrides="+overrides(nil))
	p := waitPod(t, s, ns, "restarts", 60*time.Second, "Running and Ready", running)
	// Ready (no readiness probe) can come before the program listens.
	waitHTTP(t, "http://"+p.Status.PodIP+":8080/log?line=first-instance", 20*time.Second)
	if _, err := httpGet("http://" + p.Status.PodIP + ":8080/exit?code=7"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, s, ns, "restarts", 60*time.Second, "restarted", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	prev := s.MustKubectl(t, "-n", ns, "logs", "restarts", "--previous")
	if !strings.Contains(prev, "first-instance") {
		t.Errorf("logs --previous = %q, want the first instance's line", prev)
	}
	if cur := s.MustKubectl(t, "-n", ns, "logs", "restarts"); strings.Contains(cur, "first-instance") {
		t.Errorf("logs of the restarted container = %q: has the first instance's line", cur)
	}
}

func testExec(t *testing.T, s *framework.Server, ns string) {
	for _, c := range both {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := kubectlEnv(t, s, c.env, "", "-n", ns, "exec", "web", "--", "echo", "hello", "world")
			if err != nil || out != "hello world\n" {
				t.Errorf("exec echo = %q, %v (%s)", out, err, stderr)
			}
			out, stderr, err = kubectlEnv(t, s, c.env, "from stdin\n", "-n", ns, "exec", "-i", "web", "--", "cat")
			if err != nil || out != "from stdin\n" {
				t.Errorf("exec -i cat = %q, %v (%s)", out, err, stderr)
			}
			_, stderr, err = kubectlEnv(t, s, c.env, "", "-n", ns, "exec", "web", "--", "/web", "-exit", "3")
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(stderr, "command terminated with exit code 3") {
				t.Errorf("exec of a command exiting 3: err=%v stderr=%q", err, stderr)
			}
			_, stderr, err = kubectlEnv(t, s, c.env, "", "-n", ns, "exec", "web", "--", "no-such-command")
			if err == nil {
				t.Errorf("exec of a missing command succeeded (stderr %q)", stderr)
			}
		})
	}
}

// testExecClientGo drives exec with client-go's executors directly, with a
// TTY and a terminal size, as `kubectl exec -it` does from a terminal.
func testExecClientGo(t *testing.T, s *framework.Server, ns string) {
	req := s.Clientset().CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("web").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: []string{"cat"}, Stdin: true, Stdout: true, TTY: true}, scheme.ParameterCodec)
	executors := map[string]func() (remotecommand.Executor, error){
		"WebSocket": func() (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(s.RESTConfig(), "GET", req.URL().String())
		},
		"SPDY": func() (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(s.RESTConfig(), "POST", req.URL())
		},
	}
	for name, newExec := range executors {
		t.Run(name, func(t *testing.T) {
			e, err := newExec()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sizes := &fixedSizes{sizes: []remotecommand.TerminalSize{{Width: 100, Height: 40}}}
			var out syncBuffer
			stdinR, stdinW := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			}()
			defer stdinW.Close()
			go func() {
				// The terminal echoes what is typed, cat prints it back,
				// and ^D ends cat.
				if _, err := stdinW.Write([]byte("typed\r")); err != nil {
					return
				}
				if framework.WaitFor(20*time.Second, func() (bool, error) { return strings.Count(out.String(), "typed") >= 2, nil }) != nil {
					return
				}
				_, _ = stdinW.Write([]byte{4})
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("stream ended with %v (output %q)", err, out.String())
				}
				if strings.Count(out.String(), "typed") < 2 {
					t.Errorf("tty output %q: want the typed line echoed and printed back", out.String())
				}
			case <-ctx.Done():
				t.Fatalf("the exec session did not end after ^D (output %q)", out.String())
			}
		})
	}
}

type fixedSizes struct {
	mu    sync.Mutex
	sizes []remotecommand.TerminalSize
}

func (f *fixedSizes) Next() *remotecommand.TerminalSize {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sizes) == 0 {
		return nil
	}
	s := f.sizes[0]
	f.sizes = f.sizes[1:]
	return &s
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testAttach(t *testing.T, s *framework.Server, ns string) {
	for _, c := range both {
		t.Run(c.name, func(t *testing.T) {
			name := "attach-" + strings.ToLower(c.name)
			// cat reads the container's stdin; with stdinOnce it ends when
			// the attached client closes stdin.
			s.MustKubectl(t, "-n", ns, "run", name, "--image="+webImage, "--restart=Never", "--overrides="+overrides(map[string]any{
				"containers": []any{map[string]any{"name": name, "image": webImage, "command": []string{"cat"}, "stdin": true, "stdinOnce": true}},
			}))
			waitPod(t, s, ns, name, 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
			out, stderr, err := kubectlEnv(t, s, c.env, "attached input\n", "-n", ns, "attach", "-i", name)
			if err != nil || !strings.Contains(out, "attached input") {
				t.Errorf("attach -i = %q, %v (%s)", out, err, stderr)
			}
			waitPod(t, s, ns, name, 30*time.Second, "Succeeded once stdin closed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
			logs := s.MustKubectl(t, "-n", ns, "logs", name)
			if !strings.Contains(logs, "attached input") {
				t.Errorf("logs after attach = %q", logs)
			}
		})
	}
}

func testCopy(t *testing.T, s *framework.Server, ns string) {
	dir := t.TempDir()
	src := filepath.Join(dir, "upload.txt")
	content := strings.Repeat("copied through tar\n", 1000)
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s.MustKubectl(t, "-n", ns, "cp", src, "web:/tmp/upload.txt")
	if got := s.MustKubectl(t, "-n", ns, "exec", "web", "--", "cat", "/tmp/upload.txt"); got != content {
		t.Fatalf("file copied in has %d bytes, want %d", len(got), len(content))
	}
	back := filepath.Join(dir, "download.txt")
	s.MustKubectl(t, "-n", ns, "cp", "web:/tmp/upload.txt", back)
	data, err := os.ReadFile(back)
	if err != nil || string(data) != content {
		t.Fatalf("file copied out: %d bytes, %v", len(data), err)
	}
}

func testPortForward(t *testing.T, s *framework.Server, ns string) {
	for _, c := range []struct{ name, env string }{
		{"WebSocket", ""},
		{"SPDY", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port, err := framework.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := s.KubectlCommand(ctx, "-n", ns, "port-forward", "pod/web", fmt.Sprintf("%d:8080", port))
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cancel()
				_ = cmd.Wait()
			}()
			if err := framework.WaitFor(20*time.Second, func() (bool, error) {
				return strings.Contains(out.String(), "Forwarding from"), nil
			}); err != nil {
				t.Fatalf("port-forward did not start: %q", out.String())
			}
			// Several requests, each a new forwarded connection.
			for i := range 3 {
				body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/?n=%d", port, i))
				if err != nil || body != "web web\n" {
					t.Fatalf("GET through port-forward = %q, %v (kubectl: %s)", body, err, out.String())
				}
			}
			big, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/env", port))
			if err != nil || !strings.Contains(big, "PATH=") {
				t.Errorf("GET /env through port-forward = %q, %v", big, err)
			}
		})
	}
}
