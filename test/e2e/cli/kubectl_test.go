// Package cli_test checks havre's command line from the outside: it runs
// the havre binary as a user would.
package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// commandTimeout bounds one havre kubectl run.
	commandTimeout = 2 * time.Minute
	// buildTimeout bounds the build of havre-kubectl.
	buildTimeout = 10 * time.Minute
)

// TestKubectl runs `havre kubectl`, which execs havre-kubectl (the upstream
// kubectl, cmd/havre-kubectl) with the admin kubeconfig of a data dir,
// against a server started by the framework.
func TestKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	kubectl, err := buildHavreKubectl()
	if err != nil {
		t.Fatalf("building havre-kubectl: %v", err)
	}
	havre := framework.Havre(t)
	s := framework.StartServer(t)

	// withKubectl holds havre and havre-kubectl side by side, as `make
	// build` leaves them in bin/; alone holds havre without it (PATH
	// decides); pathDir holds havre-kubectl only, for PATH.
	withKubectl, alone, pathDir, empty := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{withKubectl, alone} {
		linkOrCopy(t, havre, filepath.Join(dir, "havre"))
	}
	for _, dir := range []string{withKubectl, pathDir} {
		if err := os.Symlink(kubectl, filepath.Join(dir, "havre-kubectl")); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir() // kubectl's cache goes to $HOME/.kube/cache
	r := runner{bin: filepath.Join(withKubectl, "havre"), env: cleanEnv(home, os.Getenv("PATH"))}
	// No kubeconfig anywhere: what a test must not fall back to.
	missing := filepath.Join(empty, "no-such-dir")

	wantNamespaces := func(t *testing.T, stdout string) {
		t.Helper()
		if !strings.HasPrefix(stdout, "NAME") || !hasRowStarting(stdout, "default ") {
			t.Errorf("get namespaces printed:\n%s", stdout)
		}
	}

	t.Run("KUBECONFIG", func(t *testing.T) {
		out := r.with("KUBECONFIG="+s.Kubeconfig()).must(t, "kubectl", "get", "namespaces")
		wantNamespaces(t, out)
	})

	t.Run("DataDirFlag", func(t *testing.T) {
		wantNamespaces(t, r.must(t, "kubectl", "--data-dir", s.DataDir(), "get", "namespaces"))
		wantNamespaces(t, r.must(t, "kubectl", "--data-dir="+s.DataDir(), "get", "namespaces"))
		// An explicit --data-dir is what the user asked for: it wins
		// over KUBECONFIG.
		out := r.with("KUBECONFIG="+filepath.Join(missing, "kubeconfig")).must(t,
			"kubectl", "--data-dir", s.DataDir(), "get", "namespaces")
		wantNamespaces(t, out)
	})

	t.Run("DataDirEnv", func(t *testing.T) {
		wantNamespaces(t, r.with("HAVRE_DATA_DIR="+s.DataDir()).must(t, "kubectl", "get", "namespaces"))
		// KUBECONFIG wins over HAVRE_DATA_DIR, and kubectl's own
		// --kubeconfig over both.
		out := r.with("HAVRE_DATA_DIR="+missing, "KUBECONFIG="+s.Kubeconfig()).must(t, "kubectl", "get", "namespaces")
		wantNamespaces(t, out)
		out = r.with("HAVRE_DATA_DIR="+missing).must(t, "kubectl", "--kubeconfig", s.Kubeconfig(), "get", "namespaces")
		wantNamespaces(t, out)
		// A data dir without a kubeconfig is used (a command may need
		// none) with a warning, rather than kubectl's default.
		res := r.with("HAVRE_DATA_DIR="+missing).run("kubectl", "version", "--client")
		res.wantExit(t, 0, "warning: no admin kubeconfig at "+filepath.Join(missing, "admin.kubeconfig"))
	})

	t.Run("Version", func(t *testing.T) {
		out := r.with("KUBECONFIG="+s.Kubeconfig()).must(t, "kubectl", "version")
		if !strings.Contains(out, "Client Version: "+kubernetesVersion(t)+"\n") || !strings.Contains(out, "Server Version: ") {
			t.Errorf("kubectl version printed:\n%s", out)
		}
	})

	t.Run("Failure", func(t *testing.T) {
		rk := r.with("KUBECONFIG=" + s.Kubeconfig())
		res := rk.run("kubectl", "get", "configmap", "no-such-configmap", "--namespace", "default")
		res.wantExit(t, 1, `Error from server (NotFound): configmaps "no-such-configmap" not found`)
		res = rk.run("kubectl", "frobnicate")
		res.wantExit(t, 1, `unknown command "frobnicate" for "kubectl"`)
		res = rk.run("kubectl", "--data-dir")
		res.wantExit(t, 1, "flag needs an argument: --data-dir")
	})

	t.Run("PATH", func(t *testing.T) {
		ra := runner{bin: filepath.Join(alone, "havre"), env: cleanEnv(home, pathDir)}
		wantNamespaces(t, ra.with("KUBECONFIG="+s.Kubeconfig()).must(t, "kubectl", "get", "namespaces"))
	})

	t.Run("NotInstalled", func(t *testing.T) {
		ra := runner{bin: filepath.Join(alone, "havre"), env: cleanEnv(home, empty)}
		res := ra.with("KUBECONFIG="+s.Kubeconfig()).run("kubectl", "get", "namespaces")
		res.wantExit(t, 1, "havre-kubectl is neither next to havre")
	})
}

// runner runs a havre binary with a given environment.
type runner struct {
	bin string
	env []string
}

// with returns a runner with the KEY=VALUE pairs added to the environment.
func (r runner) with(kv ...string) runner {
	return runner{bin: r.bin, env: append(slices.Clip(r.env), kv...)}
}

type result struct {
	args           []string
	stdout, stderr string
	code           int // exit code; -1 if the command did not exit normally
	err            error
}

func (r runner) run(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	err := cmd.Run()
	res := result{args: args, stdout: out.String(), stderr: errOut.String(), err: err}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		res.code = -1
	}
	return res
}

func (r runner) must(t *testing.T, args ...string) string {
	t.Helper()
	res := r.run(args...)
	if res.err != nil {
		t.Fatalf("havre %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.err, res.stdout, res.stderr)
	}
	return res.stdout
}

// wantExit checks that the command exited with code and said msg on
// standard error.
func (res result) wantExit(t *testing.T, code int, msg string) {
	t.Helper()
	if res.code != code || !strings.Contains(res.stderr, msg) {
		t.Errorf("havre %s: exit code %d (%v), stderr %q; want exit code %d and %q",
			strings.Join(res.args, " "), res.code, res.err, res.stderr, code, msg)
	}
}

// cleanEnv returns the test's environment without what would point kubectl
// or havre kubectl elsewhere, with HOME and PATH replaced.
func cleanEnv(home, path string) []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		switch key {
		case "KUBECONFIG", "HAVRE_DATA_DIR", "HOME", "PATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "PATH="+path)
}

func hasRowStarting(table, prefix string) bool {
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// linkOrCopy puts a copy of the file src at dst: a hard link if it can, so
// that the copy is a file of its own (os.Executable resolves symlinks).
func linkOrCopy(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Link(src, dst); err == nil {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// kubernetesVersion returns the Kubernetes version of the k8s.io/kubectl in
// go.mod: v0.X.Y is v1.X.Y.
func kubernetesVersion(t *testing.T) string {
	t.Helper()
	v, err := kubectlModuleVersion()
	if err != nil {
		t.Fatal(err)
	}
	return "v1." + strings.TrimPrefix(v, "v0.")
}

func kubectlModuleVersion() (string, error) {
	root, err := framework.ModuleRoot()
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(gomod)) {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(fields) >= 2 && fields[0] == "k8s.io/kubectl" && strings.HasPrefix(fields[1], "v0.") {
			return fields[1], nil
		}
	}
	return "", errors.New("go.mod requires no k8s.io/kubectl v0.X.Y")
}

var (
	kubectlOnce sync.Once
	kubectlBin  string
	kubectlErr  error
)

// buildHavreKubectl builds ./cmd/havre-kubectl as `make build` does (stamped
// with the Kubernetes version) into
// os.UserCacheDir()/havre-test/havre-kubectl-<hash>, where the hash covers
// go.sum, the sources of cmd/havre-kubectl and internal/kubectlcmd and the
// Go version, so that repeated test runs reuse it.
func buildHavreKubectl() (string, error) {
	kubectlOnce.Do(func() { kubectlBin, kubectlErr = doBuildHavreKubectl() })
	return kubectlBin, kubectlErr
}

func doBuildHavreKubectl() (string, error) {
	root, err := framework.ModuleRoot()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	files := []string{filepath.Join(root, "go.sum"), filepath.Join(root, "go.mod")}
	for _, dir := range []string{"cmd/havre-kubectl", "internal/kubectlcmd"} {
		matches, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return "", err
		}
		files = append(files, matches...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(data))
		h.Write(data)
	}
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "havre-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "havre-kubectl-"+sum)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}

	v, err := kubectlModuleVersion()
	if err != nil {
		return "", err
	}
	kube := "v1." + strings.TrimPrefix(v, "v0.")
	minor, _, _ := strings.Cut(strings.TrimPrefix(v, "v0."), ".")
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X", pkg+".gitVersion="+kube, "-X", pkg+".gitMajor=1", "-X", pkg+".gitMinor="+minor)
	}

	// Build next to the final path and rename, so that other test
	// processes never see a partial file.
	tmp, err := os.CreateTemp(dir, ".havre-kubectl-build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", strings.Join(ld, " "),
		"-o", tmp.Name(), "./cmd/havre-kubectl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/havre-kubectl: %v\n%s", err, out)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}
