package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// testFS makes a filesystem of kind (btrfs, xfs, ext4) in an image file in
// t.TempDir(), loop-mounts it and returns the mount point; t.Cleanup
// unmounts it (and what is mounted under it) and frees the loop device.
// It skips the test unless the process is root and the tools are there.
func testFS(t testing.TB, kind string, fsSize int64, options ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	mkfs := "mkfs." + kind
	for _, tool := range []string{mkfs, "losetup", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (hack/install-deps.sh installs it)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, fsSize); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", img}
	switch kind {
	case "ext4":
		args = []string{"-q", "-F", "-E", "nodiscard", img}
	case "xfs":
		args = []string{"-q", "-f", "-K", img}
	case "btrfs":
		args = []string{"-q", "-f", "-K", img}
	}
	if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", mkfs, err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := append([]string{"loop"}, options...)
	out, err := exec.Command("mount", "-t", kind, "-o", strings.Join(opts, ","), img, mnt).CombinedOutput()
	if err != nil && len(options) > 0 {
		// A kernel without xfs quotas refuses prjquota.
		t.Logf("mount -o %s: %s; mounting without %v", strings.Join(opts, ","), out, options)
		out, err = exec.Command("mount", "-t", kind, "-o", "loop", img, mnt).CombinedOutput()
	}
	if err != nil {
		if strings.Contains(string(out), "unknown filesystem") || strings.Contains(string(out), "failed to setup loop") {
			t.Skipf("cannot mount %s here: %s", kind, out)
		}
		t.Fatalf("mount %s: %v: %s", kind, err, out)
	}
	t.Cleanup(func() {
		if err := Unmount(mnt); err != nil {
			t.Error(err)
		}
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmounting the test filesystem: %v", err)
		}
	})
	return mnt
}

// newTestBacking makes a backing of kind on a fresh filesystem.
func newTestBacking(t testing.TB, kind string, fsSize int64) Backing {
	t.Helper()
	var root string
	switch kind {
	case "btrfs":
		if _, err := exec.LookPath("btrfs"); err != nil {
			t.Skip("btrfs not installed (hack/install-deps.sh installs btrfs-progs)")
		}
		root = testFS(t, "btrfs", fsSize)
	case "xfs":
		if _, err := exec.LookPath("xfs_quota"); err != nil {
			t.Skip("xfs_quota not installed (hack/install-deps.sh installs xfsprogs)")
		}
		root = testFS(t, "xfs", fsSize, "prjquota")
	case "loop", "dir":
		root = testFS(t, "ext4", fsSize)
	}
	b, err := Detect(filepath.Join(root, "volumes"), map[string]string{"btrfs": "auto", "xfs": "auto", "loop": "loop", "dir": "auto"}[kind])
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind() != kind {
		t.Fatalf("Detect gave %s, want %s", b.Kind(), kind)
	}
	return b
}

// fill writes up to n bytes into a new file; it returns the first error
// (of a write or the final fsync).
func fill(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, mib)
	for written := int64(0); written < n; written += mib {
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	return f.Sync()
}

func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestBackings(t *testing.T) {
	for _, kind := range []string{"dir", "btrfs", "xfs", "loop"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			b := newTestBacking(t, kind, 1<<30)
			wantEnforced := kind != "dir"
			if kind == "xfs" {
				m, err := mountOf(b.Path("x"))
				if err != nil {
					t.Fatal(err)
				}
				wantEnforced = hasProjectQuota(m)
				if !wantEnforced {
					t.Log("this kernel's xfs has no quotas: sizes are not enforced")
				}
			}
			if b.EnforcesSize() != wantEnforced {
				t.Fatalf("EnforcesSize() = %v, want %v", b.EnforcesSize(), wantEnforced)
			}
			const size = 64 * mib
			p, err := b.Create(ctx, "pvc-a", size)
			if err != nil {
				t.Fatal(err)
			}
			if p != b.Path("pvc-a") {
				t.Fatalf("Create returned %s, Path says %s", p, b.Path("pvc-a"))
			}
			if again, err := b.Create(ctx, "pvc-a", size); err != nil || again != p {
				t.Fatalf("Create again: %s, %v", again, err)
			}
			if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o777 {
				t.Fatalf("volume directory: %v, %v", info, err)
			}

			// Past the size.
			big := filepath.Join(p, "big")
			err = fill(big, 2*size)
			if wantEnforced && !isNoSpace(err) {
				t.Fatalf("writing twice the size: %v, want ENOSPC or EDQUOT", err)
			}
			if !wantEnforced && err != nil {
				t.Fatalf("writing twice the size to a dir volume: %v", err)
			}
			if err := os.Remove(big); err != nil {
				t.Fatal(err)
			}

			// Snapshot, change, restore: the old bytes.
			file := filepath.Join(p, "data", "file")
			if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte("old"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(file, 1000, 2000); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("data/file", filepath.Join(p, "link")); err != nil {
				t.Fatal(err)
			}
			var progressed bool
			if _, err := b.Snapshot(ctx, "pvc-a", "snapcontent-1", func(done, total int64) { progressed = progressed || done == total }); err != nil {
				t.Fatal(err)
			}
			if !progressed {
				t.Error("Snapshot never told progress it was done")
			}
			if err := os.WriteFile(file, []byte("new"), 0o640); err != nil {
				t.Fatal(err)
			}
			// Restored into a larger volume.
			r, err := b.CreateFrom(ctx, "pvc-restored", 96*mib, Source{Snapshot: "snapcontent-1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := readString(t, filepath.Join(r, "data", "file")); got != "old" {
				t.Errorf("restored file holds %q, want %q", got, "old")
			}
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(r, "data", "file"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != 1000 || st.Gid != 2000 || st.Mode&0o777 != 0o640 {
				t.Errorf("restored file: uid %d gid %d mode %o, want 1000 2000 640", st.Uid, st.Gid, st.Mode&0o777)
			}
			if target, err := os.Readlink(filepath.Join(r, "link")); err != nil || target != "data/file" {
				t.Errorf("restored symlink: %q, %v", target, err)
			}
			if wantEnforced {
				if err := fill(filepath.Join(r, "big"), 160*mib); !isNoSpace(err) {
					t.Errorf("writing 160 MiB to a restored 96 MiB volume: %v, want ENOSPC or EDQUOT", err)
				}
				if _, capacity, err := b.Usage(ctx, "pvc-restored"); err != nil || capacity < 96*mib || capacity > 120*mib {
					t.Errorf("restored volume's capacity: %d, %v; want about 96 MiB", capacity, err)
				}
				_ = os.Remove(filepath.Join(r, "big"))
			}

			// Clone.
			c, err := b.CreateFrom(ctx, "pvc-clone", size, Source{Volume: "pvc-a"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := readString(t, filepath.Join(c, "data", "file")); got != "new" {
				t.Errorf("cloned file holds %q, want %q", got, "new")
			}
			if err := os.WriteFile(filepath.Join(c, "data", "file"), []byte("clone"), 0o640); err != nil {
				t.Fatal(err)
			}
			if got := readString(t, file); got != "new" {
				t.Errorf("writing the clone changed the source: %q", got)
			}
			if _, err := b.CreateFrom(ctx, "pvc-x", size, Source{Snapshot: "missing"}, nil); err == nil {
				t.Error("CreateFrom a missing snapshot succeeded")
			}

			// Expand: 96 MiB now fit.
			if err := b.Expand(ctx, "pvc-a", 160*mib); err != nil && kind == "loop" && !hasCapSysResource() {
				t.Logf("growing a mounted ext4 needs CAP_SYS_RESOURCE, which this test lacks: %v", err)
			} else if err != nil {
				t.Fatal(err)
			} else {
				if err := fill(big, 96*mib); err != nil {
					t.Errorf("writing 96 MiB after expanding to 160 MiB: %v", err)
				}
				used, capacity, err := b.Usage(ctx, "pvc-a")
				if err != nil {
					t.Fatal(err)
				}
				if used < 90*mib || capacity < 160*mib || capacity > 200*mib {
					t.Errorf("Usage = %d used, %d capacity; want about 96 MiB of 160 MiB", used, capacity)
				}
			}
			free, err := b.Free(ctx)
			if err != nil || free <= 0 || free > 1<<30 {
				t.Errorf("Free = %d, %v", free, err)
			}

			// Delete.
			for _, id := range []string{"pvc-a", "pvc-restored", "pvc-clone"} {
				if err := b.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(b.Path(id)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("volume %s still there after Delete: %v", id, err)
				}
				if err := b.Delete(ctx, id); err != nil {
					t.Errorf("deleting a missing volume: %v", err)
				}
			}
			if err := b.DeleteSnapshot(ctx, "snapcontent-1"); err != nil {
				t.Fatal(err)
			}
			if err := b.DeleteSnapshot(ctx, "snapcontent-1"); err != nil {
				t.Errorf("deleting a missing snapshot: %v", err)
			}
			if _, err := b.Create(ctx, "../escape", size); err == nil {
				t.Error("Create accepted an ID with a slash")
			}
		})
	}
}

// hasCapSysResource reports whether the process may resize a mounted
// ext4 (CAP_SYS_RESOURCE, capability 24, in the effective set).
func hasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			for _, c := range strings.TrimSpace(v) {
				caps <<= 4
				switch {
				case c >= '0' && c <= '9':
					caps |= uint64(c - '0')
				case c >= 'a' && c <= 'f':
					caps |= uint64(c-'a') + 10
				}
			}
			return caps&(1<<24) != 0
		}
	}
	return false
}
