package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Supervision parameters.
const (
	readyTimeout    = 30 * time.Second
	stopTimeout     = 15 * time.Second
	minRestartDelay = time.Second
	maxRestartDelay = 30 * time.Second
	// healthyAfter is how long a run must last for the restart delay to
	// start again from minRestartDelay.
	healthyAfter = time.Minute
	// maxLogSize: a larger log is truncated at start.
	maxLogSize = 64 << 20
)

// Containerd is a containerd process the agent started and supervises: it
// is restarted with backoff when it dies and stopped by Stop.
type Containerd struct {
	layout Layout
	binary string

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	// firstExit receives why the first run ended, if it did.
	firstExit chan error

	mu   sync.Mutex
	proc *os.Process
}

// StartContainerd writes the configuration, starts containerd (stopping a
// previous one this agent left behind, found by its pid file) and waits
// until its CRI service answers. binary is the containerd executable
// ("containerd" from PATH when empty).
func StartContainerd(ctx context.Context, cfg ContainerdConfig, binary string) (*Containerd, *runtimeapi.VersionResponse, error) {
	if binary == "" {
		binary = "containerd"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd not found (%w): install containerd and runc, or pass --container-runtime-endpoint", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, nil, fmt.Errorf("runc not found (%w): install runc", err)
	}
	data, err := cfg.Render()
	if err != nil {
		return nil, nil, err
	}
	l := cfg.Layout
	for _, d := range []string{l.Dir, l.Root(), l.State(), l.Opt(), cfg.CNIConfDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, err
		}
	}
	if err := os.WriteFile(l.Config(), data, 0o600); err != nil {
		return nil, nil, err
	}
	return start(ctx, l, path)
}

// RestartContainerd starts containerd again with the configuration a
// previous StartContainerd wrote (for tearing a node down).
func RestartContainerd(ctx context.Context, l Layout, binary string) (*Containerd, *runtimeapi.VersionResponse, error) {
	if binary == "" {
		binary = "containerd"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd not found: %w", err)
	}
	if _, err := os.Stat(l.Config()); err != nil {
		return nil, nil, err
	}
	return start(ctx, l, path)
}

func start(ctx context.Context, l Layout, path string) (*Containerd, *runtimeapi.VersionResponse, error) {
	if err := stopLeftover(l); err != nil {
		return nil, nil, err
	}
	c := &Containerd{layout: l, binary: path, stop: make(chan struct{}), done: make(chan struct{}), firstExit: make(chan error, 1)}
	started := make(chan error, 1)
	go c.supervise(started)
	if err := <-started; err != nil {
		return nil, nil, err
	}
	cri, err := Dial(l.Socket())
	if err != nil {
		c.Stop()
		return nil, nil, err
	}
	defer cri.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   *runtimeapi.VersionResponse
		err error
	}
	ready := make(chan result, 1)
	go func() {
		v, err := cri.WaitReady(ctx, readyTimeout)
		ready <- result{v, err}
	}()
	select {
	case r := <-ready:
		if r.err != nil {
			c.Stop()
			return nil, nil, fmt.Errorf("%w; the end of %s:\n%s", r.err, l.Log(), logTail(l.Log(), 15))
		}
		return c, r.v, nil
	case err := <-c.firstExit:
		cancel()
		c.Stop()
		return nil, nil, fmt.Errorf("containerd exited as it started (%v); the end of %s:\n%s", err, l.Log(), logTail(l.Log(), 15))
	}
}

// logTail returns the last n lines of a file.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Endpoint is the CRI endpoint of this containerd.
func (c *Containerd) Endpoint() string { return "unix://" + c.layout.Socket() }

// PID returns the process id of the current run, or 0.
func (c *Containerd) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// Stop stops containerd (SIGTERM, then SIGKILL after a while) and the
// supervision. Containers keep running: their shims outlive containerd.
func (c *Containerd) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// supervise runs containerd until Stop, restarting it when it dies. It
// keeps its OS thread locked: the child's parent-death signal fires when
// the thread that started it ends.
func (c *Containerd) supervise(started chan<- error) {
	goruntime.LockOSThread()
	defer close(c.done)
	delay := minRestartDelay
	first := true
	for {
		cmd, err := c.startOnce()
		if first {
			started <- err
			first = false
			if err != nil {
				return
			}
		}
		runStart := time.Now()
		exited := make(chan error, 1)
		if err == nil {
			go func() { exited <- cmd.Wait() }()
		} else {
			exited <- err
		}
		select {
		case <-c.stop:
			if cmd != nil {
				c.terminate(cmd, exited)
			}
			_ = os.Remove(c.layout.PIDFile())
			return
		case err := <-exited:
			select {
			case c.firstExit <- err:
			default:
			}
			if time.Since(runStart) > healthyAfter {
				delay = minRestartDelay
			}
			slog.Warn("containerd exited; restarting it", "err", err, "in", delay, "log", c.layout.Log())
			select {
			case <-c.stop:
				_ = os.Remove(c.layout.PIDFile())
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxRestartDelay)
		}
	}
}

func (c *Containerd) startOnce() (*exec.Cmd, error) {
	l := c.layout
	log, err := openLog(l.Log())
	if err != nil {
		return nil, err
	}
	defer log.Close()
	_ = os.Remove(l.Socket())
	_ = os.Remove(l.Socket() + ".ttrpc")
	cmd := exec.Command(c.binary, "--config", l.Config())
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = containerdEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	c.mu.Lock()
	c.proc = cmd.Process
	c.mu.Unlock()
	if err := os.WriteFile(l.PIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		slog.Warn("writing containerd pid file", "err", err)
	}
	slog.Info("started containerd", "pid", cmd.Process.Pid, "config", l.Config(), "log", l.Log())
	return cmd, nil
}

// containerdEnv is the agent's environment without variables that would
// redirect containerd's clients or proxies meant for the agent's own use.
func containerdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CONTAINERD_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (c *Containerd) terminate(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		slog.Warn("containerd did not stop on SIGTERM; killing it", "pid", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	}
	slog.Info("stopped containerd", "pid", cmd.Process.Pid)
}

func openLog(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(path, path+".1")
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// stopLeftover stops a containerd that a previous run of the agent with this
// layout started and did not stop (it died without running its cleanup).
// Only a process whose command line names this layout's configuration file
// is signalled.
func stopLeftover(l Layout) error {
	data, err := os.ReadFile(l.PIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return os.Remove(l.PIDFile())
	}
	if !isOurContainerd(pid, l.Config()) {
		return os.Remove(l.PIDFile())
	}
	slog.Info("stopping the containerd a previous agent run left behind", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for isOurContainerd(pid, l.Config()) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(stopTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return os.Remove(l.PIDFile())
}

// isOurContainerd reports whether pid is a live (not zombie) process whose
// command line includes config.
func isOurContainerd(pid int, config string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if arg == config {
			return true
		}
	}
	return false
}
