package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helm versions the end-to-end tests run: the newest v3 and v4 releases when
// they were pinned. Bump them here; the cache is keyed by version.
const (
	HelmV3Version = "v3.22.0"
	HelmV4Version = "v4.3.1"
)

// Environment variables naming prebuilt helm binaries to use instead of
// building HelmV3Version / HelmV4Version.
const (
	EnvHelmV3Binary = "HAVRE_HELM_V3"
	EnvHelmV4Binary = "HAVRE_HELM_V4"
)

// helmBuildTimeout bounds one helm build, module downloads included.
const helmBuildTimeout = 15 * time.Minute

type helmBuild struct {
	once sync.Once
	bin  string
	err  error
}

var (
	helmV3 helmBuild
	helmV4 helmBuild
)

// HelmV3 returns the path of helm HelmV3Version, building it on first use
// (see BuildHelm). The test fails if the build fails.
func HelmV3(t testing.TB) string {
	t.Helper()
	return helm(t, &helmV3, EnvHelmV3Binary, "helm.sh/helm/v3", HelmV3Version)
}

// HelmV4 returns the path of helm HelmV4Version, building it on first use
// (see BuildHelm). The test fails if the build fails.
func HelmV4(t testing.TB) string {
	t.Helper()
	return helm(t, &helmV4, EnvHelmV4Binary, "helm.sh/helm/v4", HelmV4Version)
}

func helm(t testing.TB, b *helmBuild, env, module, version string) string {
	t.Helper()
	b.once.Do(func() {
		if bin := os.Getenv(env); bin != "" {
			b.bin, b.err = filepath.Abs(bin)
			return
		}
		b.bin, b.err = BuildHelm(module, version)
	})
	if b.err != nil {
		t.Fatalf("building %s@%s: %v", module, version, b.err)
	}
	return b.bin
}

// BuildHelm builds module's cmd/helm at version (module is helm.sh/helm/v3
// or helm.sh/helm/v4) and returns the binary's path,
// os.UserCacheDir()/havre-test/helm-<version>/helm. A built version is
// reused by every later test run.
//
// Helm is built in a throwaway module of its own (go mod init, go get
// module/cmd/helm@version, go build), with exactly the dependency versions
// helm's release declares: added to Havre's go.mod, helm would move shared
// dependencies (golang.org/x/*, kustomize, ...) for the server too, and
// Havre's code must not depend on helm.
func BuildHelm(module, version string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	parent := filepath.Join(cache, "havre-test")
	final := filepath.Join(parent, "helm-"+version)
	bin := filepath.Join(final, "helm")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	// Build in a directory of its own and rename it into place, so that
	// test processes building the same version at the same time never see
	// a partial result.
	work, err := os.MkdirTemp(parent, ".helm-"+version+"-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	env := append(os.Environ(),
		"GOWORK=off",       // never Havre's workspace, if one appears
		"GOFLAGS=-mod=mod", // resolve and record in the throwaway go.mod
		"GOTOOLCHAIN=local",
		"CGO_ENABLED=0", // as helm's release builds
	)
	pkg := module + "/cmd/helm"
	steps := [][]string{
		{"mod", "init", "havre.test/helm"},
		{"get", pkg + "@" + version},
	}
	for _, args := range steps {
		if _, err := runGo(work, env, helmBuildTimeout, args...); err != nil {
			return "", err
		}
	}
	// Stamp the version as helm's Makefile does (`helm version` reads it);
	// helm v3 also takes its default Kubernetes version for `helm template`
	// from the client-go it is built with.
	ld := []string{"-s", "-w",
		"-X", module + "/internal/version.version=" + version,
		"-X", module + "/internal/version.metadata=",
	}
	if module == "helm.sh/helm/v3" {
		out, err := runGo(work, env, time.Minute, "list", "-m", "-f", "{{.Version}}", "k8s.io/client-go")
		if err != nil {
			return "", err
		}
		// k8s.io/client-go v0.X.Y is Kubernetes 1.X.
		if rest, ok := strings.CutPrefix(strings.TrimSpace(out), "v0."); ok {
			minor, _, _ := strings.Cut(rest, ".")
			for _, p := range []string{module + "/pkg/lint/rules", module + "/pkg/chartutil"} {
				ld = append(ld, "-X", p+".k8sVersionMajor=1", "-X", p+".k8sVersionMinor="+minor)
			}
		}
	}
	build := []string{"build", "-trimpath", "-ldflags", strings.Join(ld, " "), "-o", filepath.Join(work, "helm"), pkg}
	if _, err := runGo(work, env, helmBuildTimeout, build...); err != nil {
		return "", err
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(work, final); err != nil {
		// Another test process may have put the same build in place.
		if _, statErr := os.Stat(bin); statErr == nil {
			return bin, nil
		}
		return "", err
	}
	return bin, nil
}

// runGo runs the go tool in dir with env and a time limit and returns its
// standard output.
func runGo(dir string, env []string, limit time.Duration, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("go %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String(), nil
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return "", fmt.Errorf("go %s: still running after %v\n%s", strings.Join(args, " "), limit, stderr.String())
	}
}

// Helm runs one helm binary against one server, with helm's directories
// (cache, config, data) of its own and nothing from the environment that
// could point it at another cluster.
type Helm struct {
	Bin, Kubeconfig string
	// Home holds helm's directories.
	Home string
	// Timeout bounds one helm command (default 3 minutes).
	Timeout time.Duration
}

// NewHelm returns a runner of bin against the cluster of kubeconfig, with
// its home in a temporary directory of t.
func NewHelm(t testing.TB, bin, kubeconfig string) *Helm {
	return &Helm{Bin: bin, Kubeconfig: kubeconfig, Home: t.TempDir(), Timeout: 3 * time.Minute}
}

// Env is the environment helm runs with.
func (h *Helm) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if key == "KUBECONFIG" || key == "HOME" || strings.HasPrefix(key, "HELM_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+h.Home,
		"HELM_CACHE_HOME="+filepath.Join(h.Home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.Home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.Home, "data"),
	)
}

// Run runs helm with the server's kubeconfig.
func (h *Helm) Run(args ...string) (stdout, stderr string, err error) {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Bin, append([]string{"--kubeconfig", h.Kubeconfig}, args...)...)
	cmd.Env = h.Env()
	cmd.WaitDelay = 5 * time.Second
	var out, errOut strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), nil
}

// Must runs helm and fails t unless it succeeds; it returns stdout.
func (h *Helm) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := h.Run(args...)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	return out
}
