package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/storagetest"
)

func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = 50 * time.Millisecond
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s := openTest(t, filepath.Join(t.TempDir(), "havre.db"), opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openTest(t, filepath.Join(t.TempDir(), "havre.db"), Options{})
	})
}

// Replays from disk rather than from the event ring, and small batches.
func TestConformanceWithoutEventCache(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openTest(t, filepath.Join(t.TempDir(), "havre.db"), Options{EventCacheSize: -1, MaxBatchSize: 4})
	})
}

func TestHistoryKeyEncoding(t *testing.T) {
	keys := []string{"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x00\xff", "a\x01", "a/b", "a\xff", "b", "\x00", "\x00a", "\xff\xff"}
	slices.Sort(keys)
	var hks [][]byte
	for _, k := range keys {
		for _, rev := range []int64{1, 255, 256, 1 << 40} {
			hk := histKey(k, rev)
			esc, r, ok := splitHistKey(hk)
			if !ok || r != rev || unescape(esc) != k {
				t.Fatalf("histKey(%q, %d) splits into %q, %d, %v", k, rev, unescape(esc), r, ok)
			}
			hks = append(hks, hk)
		}
	}
	if !slices.IsSortedFunc(hks, bytes.Compare) {
		t.Fatalf("history keys do not sort by (key, revision)")
	}
	for _, p := range keys {
		ep := appendEscaped(nil, p)
		for _, k := range keys {
			if got, want := bytes.HasPrefix(histKey(k, 7), ep), len(k) >= len(p) && k[:len(p)] == p; got != want {
				t.Errorf("prefix %q of key %q: escaped match %v, raw %v", p, k, got, want)
			}
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "havre.db")
	s := openTest(t, path, Options{})
	base, _, _ := s.Revision(ctx)
	if base < 1 {
		t.Fatalf("new store at revision %d, want at least 1", base)
	}
	for i := range 20 {
		if _, err := s.Create(ctx, fmt.Sprintf("k/%02d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, "k/03", []byte("updated"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "k/04", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, base+10); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	defer s.Close()
	cur, compacted, err := s.Revision(ctx)
	if err != nil || cur != base+22 || compacted != base+10 {
		t.Fatalf("Revision() after reopen = %d, %d, %v; want %d, %d", cur, compacted, err, base+22, base+10)
	}
	if kv, err := s.Get(ctx, "k/03"); err != nil || string(kv.Value) != "updated" || kv.ModRevision != base+21 || kv.CreateRevision != base+4 {
		t.Fatalf("Get(k/03) = %+v, %v", kv, err)
	}
	res, err := s.List(ctx, "k/", storage.ListOptions{Revision: base + 15})
	if err != nil || len(res.KVs) != 15 || string(res.KVs[3].Value) != "3" {
		t.Fatalf("List at %d after reopen: %v, %v", base+15, res.KVs, err)
	}
	if _, err := s.List(ctx, "k/", storage.ListOptions{Revision: base + 9}); !errors.Is(err, storage.ErrCompacted) {
		t.Fatalf("List below the compacted revision after reopen: %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(ctx, "k/", base+19, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []storage.Event
	for len(evs) < 3 {
		evs = append(evs, <-ch)
	}
	if evs[0].Revision != base+20 || evs[1].Type != storage.Updated || string(evs[1].PrevKV.Value) != "3" || evs[2].Type != storage.Deleted || string(evs[2].KV.Value) != "4" {
		t.Fatalf("replay after reopen: %+v", evs)
	}
	kv, err := s.Create(ctx, "k/new", nil)
	if err != nil || kv.ModRevision != base+23 {
		t.Fatalf("Create after reopen: %+v, %v", kv, err)
	}
	if ev := <-ch; ev.Revision != base+23 || ev.KV.Key != "k/new" {
		t.Fatalf("live event after reopen: %+v", ev)
	}
}

func TestSlowWatcherCatchesUp(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{WatchBuffer: 4})
	base, _, _ := s.Revision(ctx)
	ch, err := s.Watch(ctx, "", 0, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Create(ctx, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err) // writes never wait for watchers
		}
	}
	// The watcher fell behind by more than its buffer: it catches up from
	// the store's history and misses nothing.
	for i := range 10 {
		ev := <-ch
		if ev.Type != storage.Created || ev.Revision != base+int64(i+1) || ev.KV.Key != fmt.Sprint(i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	// And it is live again: new writes arrive.
	if _, err := s.Create(ctx, "after", nil); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != storage.Created || ev.KV.Key != "after" {
		t.Fatalf("event after catching up: %+v", ev)
	}
}

// createMany creates n keys from 16 goroutines and returns the key written
// at each revision.
func createMany(t *testing.T, s *Store, n int, key func(i int) string) map[int64]string {
	t.Helper()
	var mu sync.Mutex
	byRev := make(map[int64]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				kv, err := s.Create(t.Context(), key(i), []byte(key(i)))
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				byRev[kv.ModRevision] = kv.Key
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return byRev
}

func TestReplayFromDiskAcrossChunks(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{EventCacheSize: 8, WatchBuffer: 16})
	start, _, _ := s.Revision(ctx)
	const n = 3*replayChunk + 17
	written := createMany(t, s, n, func(i int) string {
		if i%3 == 0 {
			return fmt.Sprintf("b/%d", i)
		}
		return fmt.Sprintf("a/%d", i)
	})
	// Writes continue while the watcher replays, so it must switch from
	// the disk to the ring to live events.
	ch, err := s.Watch(ctx, "a/", start, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const more = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := n; i < n+more; i++ {
			kv, err := s.Create(ctx, fmt.Sprintf("a/%d", i), nil)
			if err != nil {
				t.Error(err)
				return
			}
			if kv.ModRevision != start+int64(i)+1 {
				t.Errorf("sequential create at %d, want %d", kv.ModRevision, start+int64(i)+1)
			}
		}
	})
	defer wg.Wait()
	for rev := start + 1; rev <= start+n+more; rev++ {
		key, ok := written[rev]
		if !ok {
			key = fmt.Sprintf("a/%d", rev-start-1)
		}
		if key[0] != 'a' {
			continue
		}
		select {
		case ev, ok := <-ch:
			if !ok || ev.Revision != rev || ev.Type != storage.Created || ev.KV.Key != key {
				t.Fatalf("got %+v (open %v), want %q created at %d", ev, ok, key, rev)
			}
		case <-time.After(storagetest.Timeout):
			t.Fatalf("no event at %d", rev)
		}
	}
}

func TestCompactionOvertakesReplay(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{EventCacheSize: -1, WatchBuffer: 8})
	start, _, _ := s.Revision(ctx)
	const n = 1000
	createMany(t, s, n, func(i int) string { return fmt.Sprint(i) })
	ch, err := s.Watch(ctx, "", start, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, start+n-1); err != nil {
		t.Fatal(err)
	}
	// The replay either finished in time or ends with ErrCompacted; it
	// never skips revisions.
	want := start + 1
	for ev := range ch {
		if ev.Type == storage.Error {
			if !errors.Is(ev.Err, storage.ErrCompacted) {
				t.Fatalf("Error event %v, want ErrCompacted", ev.Err)
			}
			return
		}
		if ev.Revision != want {
			t.Fatalf("event at %d, want %d", ev.Revision, want)
		}
		if want == start+n {
			return
		}
		want++
	}
	t.Fatal("channel closed without an error")
}

func TestFailedCommitRollsBack(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	if _, err := s.Create(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	base, _, _ := s.Revision(ctx)
	ch, err := s.Watch(ctx, "", 0, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	s.beforeCommit = func() error { return boom }
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Create(ctx, fmt.Sprint("b", i), nil); !errors.Is(err, boom) {
				t.Errorf("Create during failing commits: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := s.Update(ctx, "a", []byte("2"), 0); !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	s.beforeCommit = nil
	if cur, _, _ := s.Revision(ctx); cur != base {
		t.Fatalf("revision after failed commits: %d, want %d", cur, base)
	}
	kv, err := s.Create(ctx, "c", nil)
	if err != nil || kv.ModRevision != base+1 {
		t.Fatalf("Create after failed commits: %+v, %v", kv, err)
	}
	if ev := <-ch; ev.Revision != base+1 || ev.KV.Key != "c" {
		t.Fatalf("first event after failed commits: %+v", ev)
	}
	res, err := s.List(ctx, "", storage.ListOptions{})
	if err != nil || len(res.KVs) != 2 || string(res.KVs[0].Value) != "1" {
		t.Fatalf("List after failed commits: %+v, %v", res, err)
	}
}

func TestGroupCommitBatches(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	// Count commits through the hook: with 32 concurrent writers most
	// commits carry more than one write.
	var mu sync.Mutex
	commits := 0
	s.beforeCommit = func() error { mu.Lock(); commits++; mu.Unlock(); return nil }
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Create(ctx, fmt.Sprintf("%d/%d", g, i), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d writes in %d commits", writers*each, commits)
	if commits >= writers*each {
		t.Errorf("%d writes took %d commits: no batching", writers*each, commits)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	if _, err := s.Create(ctx, "", nil); err == nil {
		t.Error("Create with an empty key succeeded")
	}
	if _, err := s.Create(ctx, string(make([]byte, maxKeyLen+1)), nil); err == nil {
		t.Error("Create with a huge key succeeded")
	}
	if _, err := s.Create(ctx, string(make([]byte, maxKeyLen)), nil); err != nil {
		t.Errorf("Create with a key of %d NUL bytes: %v", maxKeyLen, err)
	}
	if _, err := s.List(ctx, "", storage.ListOptions{Revision: -1}); err == nil {
		t.Error("List at a negative revision succeeded")
	}
	if _, err := s.Watch(ctx, "", -1, storage.WatchOptions{}); err == nil {
		t.Error("Watch from a negative revision succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(cctx, "x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v", err)
	}
	if _, err := s.Get(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a cancelled Create was written: %v", err)
	}
}

func TestCloseWaitsForWritesAndPersistsThem(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "havre.db")
	s := openTest(t, path, Options{})
	const writers = 8
	acked := make([][]string, writers)
	var started, wg sync.WaitGroup
	started.Add(writers)
	for g := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("%d/%d", g, i)
				_, err := s.Create(ctx, key, []byte(key))
				if i == 0 {
					started.Done()
				}
				if err != nil {
					if !errors.Is(err, storage.ErrClosed) {
						t.Errorf("Create: %v", err)
					}
					return
				}
				acked[g] = append(acked[g], key)
			}
		})
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openTest(t, path, Options{})
	defer s.Close()
	for _, keys := range acked {
		for _, key := range keys {
			if kv, err := s.Get(ctx, key); err != nil || string(kv.Value) != key {
				t.Fatalf("acknowledged %q not persisted: %+v, %v", key, kv, err)
			}
		}
	}
}
