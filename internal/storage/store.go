// Package storage defines Havre's revisioned, watchable key-value store: the
// one seam between the API server and its persistence backends.
//
// The semantics are etcd's: a single revision counter for the whole store,
// incremented by every write; every write is acknowledged only once durable;
// lists can be served at any retained revision; watches can resume from any
// retained revision; history is discarded only by an explicit Compact.
//
// Every backend must pass the conformance suite in storagetest. This package
// must never know about Kubernetes objects: values are opaque bytes.
package storage

import (
	"context"
	"errors"
)

var (
	// ErrNotFound is returned when a key does not exist.
	ErrNotFound = errors.New("storage: key not found")
	// ErrKeyExists is returned by Create when the key already exists.
	ErrKeyExists = errors.New("storage: key already exists")
	// ErrConflict is returned by Update and Delete when the key's current
	// ModRevision differs from the expected one.
	ErrConflict = errors.New("storage: revision conflict")
	// ErrCompacted is returned when a list or watch asks for a revision that
	// has been compacted away ("too old").
	ErrCompacted = errors.New("storage: required revision has been compacted")
	// ErrFutureRevision is returned when a revision newer than the store's
	// current revision is requested.
	ErrFutureRevision = errors.New("storage: required revision is in the future")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("storage: store is closed")
)

// KeyValue is one version of one key.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision at which the key was (last) created.
	CreateRevision int64
	// ModRevision is the revision of the last write to the key. For a
	// deleted key reported in an Event, it is the revision of the delete.
	ModRevision int64
}

// EventType is the kind of change an Event reports.
type EventType int

const (
	// Created reports a key that did not exist before this revision.
	Created EventType = iota + 1
	// Updated reports a new value for an existing key.
	Updated
	// Deleted reports the removal of a key. KV holds the last value, with
	// ModRevision set to the revision of the delete.
	Deleted
	// Progress reports that every event up to Revision has been delivered to
	// this watcher. It carries no key.
	Progress
	// Error ends the watch; Err says why (for example ErrCompacted). The
	// channel is closed right after it.
	Error
)

func (t EventType) String() string {
	switch t {
	case Created:
		return "Created"
	case Updated:
		return "Updated"
	case Deleted:
		return "Deleted"
	case Progress:
		return "Progress"
	case Error:
		return "Error"
	}
	return "Unknown"
}

// Event is one change delivered to a watcher. Events may share their
// values with other watchers: treat them as read-only.
type Event struct {
	Type EventType
	// KV is the key's new value (Created, Updated) or last value (Deleted).
	KV KeyValue
	// PrevKV is the value before this change, for Updated and Deleted.
	PrevKV *KeyValue
	// Revision is the revision of the change, or for Progress the revision up
	// to which the watcher is complete.
	Revision int64
	// Err is set for Error events.
	Err error
}

// ListOptions selects what List returns.
type ListOptions struct {
	// Revision to read at; 0 means the current revision.
	Revision int64
	// Limit caps the number of keys returned; 0 means no limit.
	Limit int64
	// StartKey, when set, makes the list begin at this key (inclusive). It
	// must lie within the prefix. Used for continuation.
	StartKey string
}

// ListResult is one page of a list.
type ListResult struct {
	KVs []KeyValue
	// Revision the list was read at.
	Revision int64
	// More is true when keys beyond the limit exist under the prefix.
	More bool
}

// WatchOptions tunes a watch.
type WatchOptions struct {
	// ProgressNotify asks for periodic Progress events while the watcher is
	// idle, so that callers can report how far the watch has come.
	ProgressNotify bool
}

// Store is a revisioned, watchable key-value store. All methods are safe for
// concurrent use. Every successful write returns only after it is durable.
type Store interface {
	// Create writes key only if it does not exist; ErrKeyExists otherwise.
	Create(ctx context.Context, key string, value []byte) (KeyValue, error)
	// Get returns the current value of key; ErrNotFound if absent.
	Get(ctx context.Context, key string) (KeyValue, error)
	// List returns the keys with the given prefix, sorted by key, at the
	// requested revision.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Update replaces an existing key's value. If expectedModRevision is not
	// zero, the write happens only when it equals the key's ModRevision
	// (ErrConflict otherwise). ErrNotFound when the key is absent.
	Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (KeyValue, error)
	// Delete removes key, with the same precondition as Update, and returns
	// its last value with ModRevision set to the delete's revision.
	Delete(ctx context.Context, key string, expectedModRevision int64) (KeyValue, error)
	// Watch streams, in revision order, every change under prefix with a
	// revision greater than afterRevision (0 means: from now on). The channel
	// is closed when ctx is done, the store closes, or after an Error event.
	// A watcher that cannot keep up is ended with an Error event.
	//
	// An afterRevision below the compacted revision fails with ErrCompacted,
	// either from Watch itself or as the channel's only (Error) event; a
	// replay that compaction overtakes ends with such an Error event. An
	// afterRevision beyond the current revision is allowed: its events
	// arrive as the store gets there.
	Watch(ctx context.Context, prefix string, afterRevision int64, opts WatchOptions) (<-chan Event, error)
	// Compact discards history older than revision. Lists and watches at
	// revisions below it then fail with ErrCompacted; revision itself stays
	// readable. Compacting to a revision at or below the compacted revision
	// fails with ErrCompacted, beyond the current one with ErrFutureRevision.
	Compact(ctx context.Context, revision int64) error
	// Revision returns the current revision and the compacted revision. A new
	// store's current revision is at least 1, so that revision 0, which means
	// "now" to List and Watch, never names a state a client could have read.
	Revision(ctx context.Context) (current, compacted int64, err error)
	// Close releases the store; it waits for in-flight writes.
	Close() error
}
