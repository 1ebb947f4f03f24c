package pause

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPauseProgram builds (or takes the embedded) pause binary, checks that
// it is static, and that it exits 0 on SIGTERM.
func TestPauseProgram(t *testing.T) {
	dir := t.TempDir()
	bin, origin, err := Binary(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pause binary from %s: %d bytes", origin, len(bin))
	// A second call reuses what the first built.
	if _, origin2, err := Binary(filepath.Join(dir, "cache")); err != nil || (origin != "embedded" && origin2 != origin) {
		t.Errorf("second Binary: %s, %v", origin2, err)
	}
	path := filepath.Join(dir, "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "--version").Output(); err != nil || string(out) != "havre pause\n" {
		t.Fatalf("pause --version: %q, %v", out, err)
	}
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Signal until it exits: the first SIGTERM may arrive before the
	// program has installed its handler, which kills it with the signal.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-done:
			if err != nil {
				ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !(ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
					t.Fatalf("pause exited with %v", err)
				}
			}
			return
		case <-tick.C:
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatal("pause did not exit on SIGTERM")
		}
	}
}
