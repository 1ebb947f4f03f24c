package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unsafe"

	"github.com/havre/havre/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// xfsBacking keeps each volume in a directory of its own xfs project whose
// quota limits its size (when the filesystem is mounted with prjquota;
// sizes are not enforced otherwise); snapshots, clones and restores are
// reflink copies, which share the blocks until they are written.
type xfsBacking struct {
	dirBacking
	mountPoint string
	quota      bool
}

// NewXFS is the "xfs" backing rooted at root, a directory on xfs.
func NewXFS(root string) (Backing, error) {
	b := &xfsBacking{dirBacking: dirBacking{layout: layout{root: root}, reflink: true}}
	if err := b.init(); err != nil {
		return nil, err
	}
	m, err := mountOf(root)
	if err != nil {
		return nil, err
	}
	b.mountPoint = m.Point
	b.quota = hasProjectQuota(m)
	if b.quota {
		if err := needTool("xfs_quota"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func hasProjectQuota(m mountinfo.Mount) bool {
	for _, o := range strings.Split(m.SuperOptions, ",") {
		if o == "prjquota" || o == "pquota" {
			return true
		}
	}
	return false
}

func (b *xfsBacking) Kind() string       { return "xfs" }
func (b *xfsBacking) EnforcesSize() bool { return b.quota }

func (b *xfsBacking) Create(ctx context.Context, id string, size int64) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.volume(id)
	if ok, err := exists(b.meta(id)); err != nil {
		return "", err
	} else if ok {
		return p, nil
	}
	return p, b.create(ctx, id, size)
}

// create makes the directory of a volume in a project of its own, limited
// to size.
func (b *xfsBacking) create(ctx context.Context, id string, size int64) error {
	p := b.volume(id)
	if err := os.RemoveAll(p); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o777); err != nil {
		return fmt.Errorf("creating volume %s: %w", id, err)
	}
	if err := os.Chmod(p, 0o777); err != nil {
		return err
	}
	if !b.quota {
		return b.writeMeta(id, meta{Size: size})
	}
	project, err := b.nextProject()
	if err != nil {
		return err
	}
	if err := setProject(p, project); err != nil {
		return fmt.Errorf("volume %s: %w", id, err)
	}
	return b.limit(ctx, id, project, size)
}

func (b *xfsBacking) limit(ctx context.Context, id string, project uint32, size int64) error {
	if b.quota {
		cmd := fmt.Sprintf("limit -p bhard=%d %d", size, project)
		if _, err := run(ctx, "xfs_quota", "-x", "-c", cmd, b.mountPoint); err != nil {
			return fmt.Errorf("limiting volume %s to %d bytes: %w", id, size, err)
		}
	}
	return b.writeMeta(id, meta{Size: size})
}

// nextProject is one more than the highest project of the volumes.
func (b *xfsBacking) nextProject() (uint32, error) {
	entries, err := os.ReadDir(b.root + "/" + volumesDir)
	if err != nil {
		return 0, err
	}
	// Projects of Havre's volumes start high, away from those an
	// administrator numbers by hand in /etc/projid.
	next := uint32(1 << 20)
	for _, e := range entries {
		x, err := getFsxattr(b.volume(e.Name()))
		if err != nil {
			continue
		}
		if x.Projid >= next {
			next = x.Projid + 1
		}
	}
	return next, nil
}

func (b *xfsBacking) CreateFrom(ctx context.Context, id string, size int64, source Source, progress Progress) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	src, err := copySource(b.layout, source)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.volume(id)
	if ok, err := exists(b.meta(id)); err != nil {
		return "", err
	} else if ok {
		return p, nil
	}
	if err := b.create(ctx, id, size); err != nil {
		return "", err
	}
	_ = os.Remove(b.meta(id)) // written again once the copy is done
	if err := copyTree(ctx, src, p, true, progress); err != nil {
		_ = os.RemoveAll(p)
		return "", fmt.Errorf("copying %s into volume %s: %w", src, id, err)
	}
	return p, b.writeMeta(id, meta{Size: size})
}

func (b *xfsBacking) Expand(ctx context.Context, id string, size int64) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m, err := b.readMeta(id)
	if err != nil {
		return fmt.Errorf("volume %s: %w", id, err)
	}
	if size <= m.Size {
		return nil
	}
	var project uint32
	if b.quota {
		x, err := getFsxattr(b.volume(id))
		if err != nil {
			return fmt.Errorf("volume %s: %w", id, err)
		}
		project = x.Projid
	}
	return b.limit(ctx, id, project, size)
}

func (b *xfsBacking) Delete(ctx context.Context, id string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	if b.quota {
		if x, err := getFsxattr(b.volume(id)); err == nil && x.Projid != 0 {
			// Lift the limit so that a project number used again starts
			// afresh.
			cmd := fmt.Sprintf("limit -p bhard=0 %d", x.Projid)
			_, _ = run(ctx, "xfs_quota", "-x", "-c", cmd, b.mountPoint)
		}
	}
	return b.dirBacking.Delete(ctx, id)
}

func (b *xfsBacking) Usage(ctx context.Context, id string) (int64, int64, error) {
	if !b.quota {
		return b.dirBacking.Usage(ctx, id)
	}
	if err := checkID("volume", id); err != nil {
		return 0, 0, err
	}
	// statfs of a directory of a project reports the project's quota.
	var st unix.Statfs_t
	if err := unix.Statfs(b.volume(id), &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, 0, fmt.Errorf("volume %s is not on this node", id)
		}
		return 0, 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// fsxattr is struct fsxattr of linux/fs.h.
type fsxattr struct {
	Xflags, Extsize, Nextents, Projid, Cowextsize uint32
	_                                             [8]byte
}

const (
	fsIocFsgetxattr    = 0x801c581f // _IOR('X', 31, struct fsxattr)
	fsIocFssetxattr    = 0x401c5820 // _IOW('X', 32, struct fsxattr)
	fsXflagProjinherit = 0x00000200
)

func getFsxattr(p string) (fsxattr, error) {
	var x fsxattr
	f, err := os.Open(p)
	if err != nil {
		return x, err
	}
	defer f.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFsgetxattr, uintptr(unsafe.Pointer(&x))); errno != 0 {
		return x, fmt.Errorf("FS_IOC_FSGETXATTR %s: %w", p, errno)
	}
	return x, nil
}

// setProject puts the directory p (empty) in project, inherited by what
// is created in it.
func setProject(p string, project uint32) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var x fsxattr
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFsgetxattr, uintptr(unsafe.Pointer(&x))); errno != 0 {
		return fmt.Errorf("FS_IOC_FSGETXATTR %s: %w", p, errno)
	}
	x.Projid = project
	x.Xflags |= fsXflagProjinherit
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFssetxattr, uintptr(unsafe.Pointer(&x))); errno != 0 {
		return fmt.Errorf("setting project %d on %s (FS_IOC_FSSETXATTR): %w", project, p, errno)
	}
	return nil
}
