package bolt

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/havre/havre/internal/storage"
)

type writeOp uint8

const (
	opCreate writeOp = iota + 1
	opUpdate
	opDelete
)

// writeReq is one queued write. The writer fills kv and err, then signals
// done.
type writeReq struct {
	ctx      context.Context
	op       writeOp
	key      string
	value    []byte
	expected int64

	kv   storage.KeyValue
	err  error
	done chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &writeReq{done: make(chan struct{}, 1)} }}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte) (storage.KeyValue, error) {
	kv, err := s.write(ctx, opCreate, key, value, 0)
	if err == nil {
		kv.Value = value
	}
	return kv, err
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, key string, value []byte, expectedModRevision int64) (storage.KeyValue, error) {
	kv, err := s.write(ctx, opUpdate, key, value, expectedModRevision)
	if err == nil {
		kv.Value = value
	}
	return kv, err
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string, expectedModRevision int64) (storage.KeyValue, error) {
	kv, err := s.write(ctx, opDelete, key, nil, expectedModRevision)
	if err == nil {
		// The writer's copy is shared with watchers; hand the caller its own.
		kv.Value = bytes.Clone(kv.Value)
	}
	return kv, err
}

// write queues a request and waits for the writer's verdict. Once queued, a
// request is always answered: if ctx ends first, the writer skips it.
func (s *Store) write(ctx context.Context, op writeOp, key string, value []byte, expected int64) (storage.KeyValue, error) {
	if err := ctx.Err(); err != nil {
		return storage.KeyValue{}, err
	}
	if err := validateKey(key); err != nil {
		return storage.KeyValue{}, err
	}
	if expected < 0 {
		return storage.KeyValue{}, fmt.Errorf("bolt: negative expected revision")
	}
	req := reqPool.Get().(*writeReq)
	req.ctx, req.op, req.key, req.value, req.expected = ctx, op, key, value, expected

	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		req.reset()
		reqPool.Put(req)
		return storage.KeyValue{}, storage.ErrClosed
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		req.reset()
		reqPool.Put(req)
		return storage.KeyValue{}, ctx.Err()
	}
	s.closeMu.RUnlock()

	<-req.done
	kv, err := req.kv, req.err
	req.reset()
	reqPool.Put(req)
	return kv, err
}

func (r *writeReq) reset() {
	r.ctx, r.key, r.value, r.kv, r.err = nil, "", nil, storage.KeyValue{}, nil
}

func (r *writeReq) size() int { return len(r.key) + len(r.value) }

// writer is the only goroutine that writes revisions. It takes the first
// queued request, adds every request already waiting (up to the batch
// limits), commits them in one transaction and answers them all.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*writeReq, 0, s.opts.MaxBatchSize)
	events := make([]storage.Event, 0, s.opts.MaxBatchSize)
	for {
		req, ok := <-s.reqs
		if !ok {
			return
		}
		if len(batch) > 1 {
			// The writers answered last round are re-queueing; let them
			// join this batch rather than trickle into the next ones.
			runtime.Gosched()
		}
		batch = append(batch[:0], req)
		size := req.size()
	fill:
		for len(batch) < s.opts.MaxBatchSize && size < s.opts.MaxBatchBytes {
			select {
			case req, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, req)
				size += req.size()
			default:
				break fill
			}
		}
		events = s.commit(batch, events[:0])
		clear(events[:cap(events)]) // drop references to values; the hub has its own
		clear(batch)
	}
}

// commit applies batch in one transaction. Each successful request gets the
// next revision; a failed precondition fails only its own request. If the
// commit fails, every request fails and the revision stays where it was.
// Events are published to watchers before the requests are answered, so an
// acknowledged write is already visible to every watch.
func (s *Store) commit(batch []*writeReq, events []storage.Event) []storage.Event {
	answer := func(err error) {
		for _, r := range batch {
			if err != nil {
				r.kv, r.err = storage.KeyValue{}, err
			}
			r.done <- struct{}{}
		}
	}

	tx, err := s.db.Begin(true)
	if err != nil {
		answer(fmt.Errorf("bolt: begin transaction: %w", err))
		return events
	}
	b := buckets{
		meta: tx.Bucket(bucketMeta),
		kv:   tx.Bucket(bucketKV),
		hist: tx.Bucket(bucketHist),
		log:  tx.Bucket(bucketLog),
	}
	b.log.FillPercent = 1 // revisions are appended in order
	rev := s.rev.Load()
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		ev, err := b.apply(r, rev+1)
		if err != nil {
			if isPrecondition(err) {
				r.err = err
				continue
			}
			_ = tx.Rollback()
			answer(fmt.Errorf("bolt: write %q: %w", shortKey(r.key), err))
			return events[:0]
		}
		rev++
		r.kv = ev.KV // for a delete: the last value, at the delete's revision
		events = append(events, ev)
	}
	if len(events) == 0 {
		_ = tx.Rollback() // nothing to make durable
		answer(nil)
		return events
	}
	if err := b.meta.Put(metaRev, revKey(rev)); err != nil {
		_ = tx.Rollback()
		answer(fmt.Errorf("bolt: write revision: %w", err))
		return events[:0]
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			_ = tx.Rollback()
			answer(fmt.Errorf("bolt: commit: %w", err))
			return events[:0]
		}
	}
	if err := tx.Commit(); err != nil {
		answer(fmt.Errorf("bolt: commit: %w", err))
		return events[:0]
	}
	s.rev.Store(rev)
	s.hub.publish(events)
	answer(nil)
	return events
}

func isPrecondition(err error) bool {
	return err == storage.ErrKeyExists || err == storage.ErrNotFound || err == storage.ErrConflict
}

type buckets struct {
	meta, kv, hist, log *bbolt.Bucket
}

// apply performs one request at revision rev and returns its event. Values
// in the event alias buffers handed to bbolt, which bbolt copies at commit
// and never modifies, so they stay valid afterwards.
func (b buckets) apply(r *writeReq, rev int64) (storage.Event, error) {
	key := []byte(r.key)
	cur := b.kv.Get(key)
	switch {
	case r.op == opCreate && cur != nil:
		return storage.Event{}, storage.ErrKeyExists
	case r.op != opCreate && cur == nil:
		return storage.Event{}, storage.ErrNotFound
	}
	var prev *storage.KeyValue
	if cur != nil {
		create, mod, value, err := decodeKV(cur)
		if err != nil {
			return storage.Event{}, err
		}
		if r.expected != 0 && r.expected != mod {
			return storage.Event{}, storage.ErrConflict
		}
		prev = &storage.KeyValue{Key: r.key, Value: bytes.Clone(value), CreateRevision: create, ModRevision: mod}
	}

	ev := storage.Event{Revision: rev, PrevKV: prev}
	switch r.op {
	case opCreate, opUpdate:
		create := rev
		ev.Type = storage.Created
		if prev != nil {
			create = prev.CreateRevision
			ev.Type = storage.Updated
		}
		rec := encodeKV(create, rev, r.value)
		if err := b.kv.Put(key, rec); err != nil {
			return storage.Event{}, err
		}
		if err := b.hist.Put(histKey(r.key, rev), encodeHist(ev.Type, create, r.value)); err != nil {
			return storage.Event{}, err
		}
		ev.KV = storage.KeyValue{Key: r.key, Value: rec[kvHeader:], CreateRevision: create, ModRevision: rev}
	case opDelete:
		if err := b.kv.Delete(key); err != nil {
			return storage.Event{}, err
		}
		if err := b.hist.Put(histKey(r.key, rev), encodeHist(storage.Deleted, prev.CreateRevision, nil)); err != nil {
			return storage.Event{}, err
		}
		ev.Type = storage.Deleted
		ev.KV = *prev
		ev.KV.ModRevision = rev
	}
	if err := b.log.Put(revKey(rev), key); err != nil {
		return storage.Event{}, err
	}
	return ev, nil
}
