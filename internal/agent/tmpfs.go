package agent

import (
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/havre/havre/internal/mountinfo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// mounter mounts the tmpfs of memory-backed volumes: emptyDir with medium
// Memory, secret and projected volumes (whose content stays off disk).
type mounter interface {
	// mountTmpfs mounts a tmpfs of size bytes (0: the kernel's default) on
	// dir, unless one is mounted there already.
	mountTmpfs(dir string, size int64) error
}

// hostMounter mounts in the agent's own mount namespace.
type hostMounter struct{}

func (hostMounter) mountTmpfs(dir string, size int64) error {
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	opts := ""
	if size > 0 {
		opts = fmt.Sprintf("size=%d", size)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether something is mounted on dir.
func isMountPoint(dir string) (bool, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return false, err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // as the mount table names it
	}
	return mountinfo.IsMountPoint(mounts, dir), nil
}

// memoryVolumeSize is the size of a memory-backed emptyDir, as the kubelet
// computes it: the node's allocatable memory, or less, the pod's memory
// limit (when every container has one) or the volume's sizeLimit.
func memoryVolumeSize(pod *corev1.Pod, sizeLimit *resource.Quantity, allocatable corev1.ResourceList) int64 {
	size := allocatable.Memory().Value()
	var podLimit int64
	limited := len(pod.Spec.Containers) > 0
	for _, c := range pod.Spec.Containers {
		l, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok || l.IsZero() {
			limited = false
			break
		}
		podLimit += l.Value()
	}
	if limited {
		// Sidecars run beside the containers; an init container alone.
		for _, c := range pod.Spec.InitContainers {
			if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && isSidecar(&c) {
				podLimit += l.Value()
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !isSidecar(&c) && l.Value() > podLimit {
				podLimit = l.Value()
			}
		}
		if podLimit > 0 && (size == 0 || podLimit < size) {
			size = podLimit
		}
	}
	if sizeLimit != nil && !sizeLimit.IsZero() && (size == 0 || sizeLimit.Value() < size) {
		size = sizeLimit.Value()
	}
	return size
}
