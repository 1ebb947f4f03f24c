// Package pause provides the static binary of the pause program every pod
// sandbox runs (its source is ./program). The binary is embedded when
// `go generate` has built it into ./bin before the havre binary was built;
// otherwise Binary builds it with the Go toolchain once and caches it.
//
// It must never run the pause program itself nor depend on anything outside
// the standard library.
package pause

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

//go:generate env CGO_ENABLED=0 GOOS=linux go build -trimpath "-ldflags=-s -w" -o bin/pause-linux-$GOARCH ./program

//go:embed bin
var binFS embed.FS

//go:embed program/main.go
var source []byte

// Source returns the pause program's source.
func Source() []byte { return source }

// embeddedName is the embedded binary for this architecture.
func embeddedName() string { return "bin/pause-linux-" + runtime.GOARCH }

// Embedded returns the embedded binary, if this havre was built with one.
func Embedded() ([]byte, bool) {
	data, err := fs.ReadFile(binFS, embeddedName())
	return data, err == nil && len(data) > 0
}

// Binary returns the static pause binary for this architecture and where it
// came from: the embedded copy, or one built with the Go toolchain into
// cacheDir (reused while the source is unchanged).
func Binary(cacheDir string) ([]byte, string, error) {
	if data, ok := Embedded(); ok {
		return data, "embedded", nil
	}
	sum := sha256.Sum256(append(bytes.Clone(source), runtime.GOARCH...))
	out := filepath.Join(cacheDir, "pause-"+hex.EncodeToString(sum[:8]))
	if data, err := os.ReadFile(out); err == nil && len(data) > 0 {
		return data, out, nil
	}
	if err := build(cacheDir, out); err != nil {
		return nil, "", fmt.Errorf("this havre binary has no embedded pause program (build it with `go generate ./internal/agent/images/pause` before `go build`), and building one failed: %w", err)
	}
	data, err := os.ReadFile(out)
	return data, out, err
}

// goTool finds the go command.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/local/go/bin/go", "/usr/lib/go/bin/go"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("no Go toolchain in PATH")
}

func build(cacheDir, out string) error {
	gobin, err := goTool()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return err
	}
	src, err := os.MkdirTemp(cacheDir, ".pause-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "main.go"), source, 0o600); err != nil {
		return err
	}
	// A temporary name of its own: other processes may build at once.
	tmpFile, err := os.CreateTemp(cacheDir, ".pause-build-*")
	if err != nil {
		return err
	}
	tmp := tmpFile.Name()
	tmpFile.Close()
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "main.go")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=", "GO111MODULE=on")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("still running after 5m: %w", <-done)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("go build: %v\n%s", err, output.String())
	}
	return os.Rename(tmp, out)
}
