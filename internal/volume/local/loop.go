package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// loopBacking keeps each volume in a sparse image file holding an ext4
// filesystem, loop-mounted on the volume's directory: sizes are enforced
// by the filesystem, volumes grow online (truncate, losetup -c,
// resize2fs); snapshots and clones copy the image of the frozen
// filesystem (sharing blocks where the filesystem under the images can).
// The mounts do not survive a restart: Reattach mounts them again.
type loopBacking struct {
	layout
	mu sync.Mutex
}

// NewLoop is the "loop" backing rooted at root.
func NewLoop(root string) (Backing, error) {
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "resize2fs", "losetup", "mount", "fsfreeze"} {
		if err := needTool(tool); err != nil {
			return nil, err
		}
	}
	b := &loopBacking{layout: layout{root: root}}
	if err := b.init(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, imagesDir), 0o700); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *loopBacking) image(id string) string { return filepath.Join(b.root, imagesDir, id+".img") }
func (b *loopBacking) snapshotImage(id string) string {
	return b.snapshot(id) + ".img"
}

func (b *loopBacking) Kind() string          { return "loop" }
func (b *loopBacking) EnforcesSize() bool    { return true }
func (b *loopBacking) Path(id string) string { return b.volume(id) }

func (b *loopBacking) Create(ctx context.Context, id string, size int64) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, err := exists(b.meta(id)); err != nil {
		return "", err
	} else if ok {
		return b.volume(id), b.mount(ctx, id)
	}
	img := b.image(id)
	if err := b.newImage(img, imageSize(size)); err != nil {
		return "", fmt.Errorf("volume %s: %w", id, err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", "-L", label(id), img); err != nil {
		_ = os.Remove(img)
		return "", fmt.Errorf("volume %s: %w", id, err)
	}
	if err := b.mount(ctx, id); err != nil {
		return "", err
	}
	if err := os.Chmod(b.volume(id), 0o777); err != nil {
		return "", err
	}
	return b.volume(id), b.writeMeta(id, meta{Size: size})
}

// imageSize is the size of the image of a volume of size bytes: ext4's
// journal, inode tables and bitmaps come on top, so that the volume holds
// at least size bytes of files.
func imageSize(size int64) int64 {
	const mib = 1 << 20
	overhead := size/16 + 16*mib
	return (size + overhead + mib - 1) / mib * mib
}

// label is an ext4 label (16 bytes at most) for a volume.
func label(id string) string {
	if len(id) > 16 {
		return id[len(id)-16:]
	}
	return id
}

func (b *loopBacking) newImage(img string, size int64) error {
	f, err := os.OpenFile(img, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mount loop-mounts a volume's image on its directory unless it is.
func (b *loopBacking) mount(ctx context.Context, id string) error {
	p := b.volume(id)
	if _, ok, err := mounted(p); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(p, 0o700); err != nil {
		return err
	}
	// mount -o loop sets up the loop device with autoclear: unmounting
	// frees it.
	if _, err := run(ctx, "mount", "-t", "ext4", "-o", "loop", b.image(id), p); err != nil {
		return fmt.Errorf("mounting volume %s: %w", id, err)
	}
	return nil
}

func (b *loopBacking) unmount(id string) error {
	p := b.volume(id)
	if _, ok, err := mounted(p); err != nil || !ok {
		return err
	}
	if err := unix.Unmount(p, 0); err != nil {
		return fmt.Errorf("unmounting volume %s (is it still in use by a pod?): %w", id, err)
	}
	return nil
}

// device is the loop device a volume is mounted from.
func (b *loopBacking) device(id string) (string, error) {
	dev, ok, err := mounted(b.volume(id))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("volume %s is not mounted", id)
	}
	return dev, nil
}

// frozen runs f with the filesystem of a volume frozen (its image
// consistent on disk).
func (b *loopBacking) frozen(ctx context.Context, id string, f func() error) error {
	p := b.volume(id)
	if _, err := run(ctx, "fsfreeze", "--freeze", p); err != nil {
		return fmt.Errorf("freezing volume %s: %w", id, err)
	}
	err := f()
	if _, uerr := run(context.WithoutCancel(ctx), "fsfreeze", "--unfreeze", p); uerr != nil {
		err = errors.Join(err, fmt.Errorf("thawing volume %s: %w", id, uerr))
	}
	return err
}

func (b *loopBacking) CreateFrom(ctx context.Context, id string, size int64, source Source, progress Progress) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, err := exists(b.meta(id)); err != nil {
		return "", err
	} else if ok {
		return b.volume(id), b.mount(ctx, id)
	}
	img := b.image(id)
	switch {
	case source.Snapshot != "" && source.Volume != "":
		return "", errors.New("a source is a snapshot or a volume, not both")
	case source.Snapshot != "":
		if err := checkID("snapshot", source.Snapshot); err != nil {
			return "", err
		}
		src := b.snapshotImage(source.Snapshot)
		if ok, err := exists(src); err != nil || !ok {
			return "", fmt.Errorf("snapshot %s is not on this node", source.Snapshot)
		}
		if err := copyFile(src, img, progress); err != nil {
			return "", fmt.Errorf("restoring snapshot %s into volume %s: %w", source.Snapshot, id, err)
		}
	case source.Volume != "":
		if err := checkID("volume", source.Volume); err != nil {
			return "", err
		}
		if ok, err := exists(b.meta(source.Volume)); err != nil || !ok {
			return "", fmt.Errorf("volume %s is not on this node", source.Volume)
		}
		if err := b.mount(ctx, source.Volume); err != nil {
			return "", err
		}
		if err := b.frozen(ctx, source.Volume, func() error { return copyFile(b.image(source.Volume), img, progress) }); err != nil {
			return "", fmt.Errorf("cloning volume %s into %s: %w", source.Volume, id, err)
		}
	default:
		return "", errors.New("no source: name a snapshot or a volume")
	}
	if err := b.growOffline(ctx, img, imageSize(size)); err != nil {
		_ = os.Remove(img)
		return "", fmt.Errorf("volume %s: %w", id, err)
	}
	if err := b.mount(ctx, id); err != nil {
		_ = os.Remove(img)
		return "", err
	}
	return b.volume(id), b.writeMeta(id, meta{Size: size})
}

// grow makes the image of a mounted volume size bytes, if larger, and its
// filesystem with it.
func (b *loopBacking) grow(ctx context.Context, id string, size int64) error {
	img := b.image(id)
	info, err := os.Stat(img)
	if err != nil {
		return err
	}
	if size <= info.Size() {
		return nil
	}
	dev, err := b.device(id)
	if err != nil {
		return err
	}
	if err := os.Truncate(img, size); err != nil {
		return fmt.Errorf("growing the image of volume %s: %w", id, err)
	}
	if _, err := run(ctx, "losetup", "--set-capacity", dev); err != nil {
		return fmt.Errorf("growing volume %s: %w", id, err)
	}
	if _, err := run(ctx, "resize2fs", dev); err != nil {
		if strings.Contains(err.Error(), "Permission denied") {
			return fmt.Errorf("growing volume %s online needs CAP_SYS_RESOURCE, which the agent lacks (run it with all root capabilities): %w", id, err)
		}
		return fmt.Errorf("growing volume %s: %w", id, err)
	}
	return nil
}

// growOffline makes an unmounted image size bytes, if larger, and its
// filesystem with it.
func (b *loopBacking) growOffline(ctx context.Context, img string, size int64) error {
	info, err := os.Stat(img)
	if err != nil {
		return err
	}
	if size <= info.Size() {
		return nil
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	// resize2fs wants a freshly checked filesystem.
	if _, err := run(ctx, "e2fsck", "-f", "-p", img); err != nil {
		return err
	}
	_, err = run(ctx, "resize2fs", img)
	return err
}

func (b *loopBacking) Expand(ctx context.Context, id string, size int64) error {
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
	if err := b.mount(ctx, id); err != nil {
		return err
	}
	if err := b.grow(ctx, id, imageSize(size)); err != nil {
		return err
	}
	return b.writeMeta(id, meta{Size: size})
}

func (b *loopBacking) Delete(ctx context.Context, id string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unmount(id); err != nil {
		return err
	}
	for _, p := range []string{b.volume(id), b.image(id), b.meta(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting volume %s: %w", id, err)
		}
	}
	return nil
}

func (b *loopBacking) Snapshot(ctx context.Context, volumeID, snapshotID string, progress Progress) (int64, error) {
	if err := checkID("volume", volumeID); err != nil {
		return 0, err
	}
	if err := checkID("snapshot", snapshotID); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, err := exists(b.meta(volumeID)); err != nil || !ok {
		return 0, fmt.Errorf("volume %s is not on this node", volumeID)
	}
	dst := b.snapshotImage(snapshotID)
	if info, err := os.Stat(dst); err == nil {
		return info.Size(), nil
	}
	if err := b.mount(ctx, volumeID); err != nil {
		return 0, err
	}
	tmp := dst + ".tmp"
	if err := b.frozen(ctx, volumeID, func() error { return copyFile(b.image(volumeID), tmp, progress) }); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("snapshot %s of volume %s: %w", snapshotID, volumeID, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	info, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func (b *loopBacking) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := checkID("snapshot", snapshotID); err != nil {
		return err
	}
	if err := os.Remove(b.snapshotImage(snapshotID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (b *loopBacking) Usage(ctx context.Context, id string) (int64, int64, error) {
	if err := checkID("volume", id); err != nil {
		return 0, 0, err
	}
	if _, ok, err := mounted(b.volume(id)); err != nil {
		return 0, 0, err
	} else if !ok {
		return 0, 0, fmt.Errorf("volume %s is not mounted", id)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.volume(id), &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// Free is the free space under the images less what the sparse images may
// still take.
func (b *loopBacking) Free(ctx context.Context) (int64, error) {
	free, err := freeBytes(b.root)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(filepath.Join(b.root, imagesDir))
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(b.root, imagesDir, e.Name()), &st); err != nil {
			continue
		}
		if unallocated := st.Size - st.Blocks*512; unallocated > 0 {
			free -= unallocated
		}
	}
	return max(free, 0), nil
}

// Reattach mounts every volume's image again (after a restart).
func (b *loopBacking) Reattach(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(b.root, metaDir))
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	n := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if _, ok, err := mounted(b.volume(id)); err == nil && ok {
			continue
		}
		if err := b.mount(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n > 0 {
		slog.Info("mounted the loop volumes again", "volumes", n, "dir", b.root)
	}
	return errors.Join(errs...)
}
