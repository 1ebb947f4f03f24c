package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/havre/havre/internal/network/podnet"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
)

// machineInfo is what the node reports about the machine.
type machineInfo struct {
	CPUs       int
	MemTotal   int64
	MachineID  string
	SystemUUID string
	BootID     string
	Kernel     string
	OSImage    string
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func readMachineInfo() machineInfo {
	m := machineInfo{CPUs: goruntime.NumCPU()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal, _, _ = parseMeminfo(data)
	}
	m.MachineID = readTrimmed("/etc/machine-id")
	if m.MachineID == "" {
		m.MachineID = readTrimmed("/var/lib/dbus/machine-id")
	}
	m.SystemUUID = strings.ToLower(readTrimmed("/sys/class/dmi/id/product_uuid"))
	m.BootID = readTrimmed("/proc/sys/kernel/random/boot_id")
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		m.Kernel = utsString(u.Release[:])
	}
	m.OSImage = "Linux"
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		if img := parseOSRelease(data); img != "" {
			m.OSImage = img
		}
	}
	return m
}

func utsString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// parseMeminfo returns MemTotal and MemAvailable in bytes.
func parseMeminfo(data []byte) (total, available int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, perr := strconv.ParseInt(f[1], 10, 64)
		if perr != nil {
			continue
		}
		if len(f) == 3 && f[2] == "kB" {
			v *= 1024
		}
		switch f[0] {
		case "MemTotal:":
			total = v
			found++
		case "MemAvailable:":
			available = v
			found++
		}
	}
	if found < 2 {
		return total, available, errors.New("meminfo lacks MemTotal or MemAvailable")
	}
	return total, available, nil
}

// parseOSRelease returns PRETTY_NAME from an os-release file.
func parseOSRelease(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// defaultRouteInterface returns the interface of the IPv4 default route
// with the lowest metric, from /proc/net/route.
func defaultRouteInterface(data []byte) string {
	best, bestMetric := "", int64(-1)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue // not a default route
		}
		metric, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best
}

// internalIP returns the first IPv4 address of the default route's
// interface, else of any up, non-loopback interface.
func internalIP() (net.IP, error) {
	var candidates []string
	if data, err := os.ReadFile("/proc/net/route"); err == nil {
		if name := defaultRouteInterface(data); name != "" {
			candidates = append(candidates, name)
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 && !strings.HasPrefix(i.Name, podnet.DefaultBridge[:5]) && !strings.HasPrefix(i.Name, "veth") {
			candidates = append(candidates, i.Name)
		}
	}
	for _, name := range candidates {
		iface, err := net.InterfaceByName(name)
		if err != nil {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4(), nil
			}
		}
	}
	return nil, errors.New("no IPv4 address on any interface")
}

// fsStats returns the size and the space available to unprivileged users
// of the filesystem holding path.
func fsStats(path string) (total, avail int64, err error) {
	// Measure the nearest existing directory: the one asked for may not
	// exist yet.
	for {
		if _, err := os.Stat(path); err == nil || path == "/" || path == "." {
			break
		}
		path = filepath.Dir(path)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// pidStats returns the number of processes and the PID limit.
func pidStats() (procs, limit int64, err error) {
	loadavg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(loadavg))
	if len(f) < 4 {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg %q", loadavg)
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg %q", loadavg)
	}
	procs, err = strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	limit, err = strconv.ParseInt(readTrimmed("/proc/sys/kernel/pid_max"), 10, 64)
	return procs, limit, err
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
