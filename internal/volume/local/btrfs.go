package local

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// btrfsBacking keeps each volume in a btrfs subvolume whose quota group
// limits its size; snapshots are read-only snapshots of the subvolume,
// restores and clones writable snapshots (no data is copied).
type btrfsBacking struct {
	layout
	mu sync.Mutex
}

// NewBtrfs is the "btrfs" backing rooted at root, a directory on btrfs. It
// enables quotas on the filesystem.
func NewBtrfs(ctx context.Context, root string) (Backing, error) {
	b := &btrfsBacking{layout: layout{root: root}}
	if err := b.init(); err != nil {
		return nil, err
	}
	if _, err := run(ctx, "btrfs", "qgroup", "show", root); err != nil {
		if _, err := run(ctx, "btrfs", "quota", "enable", root); err != nil {
			return nil, fmt.Errorf("enabling btrfs quotas (volume sizes are enforced by quota groups): %w", err)
		}
	}
	return b, nil
}

func (b *btrfsBacking) Kind() string          { return "btrfs" }
func (b *btrfsBacking) EnforcesSize() bool    { return true }
func (b *btrfsBacking) Path(id string) string { return b.volume(id) }

func (b *btrfsBacking) Create(ctx context.Context, id string, size int64) (string, error) {
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
	if err := b.deleteSubvolume(ctx, p); err != nil {
		return "", err
	}
	if _, err := run(ctx, "btrfs", "subvolume", "create", p); err != nil {
		return "", fmt.Errorf("creating volume %s: %w", id, err)
	}
	if err := os.Chmod(p, 0o777); err != nil {
		return "", err
	}
	return p, b.finish(ctx, id, size)
}

// finish limits a new volume's quota group and records it.
func (b *btrfsBacking) finish(ctx context.Context, id string, size int64) error {
	if _, err := run(ctx, "btrfs", "qgroup", "limit", strconv.FormatInt(size, 10), b.volume(id)); err != nil {
		return fmt.Errorf("limiting volume %s to %d bytes: %w", id, size, err)
	}
	return b.writeMeta(id, meta{Size: size})
}

func (b *btrfsBacking) CreateFrom(ctx context.Context, id string, size int64, source Source, progress Progress) (string, error) {
	if err := checkID("volume", id); err != nil {
		return "", err
	}
	src, err := sourceDir(b.layout, source)
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
	if err := b.deleteSubvolume(ctx, p); err != nil {
		return "", err
	}
	if _, err := run(ctx, "btrfs", "subvolume", "snapshot", src, p); err != nil {
		return "", fmt.Errorf("creating volume %s from %s: %w", id, src, err)
	}
	if progress != nil {
		progress(1, 1)
	}
	return p, b.finish(ctx, id, size)
}

func (b *btrfsBacking) Expand(ctx context.Context, id string, size int64) error {
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
	return b.finish(ctx, id, size)
}

func (b *btrfsBacking) Delete(ctx context.Context, id string) error {
	if err := checkID("volume", id); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.deleteSubvolume(ctx, b.volume(id)); err != nil {
		return fmt.Errorf("deleting volume %s: %w", id, err)
	}
	if err := os.Remove(b.meta(id)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// deleteSubvolume deletes the subvolume at p, and its quota group; a
// missing one is no error.
func (b *btrfsBacking) deleteSubvolume(ctx context.Context, p string) error {
	if ok, err := exists(p); err != nil || !ok {
		return err
	}
	qgroup, _ := b.qgroupID(ctx, p)
	if _, err := run(ctx, "btrfs", "subvolume", "delete", p); err != nil {
		return err
	}
	if qgroup != "" {
		// The quota group of a deleted subvolume goes once its data is
		// freed; until then the destroy fails, which is harmless.
		_, _ = run(ctx, "btrfs", "qgroup", "destroy", qgroup, b.root)
	}
	return nil
}

// qgroupID is the level-0 quota group of the subvolume at p ("0/<id>").
func (b *btrfsBacking) qgroupID(ctx context.Context, p string) (string, error) {
	out, err := run(ctx, "btrfs", "inspect-internal", "rootid", p)
	if err != nil {
		return "", err
	}
	return "0/" + strings.TrimSpace(string(out)), nil
}

// referenced is the bytes the subvolume at p refers to.
func (b *btrfsBacking) referenced(ctx context.Context, p string) (int64, error) {
	qgroup, err := b.qgroupID(ctx, p)
	if err != nil {
		return 0, err
	}
	// Quota numbers are brought up to date by a transaction commit.
	if _, err := run(ctx, "btrfs", "filesystem", "sync", p); err != nil {
		return 0, err
	}
	out, err := run(ctx, "btrfs", "qgroup", "show", "--raw", b.root)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == qgroup {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no quota group %s for %s", qgroup, p)
}

func (b *btrfsBacking) Snapshot(ctx context.Context, volumeID, snapshotID string, progress Progress) (int64, error) {
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok, err := exists(dst); err != nil {
		return 0, err
	} else if !ok {
		if _, err := run(ctx, "btrfs", "subvolume", "snapshot", "-r", src, dst); err != nil {
			return 0, fmt.Errorf("snapshot %s of volume %s: %w", snapshotID, volumeID, err)
		}
	}
	if progress != nil {
		progress(1, 1)
	}
	return b.referenced(ctx, dst)
}

func (b *btrfsBacking) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := checkID("snapshot", snapshotID); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deleteSubvolume(ctx, b.snapshot(snapshotID))
}

func (b *btrfsBacking) Usage(ctx context.Context, id string) (int64, int64, error) {
	if err := checkID("volume", id); err != nil {
		return 0, 0, err
	}
	m, err := b.readMeta(id)
	if err != nil {
		return 0, 0, fmt.Errorf("volume %s: %w", id, err)
	}
	used, err := b.referenced(ctx, b.volume(id))
	return used, m.Size, err
}

func (b *btrfsBacking) Free(ctx context.Context) (int64, error) { return freeBytes(b.root) }
