package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireContainerd skips tests that need root and an installed containerd,
// saying why.
func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (hack/install-deps.sh installs it): %v", bin, err)
		}
	}
}

func TestContainerdSupervision(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	cfg := ContainerdConfig{
		Layout:              Layout{Dir: filepath.Join(dir, "c")},
		Snapshotter:         DetectSnapshotter(filepath.Join(dir, "c", "root")),
		RestrictOOMScoreAdj: !HasCapSysResource(),
		SandboxImage:        "havre.local/pause:test",
		CNIBinDir:           "/usr/lib/cni",
		CNIConfDir:          filepath.Join(dir, "net.d"),
	}
	ctx := context.Background()
	c, v, err := StartContainerd(ctx, cfg, "")
	if err != nil {
		log, _ := os.ReadFile(cfg.Layout.Log())
		t.Fatalf("%v\ncontainerd log:\n%s", err, log)
	}
	defer c.Stop()
	if v.RuntimeName != "containerd" {
		t.Errorf("runtime name %q", v.RuntimeName)
	}
	t.Logf("containerd %s (CRI %s), snapshotter %s, pid %d", v.RuntimeVersion, v.RuntimeApiVersion, cfg.Snapshotter, c.PID())

	// A containerd that dies is restarted.
	first := c.PID()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.PID() == first {
		if time.Now().After(deadline) {
			t.Fatal("containerd was not restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cri, err := Dial(c.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()
	if _, err := cri.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Stop stops it and removes the pid file.
	pid := c.PID()
	c.Stop()
	if isOurContainerd(pid, cfg.Layout.Config()) {
		t.Errorf("containerd %d still runs after Stop", pid)
	}
	if _, err := os.Stat(cfg.Layout.PIDFile()); !os.IsNotExist(err) {
		t.Errorf("pid file after Stop: %v", err)
	}
	log, _ := os.ReadFile(cfg.Layout.Log())
	if !strings.Contains(string(log), "containerd successfully booted") {
		t.Errorf("containerd log lacks the boot line:\n%s", log)
	}
}

func TestStopLeftover(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	l := Layout{Dir: dir}
	// A process whose command line names the config stands in for a
	// containerd left behind.
	cmd := exec.Command("sleep", "60", l.Config())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := os.WriteFile(l.PIDFile(), []byte(" 1234567\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stopLeftover(l); err != nil {
		t.Fatalf("stale pid file: %v", err)
	}
	if err := os.WriteFile(l.PIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stopLeftover(l); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover process was not stopped")
	}
}

// TestContainerdFailsFast: a containerd that cannot start is reported at
// once, with its log.
func TestContainerdFailsFast(t *testing.T) {
	requireContainerd(t)
	l := Layout{Dir: t.TempDir()}
	if err := os.WriteFile(l.Config(), []byte("version = [not toml"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := RestartContainerd(context.Background(), l, "")
	if err == nil {
		t.Fatal("containerd started with a broken configuration")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the failure took %v to report", took)
	}
	if !strings.Contains(err.Error(), "exited as it started") || !strings.Contains(err.Error(), "toml") {
		t.Errorf("error %v, want the exit and containerd's complaint", err)
	}
}
