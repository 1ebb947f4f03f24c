package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// copier copies a directory tree, keeping modes, owners, times, symlinks,
// device nodes, FIFOs and extended attributes (hard links become separate
// copies). With reflink, regular files share their blocks with the source
// (FICLONE) where the filesystem can, and are copied otherwise.
type copier struct {
	reflink  bool
	progress Progress
	total    int64
	done     int64
}

// copyTree copies the contents of src into dst, an existing directory,
// telling progress the bytes copied out of the total of the regular files.
func copyTree(ctx context.Context, src, dst string, reflink bool, progress Progress) error {
	c := &copier{reflink: reflink, progress: progress}
	if progress != nil {
		if err := filepath.WalkDir(src, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					c.total += info.Size()
				}
			}
			return nil
		}); err != nil {
			return err
		}
		progress(0, c.total)
	}
	if err := c.dir(ctx, src, dst); err != nil {
		return err
	}
	if progress != nil {
		progress(c.done, c.total)
	}
	return nil
}

// dir copies the entries of src into dst, then dst takes src's metadata.
func (c *copier) dir(ctx context.Context, src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			return fmt.Errorf("copying %s: %w", s, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := c.dir(ctx, s, d); err != nil {
				return err
			}
			continue
		case unix.S_IFREG:
			if err := c.file(s, d, &st); err != nil {
				return fmt.Errorf("copying %s: %w", s, err)
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, d); err != nil {
				return err
			}
		default: // devices, FIFOs, sockets
			if err := unix.Mknod(d, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("copying %s: %w", s, err)
			}
		}
		if err := copyMeta(s, d, &st); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	return copyMeta(src, dst, &st)
}

func (c *copier) file(src, dst string, st *unix.Stat_t) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if c.reflink {
		if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
			c.add(st.Size)
			return out.Close()
		}
	}
	if err := c.copyData(in, out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyData copies in to out, leaving holes where the source reads zeros.
func (c *copier) copyData(in io.Reader, out *os.File) error {
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if allZero(buf[:n]) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			off += int64(n)
			c.add(int64(n))
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return out.Truncate(off)
}

func (c *copier) add(n int64) {
	c.done += n
	if c.progress != nil {
		c.progress(c.done, c.total)
	}
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// copyMeta gives dst src's extended attributes, owner, mode and times.
func copyMeta(src, dst string, st *unix.Stat_t) error {
	copyXattrs(src, dst)
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting the times of %s: %w", dst, err)
	}
	return nil
}

// copyXattrs copies what extended attributes it can; a filesystem without
// them (or an attribute the destination refuses) is no error.
func copyXattrs(src, dst string) {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	names := make([]byte, size)
	size, err = unix.Llistxattr(src, names)
	if err != nil {
		return
	}
	start := 0
	for i := 0; i < size; i++ {
		if names[i] != 0 {
			continue
		}
		name := string(names[start:i])
		start = i + 1
		if name == "" {
			continue
		}
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil || n < 0 {
			continue
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, name, val[:n], 0)
	}
}

// copyFile copies one (image) file, sparse, sharing blocks where the
// filesystem can.
func copyFile(src, dst string, progress Progress) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	c := &copier{progress: progress, total: info.Size()}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		c.add(info.Size())
		return out.Close()
	}
	if err := c.copyData(in, out); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
