package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/pki"
)

// hollowReadyTimeout is how long StartHollowAgent waits for n nodes to
// be Ready: a minute, and 20 ms more per node for thousands of them.
func hollowReadyTimeout(n int) time.Duration {
	return time.Minute + time.Duration(n)*20*time.Millisecond
}

// hollowAgents counts the hollow agents of this test process, for their
// default node name prefixes.
var hollowAgents atomic.Int64

// Agent is a running `havre agent --hollow N` process: N simulated nodes
// joined to a Server. Its methods are meant to be called from the test
// goroutine.
type Agent struct {
	t       testing.TB
	s       *Server
	n       int
	prefix  string
	args    []string
	logPath string

	mu     sync.Mutex
	proc   *process
	starts int
}

// StartHollowAgent runs `havre agent --hollow n --server <url> --token-file
// <join token> --ca-file <cluster CA>` with args appended, waits until its
// n nodes are Ready and hold their Leases, and stops it when the test
// ends. Unless args hold --hollow-prefix, the nodes are named
// hollow-<k>-<i>, k counting the hollow agents of the test process from 1.
func (s *Server) StartHollowAgent(t testing.TB, n int, args ...string) *Agent {
	t.Helper()
	k := hollowAgents.Add(1)
	prefix := ""
	for i, arg := range args {
		if v, ok := strings.CutPrefix(arg, "--hollow-prefix="); ok {
			prefix = v
		} else if arg == "--hollow-prefix" && i+1 < len(args) {
			prefix = args[i+1]
		}
	}
	if prefix == "" {
		prefix = fmt.Sprintf("hollow-%d", k)
		args = append([]string{"--hollow-prefix", prefix}, args...)
	}
	a := &Agent{
		t: t, s: s, n: n, prefix: prefix, args: args,
		logPath: filepath.Join(filepath.Dir(s.logPath), fmt.Sprintf("hollow-agent-%d.log", k)),
	}
	t.Cleanup(a.dumpLogOnFailure)
	t.Cleanup(a.cleanup)
	if err := a.start(); err != nil {
		t.Fatalf("starting the hollow agent: %v", err)
	}
	return a
}

// Args returns the agent's command line (without the binary).
func (a *Agent) Args() []string {
	return append([]string{"agent",
		"--hollow", strconv.Itoa(a.n),
		"--server", a.s.URL(""),
		"--token-file", filepath.Join(a.s.dataDir, auth.ServerDirName, auth.JoinTokenFile),
		"--ca-file", filepath.Join(a.s.dataDir, pki.DirName, pki.CACertFile),
	}, a.args...)
}

func (a *Agent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil && !a.proc.exited() {
		return errors.New("the hollow agent is already running")
	}
	logFile, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	a.starts++
	fmt.Fprintf(logFile, "===== framework: start #%d at %s: %s %s\n", a.starts,
		time.Now().Format(time.RFC3339Nano), a.s.binary, strings.Join(a.Args(), " "))
	cmd := exec.Command(a.s.binary, a.Args()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	configureChild(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		logFile.Close()
		close(p.done)
	}()
	a.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), hollowReadyTimeout(a.n))
	defer cancel()
	err = WaitForContext(ctx, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("the hollow agent exited (%v); see its log", p.err)
		}
		return a.allReady(ctx)
	})
	if err != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		return err
	}
	return nil
}

// allReady reports whether every node of the agent is Ready and has a
// Lease.
func (a *Agent) allReady(ctx context.Context) (bool, error) {
	list, err := a.s.Clientset().CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node.havre.dev/hollow=true"})
	if err != nil {
		return false, err
	}
	mine := make(map[string]bool, a.n)
	for _, name := range a.NodeNames() {
		mine[name] = true
	}
	ready := 0
	for _, n := range list.Items {
		if !mine[n.Name] {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready != a.n {
		return false, nil
	}
	leases, err := a.s.Clientset().CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	renewed := 0
	for _, l := range leases.Items {
		if mine[l.Name] && l.Spec.RenewTime != nil {
			renewed++
		}
	}
	return renewed == a.n, nil
}

// NodeNames returns the names of the agent's nodes.
func (a *Agent) NodeNames() []string {
	names := make([]string, a.n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", a.prefix, i)
	}
	return names
}

// PID returns the process ID of the agent's current run.
func (a *Agent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc.cmd.Process.Pid
}

// Prefix returns the prefix of the agent's node names.
func (a *Agent) Prefix() string { return a.prefix }

// LogPath returns the file the agent's output goes to.
func (a *Agent) LogPath() string { return a.logPath }

// Running reports whether the agent process is alive.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil && !a.proc.exited()
}

func (a *Agent) signal(sig os.Signal) (*process, error) {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p == nil || p.exited() {
		return p, errors.New("the hollow agent is not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return p, err
	}
	select {
	case <-p.done:
		return p, nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return p, fmt.Errorf("the hollow agent did not exit within %v of %v; killed it", stopTimeout, sig)
	}
}

// Stop stops the agent with SIGTERM, as a node shutting down: its nodes
// stop heartbeating, their pods stay bound.
func (a *Agent) Stop() {
	a.t.Helper()
	p, err := a.signal(syscall.SIGTERM)
	if err != nil {
		a.t.Errorf("stopping the hollow agent: %v", err)
		return
	}
	if code := p.state.ExitCode(); code != 0 {
		a.t.Errorf("the hollow agent did not shut down cleanly on SIGTERM: %v", p.state)
	}
}

// Kill kills the agent with SIGKILL, as a node dying.
func (a *Agent) Kill() {
	a.t.Helper()
	if _, err := a.signal(syscall.SIGKILL); err != nil {
		a.t.Fatalf("killing the hollow agent: %v", err)
	}
}

// Restart starts a stopped or killed agent again (same nodes) and waits
// until its nodes are Ready.
func (a *Agent) Restart() {
	a.t.Helper()
	if a.Running() {
		a.Stop()
	}
	if err := a.start(); err != nil {
		a.t.Fatalf("restarting the hollow agent: %v", err)
	}
}

// Logs returns what the agent has logged so far, across restarts.
func (a *Agent) Logs() string {
	data, err := os.ReadFile(a.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", a.logPath, err)
	}
	return string(data)
}

func (a *Agent) cleanup() {
	if a.Running() {
		if _, err := a.signal(syscall.SIGTERM); err != nil {
			a.t.Errorf("stopping the hollow agent: %v", err)
		}
	}
}

func (a *Agent) dumpLogOnFailure() {
	if !a.t.Failed() {
		return
	}
	lines := 100
	if v := os.Getenv(EnvLogLines); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			lines = n
		}
	}
	a.t.Logf("hollow agent log (%s, last %d lines):\n%s", a.logPath, lines, tail(a.Logs(), lines))
}
