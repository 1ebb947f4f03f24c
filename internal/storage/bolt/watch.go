package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/havre/havre/internal/storage"
)

// Watchers move through three states, and whoever owns the channel in a
// state is the only one that sends on or closes it:
//
//	catchingUp: its replay goroutine owns the channel and sends past events,
//	            blocking while the consumer is slow.
//	live:       the hub owns the channel (under hub.mu) and sends new events
//	            without blocking; a full channel ends the watch.
//	done:       ended; the channel is closed or about to be closed by the
//	            goroutine that ended it.
//
// A watcher goes live under hub.mu exactly when it has been sent every event
// up to hub.published, so the first live event is the next revision: no gap
// and no duplicate at the switch.
type watchState uint8

const (
	catchingUp watchState = iota
	live
	done
)

type watcher struct {
	ctx      context.Context
	prefix   string
	progress bool
	ch       chan storage.Event
	// stop unregisters the context.AfterFunc that ends a live watcher.
	stop func() bool

	// Guarded by hub.mu.
	state watchState
	// after: live events at or below this revision are not sent (set for
	// watches that start at a future revision).
	after int64
	// active: an event was sent since the last progress tick.
	active bool
	index  int // position in hub.watchers while live
}

func (w *watcher) wants(ev *storage.Event) bool {
	return ev.Revision > w.after && strings.HasPrefix(ev.KV.Key, w.prefix)
}

// hub fans new events out to live watchers and keeps the ring of recent
// events.
type hub struct {
	s         *Store
	mu        sync.Mutex
	published int64 // every event up to here has been published
	closed    bool
	watchers  []*watcher // live watchers
	ring      ring
}

func (h *hub) init(s *Store, rev int64) {
	h.s = s
	h.published = rev
	h.ring = ring{maxLen: s.opts.EventCacheSize, maxBytes: s.opts.EventCacheBytes, next: rev + 1}
}

// publish hands one committed batch, in revision order, to the ring and to
// every live watcher. It never blocks: a watcher without room is ended.
func (h *hub) publish(events []storage.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range events {
		h.ring.push(events[i])
	}
	before := h.published
	h.published = events[len(events)-1].Revision
	for i := len(h.watchers) - 1; i >= 0; i-- { // backwards: demote removes
		w := h.watchers[i]
		for j := range events {
			ev := &events[j]
			if !w.wants(ev) {
				continue
			}
			select {
			case w.ch <- *ev:
				w.active = true
				continue
			default:
			}
			// Every event before this one was sent or not wanted.
			pos := before
			if j > 0 {
				pos = events[j-1].Revision
			}
			h.demote(w, pos)
			break
		}
	}
}

// demote turns a live watcher whose channel is full into a catching-up
// one: it goes on from pos through the ring or the disk log at its
// consumer's pace, as a watch from an old revision does, and becomes live
// again once it has caught up. It ends (ErrCompacted) only if compaction
// overtakes it. h.mu is held.
func (h *hub) demote(w *watcher, pos int64) {
	h.removeLive(w)
	w.state = catchingUp
	h.s.bg.Add(1) // h.closed is false here, so Close has not reached bg.Wait
	go h.s.catchUp(w, pos)
}

func (h *hub) addLive(w *watcher) {
	w.state = live
	w.index = len(h.watchers)
	h.watchers = append(h.watchers, w)
}

func (h *hub) removeLive(w *watcher) {
	last := len(h.watchers) - 1
	h.watchers[w.index] = h.watchers[last]
	h.watchers[w.index].index = w.index
	h.watchers[last] = nil
	h.watchers = h.watchers[:last]
}

// cancel ends a live watcher whose context is done. A watcher still catching
// up is ended by its replay goroutine, which checks the context before it
// goes live.
func (h *hub) cancel(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.state == live {
		h.removeLive(w)
		w.state = done
		close(w.ch)
	}
}

// close ends every live watcher; catching-up watchers see h.closed or
// s.closing and end themselves.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, w := range h.watchers {
		w.state = done
		w.stop()
		close(w.ch)
	}
	h.watchers = nil
}

// ring holds the most recent events, contiguous in revision: it holds
// revisions next-len(buf) .. next-1.
type ring struct {
	maxLen, maxBytes int
	buf              []storage.Event // circular; head is the oldest
	head, n          int
	bytes            int
	next             int64 // revision after the newest event
}

func eventSize(ev *storage.Event) int {
	n := 128 + len(ev.KV.Key) + len(ev.KV.Value)
	if ev.PrevKV != nil {
		n += 64 + len(ev.PrevKV.Value)
	}
	return n
}

func (r *ring) push(ev storage.Event) {
	r.next = ev.Revision + 1
	if r.maxLen == 0 {
		return
	}
	if r.buf == nil {
		r.buf = make([]storage.Event, r.maxLen)
	}
	size := eventSize(&ev)
	for r.n > 0 && (r.n == r.maxLen || r.bytes+size > r.maxBytes) {
		r.bytes -= eventSize(&r.buf[r.head])
		r.buf[r.head] = storage.Event{}
		r.head = (r.head + 1) % r.maxLen
		r.n--
	}
	r.buf[(r.head+r.n)%r.maxLen] = ev
	r.n++
	r.bytes += size
}

// since returns the events after revision after that w wants, and whether
// the ring holds every revision after after.
func (r *ring) since(after int64, w *watcher) ([]storage.Event, bool) {
	first := r.next - int64(r.n)
	if after+1 < first {
		return nil, false
	}
	var out []storage.Event
	for i := after + 1 - first; i < int64(r.n); i++ {
		ev := &r.buf[(r.head+int(i))%r.maxLen]
		if w.wants(ev) {
			out = append(out, *ev)
		}
	}
	return out, true
}

// Watch implements storage.Store. A watch from a compacted revision fails
// with ErrCompacted from Watch itself; if compaction overtakes a running
// replay, the watch ends with an Error event carrying ErrCompacted.
func (s *Store) Watch(ctx context.Context, prefix string, afterRevision int64, opts storage.WatchOptions) (<-chan storage.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if afterRevision < 0 {
		return nil, fmt.Errorf("bolt: negative revision")
	}
	w := &watcher{
		ctx:      ctx,
		prefix:   prefix,
		progress: opts.ProgressNotify,
		ch:       make(chan storage.Event, s.opts.WatchBuffer),
	}
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || s.isClosing() {
		return nil, storage.ErrClosed
	}
	if afterRevision == 0 {
		afterRevision = h.published
	}
	if afterRevision < s.compacted.Load() {
		return nil, storage.ErrCompacted
	}
	w.after = afterRevision
	w.stop = context.AfterFunc(ctx, func() { h.cancel(w) })
	if afterRevision >= h.published {
		h.addLive(w)
		return w.ch, nil
	}
	if evs, ok := h.ring.since(afterRevision, w); ok && len(evs) <= cap(w.ch) {
		for _, ev := range evs {
			w.ch <- ev // fits: the channel is new
		}
		w.active = len(evs) > 0
		w.after = h.published
		h.addLive(w)
		return w.ch, nil
	}
	w.state = catchingUp
	s.bg.Add(1) // h.closed is false, so Close has not reached bg.Wait
	go s.catchUp(w, afterRevision)
	return w.ch, nil
}

// replayChunk bounds how many log entries one replay transaction reads.
const replayChunk = 512

// catchUp sends w every event after pos, from the ring when it still holds
// them and from the disk log otherwise, then makes w live.
func (s *Store) catchUp(w *watcher, pos int64) {
	defer s.bg.Done()
	h := &s.hub
	end := func(ev *storage.Event) {
		if ev != nil {
			select {
			case w.ch <- *ev:
			case <-w.ctx.Done():
			case <-s.closing:
			}
		}
		h.mu.Lock()
		w.state = done
		w.stop()
		h.mu.Unlock()
		close(w.ch)
	}
	for {
		h.mu.Lock()
		if h.closed || w.ctx.Err() != nil {
			h.mu.Unlock()
			end(nil)
			return
		}
		if pos >= h.published {
			w.after = pos
			h.addLive(w)
			h.mu.Unlock()
			return
		}
		target := h.published
		evs, inRing := h.ring.since(pos, w)
		if inRing && len(w.ch)+len(evs) <= cap(w.ch) {
			for _, ev := range evs {
				w.ch <- ev // fits: only this goroutine sends while catching up
			}
			w.after = target
			h.addLive(w)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()

		if inRing {
			pos = target
		} else {
			var err error
			evs, pos, err = s.readLog(w.prefix, pos, target)
			if err != nil {
				end(&storage.Event{Type: storage.Error, Err: err, Revision: pos})
				return
			}
		}
		for _, ev := range evs {
			select {
			case w.ch <- ev:
			case <-w.ctx.Done():
				end(nil)
				return
			case <-s.closing:
				end(nil)
				return
			}
		}
	}
}

// readLog reads the events under prefix after revision pos, up to target or
// replayChunk log entries, and returns them with the revision it reached.
func (s *Store) readLog(prefix string, pos, target int64) ([]storage.Event, int64, error) {
	var out []storage.Event
	reached := pos
	err := s.db.View(func(tx *bbolt.Tx) error {
		if pos < decodeRev(tx.Bucket(bucketMeta).Get(metaCompacted)) {
			return storage.ErrCompacted
		}
		hist := tx.Bucket(bucketHist).Cursor()
		c := tx.Bucket(bucketLog).Cursor()
		p := []byte(prefix)
		n := 0
		for k, v := c.Seek(revKey(pos + 1)); k != nil && n < replayChunk; k, v = c.Next() {
			rev := decodeRev(k)
			if rev > target {
				break
			}
			reached = rev
			n++
			if !bytes.HasPrefix(v, p) {
				continue
			}
			ev, err := historyEvent(hist, string(v), rev)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		if n < replayChunk {
			reached = target // the log has no more entries up to target
		}
		return nil
	})
	if err != nil {
		return nil, pos, err
	}
	return out, reached, nil
}

// historyEvent rebuilds the event of revision rev on key from the history
// bucket: the version written at rev and, for updates and deletes, the
// version before it.
func historyEvent(c *bbolt.Cursor, key string, rev int64) (storage.Event, error) {
	hk := histKey(key, rev)
	k, v := c.Seek(hk)
	if !bytes.Equal(k, hk) {
		return storage.Event{}, fmt.Errorf("bolt: revision %d of %q missing from history: %w", rev, shortKey(key), errCorrupt)
	}
	typ, create, value, err := decodeHist(v)
	if err != nil {
		return storage.Event{}, err
	}
	ev := storage.Event{Type: typ, Revision: rev}
	if typ != storage.Created {
		pk, pv := c.Prev()
		esc, prevRev, ok := splitHistKey(pk)
		if pk == nil || !ok || !bytes.Equal(esc, hk[:len(hk)-histSuffix]) {
			return storage.Event{}, fmt.Errorf("bolt: version before revision %d of %q missing from history: %w", rev, shortKey(key), errCorrupt)
		}
		ptyp, pcreate, pvalue, err := decodeHist(pv)
		if err != nil {
			return storage.Event{}, err
		}
		if ptyp == storage.Deleted {
			return storage.Event{}, fmt.Errorf("bolt: revision %d of %q follows a delete: %w", rev, shortKey(key), errCorrupt)
		}
		ev.PrevKV = &storage.KeyValue{Key: key, Value: bytes.Clone(pvalue), CreateRevision: pcreate, ModRevision: prevRev}
	}
	switch typ {
	case storage.Created, storage.Updated:
		ev.KV = storage.KeyValue{Key: key, Value: bytes.Clone(value), CreateRevision: create, ModRevision: rev}
	case storage.Deleted:
		ev.KV = *ev.PrevKV
		ev.KV.ModRevision = rev
	}
	return ev, nil
}

// progressLoop sends a Progress event, every ProgressInterval, to each live
// watcher that asked for them and was sent nothing since the last tick.
func (s *Store) progressLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.ProgressInterval)
	defer t.Stop()
	h := &s.hub
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for _, w := range h.watchers {
			if w.progress && !w.active {
				select {
				case w.ch <- storage.Event{Type: storage.Progress, Revision: h.published}:
				default: // full: the watcher is busy, not idle
				}
			}
			w.active = false
		}
		h.mu.Unlock()
	}
}
