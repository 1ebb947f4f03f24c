package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// KillShims kills the containerd shims that serve the containerd listening
// on socket (`containerd-shim-* ... -address <socket>`), with the processes
// they started (the containers' first processes: killing one ends its PID
// namespace). Call it with that containerd stopped and the pods removed:
// what is left then is a shim whose sandbox containerd no longer lists
// (one a crash left mid-creation), which nothing else would ever stop.
func KillShims(socket string) (int, error) {
	return killShims("/proc", socket, syscall.Kill)
}

func killShims(proc, socket string, kill func(int, syscall.Signal) error) (int, error) {
	procs, err := readProcs(proc)
	if err != nil {
		return 0, err
	}
	var shims []int
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		if isShimOf(p.args, socket) {
			shims = append(shims, p.pid)
		}
	}
	var errs []error
	for _, shim := range shims {
		// The shim first, so that it cannot start anything more, then
		// what it had started.
		for _, pid := range append([]int{shim}, children[shim]...) {
			if err := kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("killing process %d of shim %d: %w", pid, shim, err))
			}
		}
	}
	return len(shims), errors.Join(errs...)
}

// isShimOf reports whether a command line is a containerd shim's serving
// the containerd on socket.
func isShimOf(args []string, socket string) bool {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if (args[i] == "-address" || args[i] == "--address") && filepath.Clean(args[i+1]) == filepath.Clean(socket) {
			return true
		}
	}
	return false
}

type procInfo struct {
	pid, ppid int
	args      []string
}

// readProcs lists the processes under proc: their command lines and
// parents. Processes that exit while it reads are skipped.
func readProcs(proc string) ([]procInfo, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		out = append(out, procInfo{pid: pid, ppid: ppid, args: args})
	}
	return out, nil
}
