package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/havre/havre/internal/mountinfo"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The directories under a backing's root.
const (
	volumesDir   = "volumes"   // a volume's data (what pods mount)
	snapshotsDir = "snapshots" // snapshots
	imagesDir    = "images"    // loop: the volumes' image files
	metaDir      = "meta"      // the volumes' recorded sizes
)

// layout is the directories of a backing rooted at root.
type layout struct{ root string }

func (l layout) volume(id string) string   { return filepath.Join(l.root, volumesDir, id) }
func (l layout) snapshot(id string) string { return filepath.Join(l.root, snapshotsDir, id) }
func (l layout) meta(id string) string     { return filepath.Join(l.root, metaDir, id+".json") }

func (l layout) init() error {
	for _, d := range []string{volumesDir, snapshotsDir, metaDir} {
		if err := os.MkdirAll(filepath.Join(l.root, d), 0o700); err != nil {
			return fmt.Errorf("local volumes: %w", err)
		}
	}
	// Pods reach the volumes through bind mounts; the volumes directory
	// itself stays closed to others.
	return nil
}

// meta is what a backing records about a volume.
type meta struct {
	Size int64 `json:"size"`
}

func (l layout) writeMeta(id string, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := l.meta(id) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.meta(id))
}

func (l layout) readMeta(id string) (meta, error) {
	var m meta
	data, err := os.ReadFile(l.meta(id))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

// checkID refuses IDs that are not object names (they become file names).
func checkID(what, id string) error {
	if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
		return fmt.Errorf("%s ID %q: %s", what, id, strings.Join(errs, "; "))
	}
	return nil
}

func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// needTool fails, saying which package to install, when tool is missing.
func needTool(tool string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%s not found: install it (%s) or choose another --volume-backing", tool, packageOf(tool))
	}
	return nil
}

// run runs a tool and returns its standard output; a missing tool or a
// failure is an error naming the tool and what it said.
func run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, needTool(tool)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

func packageOf(tool string) string {
	switch {
	case strings.HasPrefix(tool, "btrfs"):
		return "Debian package btrfs-progs"
	case strings.HasPrefix(tool, "xfs"), tool == "mkfs.xfs":
		return "Debian package xfsprogs"
	case tool == "mkfs.ext4", tool == "resize2fs", tool == "e2fsck":
		return "Debian package e2fsprogs"
	default:
		return "Debian package util-linux"
	}
}

// mountOf is the mount holding path (the last, longest match).
func mountOf(path string) (mountinfo.Mount, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return mountinfo.Mount{}, err
	}
	path = filepath.Clean(path)
	var best mountinfo.Mount
	found := false
	for _, m := range mounts {
		if m.Point == path || m.Point == "/" || strings.HasPrefix(path, m.Point+"/") {
			if !found || len(m.Point) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	if !found {
		return best, fmt.Errorf("no mount holds %s", path)
	}
	return best, nil
}

// mounted reports whether path is a mount point, and its source.
func mounted(path string) (string, bool, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return "", false, err
	}
	path = filepath.Clean(path)
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == path {
			return mounts[i].Source, true, nil
		}
	}
	return "", false, nil
}

// freeBytes is what unprivileged writers may still take on the filesystem
// of path.
func freeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// diskUsage is the bytes allocated to the files under dir (as du counts).
func diskUsage(ctx context.Context, dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// Reattacher is a Backing whose volumes must be set up again after the
// machine or the agent restarts (loop: mount the images again).
type Reattacher interface {
	Reattach(ctx context.Context) error
}

// Reattach sets up a backing's volumes again after a restart, where the
// backing needs it; call it before the volumes are used.
func Reattach(ctx context.Context, b Backing) error {
	if r, ok := b.(Reattacher); ok {
		return r.Reattach(ctx)
	}
	return nil
}

// Unmount unmounts every mount below dir, deepest first (the loop volumes:
// their loop devices go with them). `havre agent reset` calls it; nothing
// of the volumes' data is removed.
func Unmount(dir string) error { return mountinfo.UnmountBelow(dir) }
