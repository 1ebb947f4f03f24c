package framework

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables understood by the build helpers.
const (
	// EnvHavreBinary names a prebuilt havre binary to use instead of
	// building ./cmd/havre.
	EnvHavreBinary = "HAVRE_BINARY"
	// EnvKubectlBinary names a prebuilt kubectl to use instead of building
	// test/tools/kubectl.
	EnvKubectlBinary = "HAVRE_KUBECTL"
	// EnvRace, when "1", builds the havre binary with -race.
	EnvRace = "HAVRE_TEST_RACE"
)

const modulePath = "github.com/havre/havre"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	havreOnce sync.Once
	havreBin  string
	havreErr  error

	kubectlOnce sync.Once
	kubectlBin  string
	kubectlErr  error

	// tempDirs are removed by Main when the test binary finishes.
	tempMu   sync.Mutex
	tempDirs []string
)

// ModuleRoot returns the directory holding Havre's go.mod, found by walking up
// from the working directory (go test runs in the package's directory).
func ModuleRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && modfileModule(data) == modulePath {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("no go.mod for module %s above the working directory", modulePath)
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// modfileModule returns the module path declared in a go.mod file.
func modfileModule(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// requiredVersion returns the version go.mod requires of module, or "".
func requiredVersion(gomod []byte, module string) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	return ""
}

// Havre returns the path of the havre binary, building ./cmd/havre on the
// first call of the test process. The test fails if the build fails.
func Havre(t testing.TB) string {
	t.Helper()
	bin, err := BuildHavre()
	if err != nil {
		t.Fatalf("building havre: %v", err)
	}
	return bin
}

// BuildHavre builds ./cmd/havre once per test process into a temporary
// directory (removed by Main) and returns the binary's path. HAVRE_BINARY
// overrides the build; HAVRE_TEST_RACE=1 builds with the race detector.
func BuildHavre() (string, error) {
	havreOnce.Do(func() {
		if bin := os.Getenv(EnvHavreBinary); bin != "" {
			havreBin, havreErr = filepath.Abs(bin)
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			havreErr = err
			return
		}
		dir, err := os.MkdirTemp("", "havre-e2e-bin-")
		if err != nil {
			havreErr = err
			return
		}
		registerTempDir(dir)
		out := filepath.Join(dir, "havre")
		args := []string{"build", "-o", out}
		if os.Getenv(EnvRace) == "1" {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/havre")
		havreErr = goCommand(root, 10*time.Minute, args...)
		havreBin = out
	})
	return havreBin, havreErr
}

// Kubectl returns the path of a kubectl built from the k8s.io/kubectl version
// in go.mod (see test/tools/kubectl). The test fails if the build fails.
func Kubectl(t testing.TB) string {
	t.Helper()
	bin, err := BuildKubectl()
	if err != nil {
		t.Fatalf("building kubectl: %v", err)
	}
	return bin
}

// BuildKubectl builds test/tools/kubectl into
// os.UserCacheDir()/havre-test/kubectl-<hash>, where the hash covers go.sum,
// the tool's source and the Go version, so repeated test runs reuse it.
// HAVRE_KUBECTL overrides the build.
func BuildKubectl() (string, error) {
	kubectlOnce.Do(func() {
		if bin := os.Getenv(EnvKubectlBinary); bin != "" {
			kubectlBin, kubectlErr = filepath.Abs(bin)
			return
		}
		kubectlBin, kubectlErr = buildKubectl()
	})
	return kubectlBin, kubectlErr
}

func buildKubectl() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return "", err
	}
	// The cache key covers the kubectl main and the package it runs.
	sources, err := filepath.Glob(filepath.Join(root, "internal", "kubectlcmd", "*.go"))
	if err != nil {
		return "", err
	}
	parts := [][]byte{gosum, []byte(runtime.Version()), []byte(runtime.GOOS + "/" + runtime.GOARCH)}
	for _, f := range append([]string{filepath.Join(root, "test", "tools", "kubectl", "main.go")}, sources...) {
		src, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		parts = append(parts, src)
	}
	h := sha256.New()
	for _, part := range parts {
		h.Write(part)
		h.Write([]byte{0})
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "havre-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kubectl-"+sum)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}

	// Build next to the final path and rename, so that test processes of
	// other packages running at the same time never see a partial file.
	tmp, err := os.CreateTemp(dir, ".kubectl-build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	args := []string{"build", "-o", tmp.Name()}
	if v := requiredVersion(gomod, "k8s.io/kubectl"); strings.HasPrefix(v, "v0.") {
		// k8s.io/kubectl v0.X.Y is Kubernetes v1.X.Y; stamp it as
		// upstream's release builds do, so `kubectl version` is meaningful.
		kube := "v1." + strings.TrimPrefix(v, "v0.")
		minor := strings.SplitN(strings.TrimPrefix(v, "v0."), ".", 2)[0]
		var ld []string
		for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
			ld = append(ld, "-X", pkg+".gitVersion="+kube, "-X", pkg+".gitMajor=1", "-X", pkg+".gitMinor="+minor)
		}
		args = append(args, "-ldflags", strings.Join(ld, " "))
	}
	args = append(args, "./test/tools/kubectl")
	if err := goCommand(root, 10*time.Minute, args...); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// goCommand runs the go tool in dir with a time limit.
func goCommand(dir string, limit time.Duration, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return nil
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("go %s: still running after %v\n%s", strings.Join(args, " "), limit, out.String())
	}
}

func registerTempDir(dir string) {
	tempMu.Lock()
	defer tempMu.Unlock()
	tempDirs = append(tempDirs, dir)
}

// Main runs the tests of a package that uses the framework and then removes
// the binaries built for it. Use it from TestMain:
//
//	func TestMain(m *testing.M) { framework.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	tempMu.Lock()
	var errs []error
	for _, dir := range tempDirs {
		errs = append(errs, os.RemoveAll(dir))
	}
	tempMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "framework: cleaning up:", err)
	}
	os.Exit(code)
}
