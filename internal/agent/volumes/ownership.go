package volumes

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// The permission bits the kubelet adds for an fsGroup: read-write for the
// group (read-only volumes: read), search on directories.
const (
	rwMask   = 0o660
	roMask   = 0o440
	execMask = 0o110
)

// NeedsOwnership reports whether the volume directory dir is not yet given
// to fsGroup: its group is another, it lacks the group's permission bits,
// or (a directory) the setgid bit. fsGroupChangePolicy OnRootMismatch
// changes a volume only then.
func NeedsOwnership(dir string, fsGroup int64, readOnly bool) bool {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return true
	}
	if int64(st.Gid) != fsGroup {
		return true
	}
	want := uint32(rwMask)
	if readOnly {
		want = roMask
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if st.Mode&unix.S_ISGID == 0 {
			return true
		}
		want |= execMask
	}
	return st.Mode&want != want
}

// SetOwnership gives the volume directory dir to the pod's fsGroup, as the
// kubelet's SetVolumeOwnership does: every file and directory under it
// gets the group, group read-write (read on a read-only volume), and
// directories setgid and group search, so that what the pod creates stays
// the group's. Symbolic links get the group but no mode; nothing is
// followed out of dir (the walk goes by descriptors, never by path). With
// policy OnRootMismatch a volume whose root is given already is left as it
// is. It reports whether it walked the volume. A nil fsGroup does nothing.
func SetOwnership(dir string, fsGroup *int64, policy *corev1.PodFSGroupChangePolicy, readOnly bool) (bool, error) {
	if fsGroup == nil {
		return false, nil
	}
	if policy != nil && *policy == corev1.FSGroupChangeOnRootMismatch && !NeedsOwnership(dir, *fsGroup, readOnly) {
		return false, nil
	}
	mask := uint32(rwMask)
	if readOnly {
		mask = roMask
	}
	if err := own(unix.AT_FDCWD, dir, int(*fsGroup), mask); err != nil {
		return true, fmt.Errorf("giving volume %s to fsGroup %d: %w", dir, *fsGroup, err)
	}
	return true, nil
}

// own changes one entry of the directory parent (or dir at AT_FDCWD) and,
// a directory, what is under it.
func own(parent int, name string, gid int, mask uint32) error {
	fd, err := unix.Openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed meanwhile
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := unix.Fchownat(fd, "", -1, gid, unix.AT_EMPTY_PATH); err != nil {
		return err
	}
	kind := st.Mode & unix.S_IFMT
	if kind == unix.S_IFLNK {
		return nil
	}
	mode := st.Mode & 0o7777
	want := mode | mask
	if kind == unix.S_IFDIR {
		want |= unix.S_ISGID | execMask
	}
	if want != mode {
		// chmod through the descriptor: O_PATH descriptors take no
		// fchmod, their /proc link does (and names this very inode).
		if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), want); err != nil {
			return err
		}
	}
	if kind != unix.S_IFDIR {
		return nil
	}
	dfd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dfd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if err := own(dfd, n, gid, mask); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
