// Package parity_test is the kubectl-parity suite: everyday kubectl
// commands (apply client- and server-side, diff, edit, replace, patch,
// output formats, discovery commands) run against the real havre binary with
// the latest kubectl built from k8s.io/kubectl and with Debian's kubectl
// 1.20, and their output compared with what upstream prints.
package parity_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// oldKubectl is Debian's kubectl 1.20 (package kubernetes-client), unpacked
// there by hack/install-deps.sh.
const oldKubectl = "/opt/havre-test/kubectl-1.20/kubectl"

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	// kubectl's own behaviour is under test: no controller changes the
	// workloads it edits between two commands.
	return framework.StartServer(t, framework.WithoutWorkloadControllers())
}

func frameworkServer(tb testing.TB) *framework.Server {
	return framework.StartServer(tb, framework.WithoutWorkloadControllers())
}

// result is one kubectl run.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a kubectl binary against s with extra environment and stdin.
func run(t testing.TB, s *framework.Server, bin string, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if bin == "" {
		cmd = s.KubectlCommand(ctx, args...)
	} else {
		cmd = exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", s.Kubeconfig(), "--cache-dir", t.TempDir()}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return r
}

// kubectl runs the latest kubectl and fails t unless it succeeds.
func kubectl(t testing.TB, s *framework.Server, stdin string, args ...string) string {
	t.Helper()
	r := run(t, s, "", nil, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kubectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// lines returns the non-empty lines of out, trimmed.
func lines(out string) []string {
	var l []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			l = append(l, line)
		}
	}
	return l
}

// fields returns the whitespace-separated fields of each line.
func fields(out string) [][]string {
	var f [][]string
	for _, line := range lines(out) {
		f = append(f, strings.Fields(line))
	}
	return f
}
