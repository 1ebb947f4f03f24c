package agent

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// ownCgroupDirs returns, for every cgroup hierarchy this process is in, the
// directory of its own cgroup (where relative cgroup paths of containers
// it starts resolve).
func ownCgroupDirs() []string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		controllers, path := parts[1], parts[2]
		var mount string
		switch {
		case controllers == "":
			mount = "/sys/fs/cgroup"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				mount = "/sys/fs/cgroup/unified"
			}
		case strings.HasPrefix(controllers, "name="):
			mount = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(controllers, "name="))
		default:
			mount = filepath.Join("/sys/fs/cgroup", controllers)
		}
		dirs = append(dirs, filepath.Join(mount, path))
	}
	return dirs
}

// removePodCgroups removes a pod's (empty) cgroups. Failures are ignored:
// a cgroup still holding processes stays.
func removePodCgroups(uid types.UID) {
	for _, dir := range ownCgroupDirs() {
		for _, qos := range []string{"", "burstable", "besteffort"} {
			_ = os.Remove(filepath.Join(dir, cgroupRoot, qos, "pod"+string(uid)))
		}
	}
}
