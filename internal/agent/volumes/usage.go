package volumes

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Usage is a volume's usage, as the kubelet's summary API reports a
// volume (the figures of kubelet_volume_stats_*).
type Usage struct {
	// CapacityBytes and AvailableBytes are the filesystem's holding the
	// volume; UsedBytes is what the volume's files take on disk.
	CapacityBytes, AvailableBytes, UsedBytes uint64
	// Inodes and InodesFree are the filesystem's; InodesUsed is the
	// volume's files and directories.
	Inodes, InodesFree, InodesUsed uint64
}

// Measure reads the usage of the volume directory dir: statfs for the
// filesystem's figures, and a walk of dir (as `du -x`: one filesystem,
// hard links counted once) for the volume's own.
func Measure(dir string) (Usage, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return Usage{}, err
	}
	u := Usage{
		CapacityBytes:  fs.Blocks * uint64(fs.Bsize),
		AvailableBytes: fs.Bavail * uint64(fs.Bsize),
		Inodes:         fs.Files,
		InodesFree:     fs.Ffree,
	}
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		return Usage{}, err
	}
	w := walker{dev: root.Dev, seen: map[uint64]bool{}}
	if err := w.walk(unix.AT_FDCWD, dir, &u); err != nil {
		return Usage{}, err
	}
	return u, nil
}

type walker struct {
	dev  uint64
	seen map[uint64]bool // inodes of files with several links
}

func (w *walker) walk(parent int, name string, u *Usage) error {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Dev != w.dev {
		return nil // another filesystem mounted inside
	}
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if w.seen[st.Ino] {
			return nil
		}
		w.seen[st.Ino] = true
	}
	u.InodesUsed++
	u.UsedBytes += uint64(st.Blocks) * 512
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if err := w.walk(fd, n, u); err != nil {
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
