// Package bolt is Havre's default storage backend: an implementation of
// storage.Store on a single go.etcd.io/bbolt file, embedded in the Havre
// binary.
//
// Writes go through one writer goroutine that commits every write waiting in
// the queue in a single fsynced bbolt transaction (group commit), so a write
// is acknowledged only once durable while many concurrent writers share the
// cost of each fsync. Besides the current value of every key the file keeps a
// revision-ordered change log and the history of every key, which serve lists
// at older revisions and watches that resume from an older revision; both are
// trimmed by Compact. Watchers get new events from an in-memory fan-out; only
// a small ring of recent events is kept in memory, older ones are replayed
// from disk. No state lives outside the file, so reopening after a crash
// needs no recovery beyond bbolt's own.
package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/havre/havre/internal/storage"
)

// Options tunes a Store. The zero value gives sensible defaults.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock held by
	// another process. Default 10s.
	LockTimeout time.Duration
	// InitialMmapSize is the initial size of bbolt's memory map. A larger
	// map avoids remapping as the file grows; it costs address space, not
	// resident memory. Default 16 MiB.
	InitialMmapSize int
	// MaxBatchSize caps how many writes are committed in one transaction.
	// Default 128.
	MaxBatchSize int
	// MaxBatchBytes caps the keys and values committed in one transaction;
	// a single larger write still goes through alone. Default 4 MiB.
	MaxBatchBytes int
	// WatchBuffer is the capacity of each watcher's channel. A watcher whose
	// channel is full when an event is due falls back to catching up from
	// the event ring and the log at its own pace. Keep it above
	// MaxBatchSize so that a single commit does not overflow a watcher that
	// keeps up. Default 256.
	WatchBuffer int
	// EventCacheSize is how many recent events are kept in memory so that
	// watchers resuming from a recent revision need not read the disk.
	// Default 256; negative disables the cache.
	EventCacheSize int
	// EventCacheBytes caps the memory held by that cache (keys and values).
	// Default 2 MiB.
	EventCacheBytes int
	// ProgressInterval is how often idle watchers that asked for
	// ProgressNotify get a Progress event. Default 5s.
	ProgressInterval time.Duration
	// NoFreelistSync skips writing bbolt's freelist at every commit. That
	// saves some write bandwidth, but then Open rebuilds the freelist by
	// reading every page of the file, which leaves the whole file mapped in
	// the process's resident memory. Off by default, for Havre's small
	// footprint.
	NoFreelistSync bool
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = 16 << 20
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = 128
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 256
	}
	if o.EventCacheSize == 0 {
		o.EventCacheSize = 256
	}
	if o.EventCacheSize < 0 {
		o.EventCacheSize = 0
	}
	if o.EventCacheBytes <= 0 {
		o.EventCacheBytes = 2 << 20
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 5 * time.Second
	}
	return o
}

// Store is a storage.Store on a bbolt file. Create it with Open.
type Store struct {
	db   *bbolt.DB
	opts Options

	// closeMu guards closed; reads hold it shared for the length of their
	// transaction, so Close can close the database once it holds it.
	closeMu sync.RWMutex
	closed  bool
	// closing is closed when Close starts.
	closing   chan struct{}
	closeOnce sync.Once

	reqs       chan *writeReq
	writerDone chan struct{}

	// rev is the last committed revision; only the writer stores it.
	rev       atomic.Int64
	compacted atomic.Int64
	compactMu sync.Mutex

	hub hub
	// bg counts goroutines that may use the database or a watcher channel:
	// the progress ticker, catch-up replays and watcher enders.
	bg sync.WaitGroup

	// beforeCommit, when set by tests, runs before each commit; an error
	// aborts the batch as a failed commit would.
	beforeCommit func() error
}

var _ storage.Store = (*Store)(nil)

// Open opens or creates the store at path.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         opts.LockTimeout,
		FreelistType:    bbolt.FreelistMapType,
		NoFreelistSync:  opts.NoFreelistSync,
		InitialMmapSize: opts.InitialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	var rev, compacted int64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketKV, bucketHist, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaVersion); v == nil {
			// A new store starts at revision 1, like etcd: no readable
			// state is ever at revision 0, which in Watch and List means
			// "now".
			if err := meta.Put(metaVersion, revKey(formatVersion)); err != nil {
				return err
			}
			if err := meta.Put(metaRev, revKey(1)); err != nil {
				return err
			}
		} else if decodeRev(v) != formatVersion {
			return fmt.Errorf("bolt: unsupported format version %d", decodeRev(v))
		}
		rev = decodeRev(meta.Get(metaRev))
		compacted = decodeRev(meta.Get(metaCompacted))
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:         db,
		opts:       opts,
		closing:    make(chan struct{}),
		reqs:       make(chan *writeReq, opts.MaxBatchSize),
		writerDone: make(chan struct{}),
	}
	s.rev.Store(rev)
	s.compacted.Store(compacted)
	s.hub.init(s, rev)
	go s.writer()
	s.bg.Add(1)
	go s.progressLoop()
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Close stops accepting requests, waits for queued writes to commit, ends
// every watch and closes the file. Calling it again does nothing.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing) // aborts compactions and blocked replays
		s.closeMu.Lock() // waits for running reads and for enqueuers
		s.closed = true
		close(s.reqs)
		s.closeMu.Unlock()
		<-s.writerDone
		s.hub.close()
		s.bg.Wait()
		err = s.db.Close()
	})
	return err
}

// view runs fn in a read transaction unless the store is closed.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	return s.db.View(fn)
}

func (s *Store) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, key string) (storage.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return storage.KeyValue{}, err
	}
	var kv storage.KeyValue
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return storage.ErrNotFound
		}
		create, mod, value, err := decodeKV(v)
		if err != nil {
			return err
		}
		kv = storage.KeyValue{Key: key, Value: bytes.Clone(value), CreateRevision: create, ModRevision: mod}
		return nil
	})
	return kv, err
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.ListResult, error) {
	if err := ctx.Err(); err != nil {
		return storage.ListResult{}, err
	}
	if opts.Revision < 0 || opts.Limit < 0 {
		return storage.ListResult{}, fmt.Errorf("bolt: negative revision or limit")
	}
	start := prefix
	if opts.StartKey > start {
		start = opts.StartKey
	}
	var res storage.ListResult
	err := s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		current := decodeRev(meta.Get(metaRev))
		rev := opts.Revision
		if rev == 0 {
			rev = current
		}
		if rev > current {
			return storage.ErrFutureRevision
		}
		if rev < decodeRev(meta.Get(metaCompacted)) {
			return storage.ErrCompacted
		}
		res.Revision = rev
		if !strings.HasPrefix(start, prefix) {
			return nil // StartKey lies beyond the prefix
		}
		if rev == current {
			return listCurrent(tx, prefix, start, opts.Limit, &res)
		}
		return listAt(tx, prefix, start, rev, opts.Limit, &res)
	})
	if err != nil {
		return storage.ListResult{}, err
	}
	return res, nil
}

// listCurrent lists from the current-value bucket.
func listCurrent(tx *bbolt.Tx, prefix, start string, limit int64, res *storage.ListResult) error {
	p := []byte(prefix)
	c := tx.Bucket(bucketKV).Cursor()
	for k, v := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if limit > 0 && int64(len(res.KVs)) == limit {
			res.More = true
			return nil
		}
		create, mod, value, err := decodeKV(v)
		if err != nil {
			return err
		}
		res.KVs = append(res.KVs, storage.KeyValue{Key: string(k), Value: bytes.Clone(value), CreateRevision: create, ModRevision: mod})
	}
	return nil
}

// listAt lists the state at an older revision from the history bucket: for
// each key, the last version at or before rev, unless that is a tombstone.
func listAt(tx *bbolt.Tx, prefix, start string, rev, limit int64, res *storage.ListResult) error {
	escPrefix := appendEscaped(nil, prefix)
	c := tx.Bucket(bucketHist).Cursor()
	var (
		curEsc  []byte // escaped key of the group being scanned
		best    []byte // its last record at or before rev
		bestRev int64
	)
	// emit appends the scanned key if it was live at rev; it reports whether
	// the page is full.
	emit := func() (bool, error) {
		if best == nil {
			return false, nil
		}
		typ, create, value, err := decodeHist(best)
		if err != nil {
			return true, err
		}
		if typ == storage.Deleted {
			return false, nil
		}
		if limit > 0 && int64(len(res.KVs)) == limit {
			res.More = true
			return true, nil
		}
		res.KVs = append(res.KVs, storage.KeyValue{Key: unescape(curEsc), Value: bytes.Clone(value), CreateRevision: create, ModRevision: bestRev})
		return false, nil
	}
	for k, v := c.Seek(appendEscaped(nil, start)); k != nil && bytes.HasPrefix(k, escPrefix); k, v = c.Next() {
		esc, r, ok := splitHistKey(k)
		if !ok {
			return errCorrupt
		}
		if !bytes.Equal(esc, curEsc) {
			if done, err := emit(); done || err != nil {
				return err
			}
			curEsc, best = esc, nil
		}
		if r <= rev {
			best, bestRev = v, r
		}
	}
	_, err := emit()
	return err
}
