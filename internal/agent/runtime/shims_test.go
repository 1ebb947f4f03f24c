package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestKillShims(t *testing.T) {
	proc := t.TempDir()
	const sock = "/var/lib/havre/agent/containerd/containerd.sock"
	procs := []struct {
		pid, ppid int
		comm      string
		args      []string
	}{
		{100, 1, "containerd-shim", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock}},
		{101, 100, "pause", []string{"/pause"}},
		{102, 100, "web (x) y", []string{"/web", "serve"}},
		{200, 1, "containerd-shim", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "def", "-address", "/run/containerd/containerd.sock"}},
		{201, 200, "nginx", []string{"nginx"}},
		{300, 1, "bash", []string{"bash", "-address", sock}},
	}
	for _, p := range procs {
		dir := filepath.Join(proc, strconv.Itoa(p.pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(p.pid) + " (" + p.comm + ") S " + strconv.Itoa(p.ppid) + " 1 1 0"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(p.args, "\x00")+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var killed []int
	n, err := killShims(proc, sock, func(pid int, sig syscall.Signal) error {
		if sig != syscall.SIGKILL {
			t.Errorf("signal %v", sig)
		}
		killed = append(killed, pid)
		if pid == 102 {
			return syscall.ESRCH // already gone: not an error
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("killShims = %d, %v; want 1 shim", n, err)
	}
	if !slices.Equal(killed, []int{100, 101, 102}) {
		t.Errorf("killed %v, want the shim of our socket and its children [100 101 102]", killed)
	}
}
