package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/havre/havre/internal/storage"
)

// Revision implements storage.Store.
func (s *Store) Revision(ctx context.Context) (current, compacted int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if s.isClosing() {
		return 0, 0, storage.ErrClosed
	}
	return s.rev.Load(), s.compacted.Load(), nil
}

// compactChunk bounds how many log entries one compaction transaction
// consumes, so that writes are not held up for long.
const compactChunk = 1000

// Compact implements storage.Store. Compacting to revision r keeps the state
// at r readable: it deletes the log entries up to r and, for each key they
// touched, every version older than the key's last version at or before r,
// and that version too if it is a tombstone.
//
// The new compacted revision is committed first, then the history is trimmed
// in small transactions. If that is interrupted (Close, ctx, crash), the
// remaining log entries below the compacted revision are trimmed by the next
// Compact; until then they are merely unused.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if revision > s.rev.Load() {
		return storage.ErrFutureRevision
	}
	if revision <= s.compacted.Load() {
		return storage.ErrCompacted
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaCompacted, revKey(revision))
	})
	if err != nil {
		return fmt.Errorf("bolt: compact: %w", err)
	}
	s.compacted.Store(revision)

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.isClosing() {
			return storage.ErrClosed
		}
		var more bool
		err := s.db.Update(func(tx *bbolt.Tx) error {
			var err error
			more, err = trimHistory(tx, revision)
			return err
		})
		if err != nil {
			return fmt.Errorf("bolt: compact: %w", err)
		}
		if !more {
			return nil
		}
	}
}

// trimHistory consumes up to compactChunk log entries at or below revision
// and trims the history of the keys they name. It reports whether entries
// remain.
func trimHistory(tx *bbolt.Tx, revision int64) (bool, error) {
	logb := tx.Bucket(bucketLog)
	hist := tx.Bucket(bucketHist)
	var revs [][]byte
	keys := make(map[string]struct{})
	c := logb.Cursor()
	k, v := c.First()
	for ; k != nil && decodeRev(k) <= revision && len(revs) < compactChunk; k, v = c.Next() {
		revs = append(revs, bytes.Clone(k))
		keys[string(v)] = struct{}{}
	}
	more := k != nil && decodeRev(k) <= revision
	for _, rk := range revs {
		if err := logb.Delete(rk); err != nil {
			return false, err
		}
	}
	for key := range keys {
		if err := trimKey(hist, key, revision); err != nil {
			return false, err
		}
	}
	return more, nil
}

// trimKey deletes the versions of key that no read at or after revision can
// need: all but the last one at or before revision, and that one too if it is
// a tombstone.
func trimKey(hist *bbolt.Bucket, key string, revision int64) error {
	prefix := histKeyPrefix(key)
	var old [][]byte
	var lastDeleted bool
	c := hist.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, rev, ok := splitHistKey(k)
		if !ok {
			return errCorrupt
		}
		if rev > revision {
			break
		}
		typ, _, _, err := decodeHist(v)
		if err != nil {
			return err
		}
		old = append(old, bytes.Clone(k))
		lastDeleted = typ == storage.Deleted
	}
	if len(old) > 0 && !lastDeleted {
		old = old[:len(old)-1] // the state at revision
	}
	for _, k := range old {
		if err := hist.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
