package mountinfo

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// UnmountBelow lazily unmounts every mount point strictly below dir,
// deepest first. Points already gone are not errors.
func UnmountBelow(dir string) error {
	mounts, err := Read()
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	var points []string
	for _, p := range Under(mounts, dir) {
		if p != dir {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
