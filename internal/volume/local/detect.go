package local

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Kinds are the backings Detect knows, "auto" aside.
var Kinds = []string{"btrfs", "xfs", "loop", "dir"}

// Detect makes the backing of the volumes under dir (created if missing):
// want "auto" picks by the filesystem there (btrfs, xfs, else dir); any
// other kind is that backing ("loop" is never picked by auto). Loop
// volumes must be mounted again after a restart: call Reattach.
func Detect(dir string, want string) (Backing, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volumes directory: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", dir, err)
	}
	fsKind := "other"
	switch uint64(st.Type) {
	case unix.BTRFS_SUPER_MAGIC:
		fsKind = "btrfs"
	case unix.XFS_SUPER_MAGIC:
		fsKind = "xfs"
	}
	if want == "" || want == "auto" {
		want = "dir"
		if fsKind != "other" {
			want = fsKind
		}
	}
	switch want {
	case "btrfs", "xfs":
		if fsKind != want {
			return nil, fmt.Errorf("--volume-backing %s: %s is not on %s: choose auto, loop or dir, or another --volumes-dir", want, dir, want)
		}
		if want == "btrfs" {
			return NewBtrfs(context.Background(), dir)
		}
		return NewXFS(dir)
	case "loop":
		return NewLoop(dir)
	case "dir":
		return NewDir(dir)
	}
	return nil, fmt.Errorf("--volume-backing %q: want auto, btrfs, xfs, loop or dir", want)
}
