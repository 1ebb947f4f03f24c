package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// dirBacking keeps each volume in a plain directory: sizes are recorded
// but not enforced; snapshots, clones and restores copy the files.
type dirBacking struct {
	layout
	// reflink: copies share blocks where the filesystem can (xfs).
	reflink bool
	mu      sync.Mutex
}

// NewDir is the "dir" backing rooted at root.
func NewDir(root string) (Backing, error) {
	b := &dirBacking{layout: layout{root: root}}
	if err := b.init(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *dirBacking) Kind() string       { return "dir" }
func (b *dirBacking) EnforcesSize() bool { return false }
func (b *dirBacking) Path(id string) string {
	return b.volume(id)
}

func (b *dirBacking) Create(ctx context.Context, id string, size int64) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.create(id, size)
}

func (b *dirBacking) create(id string, size int64) (string, error) {
	p := b.volume(id)
	if err := os.Mkdir(p, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("creating volume %s: %w", id, err)
	}
	// 0777 like upstream's local volumes' emptyDir-like default; the
	// umask does not apply.
	if err := os.Chmod(p, 0o777); err != nil {
		return "", err
	}
	if _, err := b.readMeta(id); err != nil {
		if err := b.writeMeta(id, meta{Size: size}); err != nil {
			return "", err
		}
	}
	return p, nil
}

func (b *dirBacking) CreateFrom(ctx context.Context, id string, size int64, source Source, progress Progress) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	src, err := copySource(b.layout, source)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, _ := exists(b.meta(id)); ok {
		return b.volume(id), nil
	}
	p := b.volume(id)
	if err := os.RemoveAll(p); err != nil {
		return "", err
	}
	if _, err := b.create(id, size); err != nil {
		return "", err
	}
	// The meta file marks a finished volume: written after the copy.
	_ = os.Remove(b.meta(id))
	if err := copyTree(ctx, src, p, b.reflink, progress); err != nil {
		_ = os.RemoveAll(p)
		return "", fmt.Errorf("copying %s into volume %s: %w", src, id, err)
	}
	if err := b.writeMeta(id, meta{Size: size}); err != nil {
		return "", err
	}
	return p, nil
}

// copySource is the directory a copying CreateFrom copies: a snapshot
// counts once its copy finished.
func copySource(l layout, source Source) (string, error) {
	src, err := sourceDir(l, source)
	if err != nil {
		return "", err
	}
	if source.Snapshot != "" {
		if ok, err := exists(src + ".done"); err != nil {
			return "", err
		} else if !ok {
			return "", fmt.Errorf("snapshot %s is not complete: it is being taken, or taking it failed", source.Snapshot)
		}
	}
	return src, nil
}

// sourceDir is the directory a CreateFrom copies.
func sourceDir(l layout, source Source) (string, error) {
	var p string
	switch {
	case source.Snapshot != "" && source.Volume != "":
		return "", errors.New("a source is a snapshot or a volume, not both")
	case source.Snapshot != "":
		if err := checkID("snapshot", source.Snapshot); err != nil {
			return "", err
		}
		p = l.snapshot(source.Snapshot)
	case source.Volume != "":
		if err := checkID("volume", source.Volume); err != nil {
			return "", err
		}
		p = l.volume(source.Volume)
	default:
		return "", errors.New("no source: name a snapshot or a volume")
	}
	if ok, err := exists(p); err != nil {
		return "", err
	} else if !ok {
		if source.Snapshot != "" {
			return "", fmt.Errorf("snapshot %s is not on this node", source.Snapshot)
		}
		return "", fmt.Errorf("volume %s is not on this node", source.Volume)
	}
	return p, nil
}

func (b *dirBacking) Expand(ctx context.Context, id string, size int64) error {
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
	return b.writeMeta(id, meta{Size: size})
}

func (b *dirBacking) Delete(ctx context.Context, id string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.RemoveAll(b.volume(id)); err != nil {
		return fmt.Errorf("deleting volume %s: %w", id, err)
	}
	if err := os.Remove(b.meta(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (b *dirBacking) Snapshot(ctx context.Context, volumeID, snapshotID string, progress Progress) (int64, error) {
	if err := checkID("volume", volumeID); err != nil {
		return 0, err
	}
	if err := checkID("snapshot", snapshotID); err != nil {
		return 0, err
	}
	src := b.volume(volumeID)
	if ok, err := exists(src); err != nil || !ok {
		return 0, fmt.Errorf("volume %s is not on this node", volumeID)
	}
	dst := b.snapshot(snapshotID)
	done := dst + ".done"
	if ok, _ := exists(done); ok {
		return diskUsage(ctx, dst)
	}
	if err := os.RemoveAll(dst); err != nil {
		return 0, err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return 0, err
	}
	if err := copyTree(ctx, src, dst, b.reflink, progress); err != nil {
		_ = os.RemoveAll(dst)
		return 0, fmt.Errorf("snapshot %s of volume %s: %w", snapshotID, volumeID, err)
	}
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		return 0, err
	}
	return diskUsage(ctx, dst)
}

func (b *dirBacking) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := checkID("snapshot", snapshotID); err != nil {
		return err
	}
	dst := b.snapshot(snapshotID)
	if err := os.Remove(dst + ".done"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dst)
}

func (b *dirBacking) Usage(ctx context.Context, id string) (int64, int64, error) {
	if err := checkID("volume", id); err != nil {
		return 0, 0, err
	}
	m, err := b.readMeta(id)
	if err != nil {
		return 0, 0, fmt.Errorf("volume %s: %w", id, err)
	}
	used, err := diskUsage(ctx, b.volume(id))
	return used, m.Size, err
}

func (b *dirBacking) Free(ctx context.Context) (int64, error) { return freeBytes(b.root) }
