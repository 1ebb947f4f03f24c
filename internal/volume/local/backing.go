// Package local stores a node's local volumes and snapshots under a
// directory of the node, on the best backing the filesystem there offers:
// btrfs subvolumes with quota groups, xfs directories with project quotas
// and reflinks, one loop-mounted image file per volume, or plain
// directories whose sizes are not enforced.
package local

import "context"

// Backing is how a node keeps its volumes. IDs are the PersistentVolume
// names (volumes) and VolumeSnapshotContent names (snapshots: the
// snapshotter sets a content's status.snapshotHandle to its name); other
// IDs than DNS subdomain names are refused. Sizes are bytes. A Backing is
// safe for concurrent use. The "loop" backing's volumes must be mounted
// again after a restart before use: Reattach.
type Backing interface {
	// Kind is "btrfs", "xfs", "loop" or "dir".
	Kind() string
	// EnforcesSize reports whether a volume cannot grow past its size.
	EnforcesSize() bool
	// Create makes an empty volume of at least size bytes and returns the
	// directory to mount. It is idempotent: an existing volume of that ID
	// is returned as it is.
	Create(ctx context.Context, id string, size int64) (string, error)
	// CreateFrom makes a volume holding a copy of a snapshot's or another
	// volume's data (source is SnapshotSource or VolumeSource).
	CreateFrom(ctx context.Context, id string, size int64, source Source, progress Progress) (string, error)
	// Expand grows a volume, online where the backing allows.
	Expand(ctx context.Context, id string, size int64) error
	// Delete removes a volume and its data; a missing volume is no error.
	Delete(ctx context.Context, id string) error
	// Snapshot takes a point-in-time copy of a volume and returns its size.
	Snapshot(ctx context.Context, volumeID, snapshotID string, progress Progress) (int64, error)
	// DeleteSnapshot removes a snapshot; a missing one is no error.
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// Path is the directory of a volume (whether or not it exists).
	Path(id string) string
	// Usage reports a volume's used and total bytes.
	Usage(ctx context.Context, id string) (used, capacity int64, err error)
	// Free is what new volumes may still take, in bytes.
	Free(ctx context.Context) (int64, error)
}

// Source is where CreateFrom copies from.
type Source struct {
	Snapshot string // a snapshot ID, or
	Volume   string // a volume ID (a clone)
}

// Progress is told the bytes copied so far out of total, on backings that
// copy.
type Progress func(done, total int64)
