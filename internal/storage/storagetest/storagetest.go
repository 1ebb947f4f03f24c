// Package storagetest is the conformance suite for storage.Store backends.
// Every backend runs it unchanged from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { ... })
//	}
//
// The suite only relies on the documented behaviour of storage.Store: it
// never assumes a particular starting revision, only that each store it gets
// is empty and used by nobody else, and that revisions grow by exactly one
// per successful write.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havre/havre/internal/storage"
)

// Timeout bounds every wait of the suite (for an event, for a channel to
// close). Nothing in the suite sleeps: it waits for conditions, and fails if
// one does not hold within Timeout.
const Timeout = 20 * time.Second

// Run runs the conformance suite against the stores newStore returns.
//
// newStore is called once per subtest, possibly from parallel subtests; it
// must return a new, empty store that nothing else uses. The suite closes
// every store it gets exactly once, so newStore should not register a Close
// of its own. The backend should send Progress events to idle watchers at
// least once a second (configure a short interval for the test); the suite
// waits up to Timeout for one.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Revisions", testRevisions},
		{"Create", testCreate},
		{"Get", testGet},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"ValuesAreCopied", testValuesAreCopied},
		{"ListPrefixAndOrder", testListPrefixAndOrder},
		{"ListPagination", testListPagination},
		{"ListAtRevision", testListAtRevision},
		{"ListFutureRevision", testListFutureRevision},
		{"HistoryModel", testHistoryModel},
		{"WatchFromNow", testWatchFromNow},
		{"WatchFromListRevision", testWatchFromListRevision},
		{"WatchReplay", testWatchReplay},
		{"WatchPrevKV", testWatchPrevKV},
		{"WatchReplayToLive", testWatchReplayToLive},
		{"WatchFutureRevision", testWatchFutureRevision},
		{"WatchContextCancel", testWatchContextCancel},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentConflicts", testConcurrentConflicts},
		{"Compaction", testCompaction},
		{"CompactionErrors", testCompactionErrors},
		{"Progress", testProgress},
		{"Close", testClose},
		{"CloseDuringWrites", testCloseDuringWrites},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &harness{t: t, s: newStore(t), ctx: t.Context()}
			t.Cleanup(h.close)
			tc.fn(t, h)
		})
	}
}

// harness wraps one store with helpers that fail the test on unexpected
// errors. Its must* methods may only be called from the test goroutine.
type harness struct {
	t         *testing.T
	s         storage.Store
	ctx       context.Context
	closeOnce sync.Once
}

func (h *harness) close() {
	h.closeOnce.Do(func() {
		if err := h.s.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	})
}

func (h *harness) rev() int64 {
	h.t.Helper()
	cur, _, err := h.s.Revision(h.ctx)
	if err != nil {
		h.t.Fatalf("Revision: %v", err)
	}
	return cur
}

func (h *harness) create(key, value string) storage.KeyValue {
	h.t.Helper()
	kv, err := h.s.Create(h.ctx, key, []byte(value))
	if err != nil {
		h.t.Fatalf("Create(%q): %v", key, err)
	}
	return kv
}

func (h *harness) update(key, value string, expected int64) storage.KeyValue {
	h.t.Helper()
	kv, err := h.s.Update(h.ctx, key, []byte(value), expected)
	if err != nil {
		h.t.Fatalf("Update(%q, %d): %v", key, expected, err)
	}
	return kv
}

func (h *harness) delete(key string, expected int64) storage.KeyValue {
	h.t.Helper()
	kv, err := h.s.Delete(h.ctx, key, expected)
	if err != nil {
		h.t.Fatalf("Delete(%q, %d): %v", key, expected, err)
	}
	return kv
}

func (h *harness) get(key string) storage.KeyValue {
	h.t.Helper()
	kv, err := h.s.Get(h.ctx, key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func (h *harness) list(prefix string, opts storage.ListOptions) storage.ListResult {
	h.t.Helper()
	res, err := h.s.List(h.ctx, prefix, opts)
	if err != nil {
		h.t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return res
}

// listAll reads every page of prefix at rev (0: current) with the given page
// size, the way a paginating client does: later pages at the first page's
// revision, starting after the last key seen.
func (h *harness) listAll(prefix string, rev, limit int64) storage.ListResult {
	h.t.Helper()
	var all storage.ListResult
	opts := storage.ListOptions{Revision: rev, Limit: limit}
	for page := 0; ; page++ {
		res := h.list(prefix, opts)
		if page == 0 {
			all.Revision = res.Revision
			opts.Revision = res.Revision
		} else if res.Revision != all.Revision {
			h.t.Fatalf("List page %d of %q read at revision %d, want %d", page, prefix, res.Revision, all.Revision)
		}
		if limit > 0 && int64(len(res.KVs)) > limit {
			h.t.Fatalf("List(%q, limit %d) returned %d keys", prefix, limit, len(res.KVs))
		}
		if res.More && len(res.KVs) == 0 {
			h.t.Fatalf("List(%q) returned an empty page with More", prefix)
		}
		all.KVs = append(all.KVs, res.KVs...)
		if !res.More {
			return all
		}
		opts.StartKey = res.KVs[len(res.KVs)-1].Key + "\x00"
	}
}

func (h *harness) watch(prefix string, after int64, opts storage.WatchOptions) <-chan storage.Event {
	h.t.Helper()
	ch, err := h.s.Watch(h.ctx, prefix, after, opts)
	if err != nil {
		h.t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	return ch
}

// next returns the next non-Progress event of ch.
func next(t *testing.T, ch <-chan storage.Event) storage.Event {
	t.Helper()
	ev, err := nextEvent(ch, false)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// nextEvent waits up to Timeout for the next event of ch, skipping Progress
// events unless progress is set. It is safe to call from any goroutine.
func nextEvent(ch <-chan storage.Event, progress bool) (storage.Event, error) {
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return storage.Event{}, errors.New("watch channel closed unexpectedly")
			}
			if ev.Type == storage.Progress && !progress {
				continue
			}
			return ev, nil
		case <-timer.C:
			return storage.Event{}, fmt.Errorf("no event within %v", Timeout)
		}
	}
}

// collect returns the next n non-Progress events of ch; an Error event fails
// the test.
func collect(t *testing.T, ch <-chan storage.Event, n int) []storage.Event {
	t.Helper()
	evs, err := collectEvents(ch, n)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func collectEvents(ch <-chan storage.Event, n int) ([]storage.Event, error) {
	return collectUntil(ch, func(evs []storage.Event) bool { return len(evs) == n })
}

// collectUntil collects the non-Progress events of ch until done says the
// collection is complete; an Error event is an error.
func collectUntil(ch <-chan storage.Event, done func([]storage.Event) bool) ([]storage.Event, error) {
	var evs []storage.Event
	for !done(evs) {
		ev, err := nextEvent(ch, false)
		if err != nil {
			return evs, fmt.Errorf("after %d events: %w", len(evs), err)
		}
		if ev.Type == storage.Error {
			return evs, fmt.Errorf("after %d events: Error event: %v", len(evs), ev.Err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// background runs collect in a goroutine, so that a watcher is read while
// the test writes (a backend may end a watcher that is not read), and returns
// a function that waits for its result.
func background(collect func() ([]storage.Event, error)) func() ([]storage.Event, error) {
	done := make(chan struct{})
	var (
		evs []storage.Event
		err error
	)
	go func() {
		defer close(done)
		evs, err = collect()
	}()
	return func() ([]storage.Event, error) {
		<-done
		return evs, err
	}
}

// waitClosed drains ch until it is closed and returns what it drained.
func waitClosed(t *testing.T, ch <-chan storage.Event) []storage.Event {
	t.Helper()
	var evs []storage.Event
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timer.C:
			t.Fatalf("watch channel not closed within %v (drained %d events)", Timeout, len(evs))
		}
	}
}

func fmtKV(kv *storage.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q=%q create=%d mod=%d}", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
}

func fmtEvent(ev storage.Event) string {
	s := fmt.Sprintf("%v@%d %s", ev.Type, ev.Revision, fmtKV(&ev.KV))
	if ev.PrevKV != nil {
		s += " prev=" + fmtKV(ev.PrevKV)
	}
	if ev.Err != nil {
		s += fmt.Sprintf(" err=%v", ev.Err)
	}
	return s
}

func sameKV(a, b *storage.KeyValue) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}

func sameEvent(a, b storage.Event) bool {
	return a.Type == b.Type && a.Revision == b.Revision && sameKV(&a.KV, &b.KV) && sameKV(a.PrevKV, b.PrevKV)
}

func checkKV(t *testing.T, what string, got, want storage.KeyValue) {
	t.Helper()
	if !sameKV(&got, &want) {
		t.Errorf("%s = %s, want %s", what, fmtKV(&got), fmtKV(&want))
	}
}

func checkEvents(t *testing.T, what string, got, want []storage.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("%s: event %d = %s, want %s", what, i, fmtEvent(got[i]), fmtEvent(want[i]))
		}
	}
}

func checkList(t *testing.T, what string, got []storage.KeyValue, want []storage.KeyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d keys %v, want %d %v", what, len(got), keysOf(got), len(want), keysOf(want))
		return
	}
	for i := range got {
		if !sameKV(&got[i], &want[i]) {
			t.Errorf("%s: item %d = %s, want %s", what, i, fmtKV(&got[i]), fmtKV(&want[i]))
		}
	}
}

func keysOf(kvs []storage.KeyValue) []string {
	keys := make([]string, len(kvs))
	for i := range kvs {
		keys[i] = kvs[i].Key
	}
	return keys
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// watchFails checks that a watch from after fails with want, either from
// Watch itself or as the first event, followed by the channel's closing.
func watchFails(t *testing.T, h *harness, prefix string, after int64, want error) {
	t.Helper()
	ch, err := h.s.Watch(h.ctx, prefix, after, storage.WatchOptions{})
	if err != nil {
		wantErr(t, fmt.Sprintf("Watch(%q, %d)", prefix, after), err, want)
		return
	}
	ev := next(t, ch)
	if ev.Type != storage.Error || !errors.Is(ev.Err, want) {
		t.Errorf("Watch(%q, %d): first event %s, want an Error event with %v", prefix, after, fmtEvent(ev), want)
		return
	}
	waitClosed(t, ch)
}

func created(kv storage.KeyValue) storage.Event {
	return storage.Event{Type: storage.Created, KV: kv, Revision: kv.ModRevision}
}

func updated(kv, prev storage.KeyValue) storage.Event {
	return storage.Event{Type: storage.Updated, KV: kv, PrevKV: &prev, Revision: kv.ModRevision}
}

// deleted takes the KeyValue returned by Delete and the value before it.
func deleted(kv, prev storage.KeyValue) storage.Event {
	return storage.Event{Type: storage.Deleted, KV: kv, PrevKV: &prev, Revision: kv.ModRevision}
}

func testRevisions(t *testing.T, h *harness) {
	base := h.rev()
	if base < 1 {
		t.Errorf("new store at revision %d, want at least 1 (0 means \"now\")", base)
	}
	steps := []struct {
		name string
		do   func() (storage.KeyValue, error)
		err  error
	}{
		{"create a", func() (storage.KeyValue, error) { return h.s.Create(h.ctx, "r/a", []byte("1")) }, nil},
		{"create b", func() (storage.KeyValue, error) { return h.s.Create(h.ctx, "r/b", []byte("1")) }, nil},
		{"create a again", func() (storage.KeyValue, error) { return h.s.Create(h.ctx, "r/a", []byte("x")) }, storage.ErrKeyExists},
		{"update a", func() (storage.KeyValue, error) { return h.s.Update(h.ctx, "r/a", []byte("2"), 0) }, nil},
		{"update a stale", func() (storage.KeyValue, error) { return h.s.Update(h.ctx, "r/a", []byte("x"), base+1) }, storage.ErrConflict},
		{"update missing", func() (storage.KeyValue, error) { return h.s.Update(h.ctx, "r/c", []byte("x"), 0) }, storage.ErrNotFound},
		{"create other prefix", func() (storage.KeyValue, error) { return h.s.Create(h.ctx, "other", []byte("1")) }, nil},
		{"delete b", func() (storage.KeyValue, error) { return h.s.Delete(h.ctx, "r/b", 0) }, nil},
		{"delete b again", func() (storage.KeyValue, error) { return h.s.Delete(h.ctx, "r/b", 0) }, storage.ErrNotFound},
		{"recreate b", func() (storage.KeyValue, error) { return h.s.Create(h.ctx, "r/b", []byte("2")) }, nil},
	}
	want := base
	for _, st := range steps {
		kv, err := st.do()
		if st.err != nil {
			wantErr(t, st.name, err, st.err)
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		} else {
			want++
			if kv.ModRevision != want {
				t.Errorf("%s: revision %d, want %d", st.name, kv.ModRevision, want)
			}
		}
		if got := h.rev(); got != want {
			t.Errorf("after %s: Revision() = %d, want %d", st.name, got, want)
		}
	}
	checkKV(t, "Get(r/a)", h.get("r/a"), storage.KeyValue{Key: "r/a", Value: []byte("2"), CreateRevision: base + 1, ModRevision: base + 3})
	checkKV(t, "Get(r/b)", h.get("r/b"), storage.KeyValue{Key: "r/b", Value: []byte("2"), CreateRevision: base + 6, ModRevision: base + 6})
	if res := h.list("", storage.ListOptions{}); res.Revision != want {
		t.Errorf("List revision %d, want %d", res.Revision, want)
	}
}

func testCreate(t *testing.T, h *harness) {
	base := h.rev()
	tests := []struct {
		name  string
		key   string
		value []byte
		err   error
	}{
		{"new key", "c/a", []byte("v1"), nil},
		{"existing key", "c/a", []byte("v2"), storage.ErrKeyExists},
		{"empty value", "c/empty", []byte{}, nil},
		{"nil value", "c/nil", nil, nil},
		{"binary value", "c/bin", []byte{0, 0xff, 0, 1, '\n'}, nil},
		{"large value", "c/large", bytes.Repeat([]byte("0123456789abcdef"), 64<<10), nil},
		{"binary key", "c/\x00\xff\x01", []byte("v"), nil},
		{"key extending another", "c/a/b", []byte("v"), nil},
	}
	rev := base
	for _, tc := range tests {
		kv, err := h.s.Create(h.ctx, tc.key, tc.value)
		if tc.err != nil {
			wantErr(t, tc.name, err, tc.err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		rev++
		want := storage.KeyValue{Key: tc.key, Value: tc.value, CreateRevision: rev, ModRevision: rev}
		checkKV(t, tc.name+": Create", kv, want)
		checkKV(t, tc.name+": Get", h.get(tc.key), want)
	}
	// The failed create left the first value alone.
	checkKV(t, "Get(c/a)", h.get("c/a"), storage.KeyValue{Key: "c/a", Value: []byte("v1"), CreateRevision: base + 1, ModRevision: base + 1})

	// Create after delete starts a new life for the key.
	h.delete("c/a", 0)
	kv := h.create("c/a", "v3")
	if kv.CreateRevision != kv.ModRevision || kv.CreateRevision != h.rev() {
		t.Errorf("recreated key: %s, want create = mod = %d", fmtKV(&kv), h.rev())
	}
}

func testGet(t *testing.T, h *harness) {
	_, err := h.s.Get(h.ctx, "g/missing")
	wantErr(t, "Get(missing)", err, storage.ErrNotFound)
	kv := h.create("g/a", "v")
	checkKV(t, "Get", h.get("g/a"), kv)
	// A prefix of an existing key is not that key.
	_, err = h.s.Get(h.ctx, "g/")
	wantErr(t, "Get(g/)", err, storage.ErrNotFound)
	_, err = h.s.Get(h.ctx, "g/a/")
	wantErr(t, "Get(g/a/)", err, storage.ErrNotFound)
}

func testUpdate(t *testing.T, h *harness) {
	tests := []struct {
		name     string
		exists   bool
		expected func(cur storage.KeyValue) int64
		err      error
	}{
		{"matching revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision }, nil},
		{"unconditional", true, func(storage.KeyValue) int64 { return 0 }, nil},
		{"stale revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision - 1 }, storage.ErrConflict},
		{"create revision of an updated key", true, func(cur storage.KeyValue) int64 { return cur.CreateRevision }, storage.ErrConflict},
		{"future revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision + 100 }, storage.ErrConflict},
		{"missing key", false, func(storage.KeyValue) int64 { return 0 }, storage.ErrNotFound},
		{"missing key with revision", false, func(storage.KeyValue) int64 { return 1 }, storage.ErrNotFound},
	}
	for i, tc := range tests {
		key := fmt.Sprintf("u/%d", i)
		var cur storage.KeyValue
		if tc.exists {
			created := h.create(key, "v1")
			cur = h.update(key, "v2", created.ModRevision) // so that create != mod
		}
		before := h.rev()
		kv, err := h.s.Update(h.ctx, key, []byte("new"), tc.expected(cur))
		if tc.err != nil {
			wantErr(t, tc.name, err, tc.err)
			if h.rev() != before {
				t.Errorf("%s: failed update moved the revision from %d to %d", tc.name, before, h.rev())
			}
			if tc.exists {
				checkKV(t, tc.name+": value after failed update", h.get(key), cur)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := storage.KeyValue{Key: key, Value: []byte("new"), CreateRevision: cur.CreateRevision, ModRevision: before + 1}
		checkKV(t, tc.name+": Update", kv, want)
		checkKV(t, tc.name+": Get", h.get(key), want)
	}
}

func testDelete(t *testing.T, h *harness) {
	tests := []struct {
		name     string
		exists   bool
		expected func(cur storage.KeyValue) int64
		err      error
	}{
		{"matching revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision }, nil},
		{"unconditional", true, func(storage.KeyValue) int64 { return 0 }, nil},
		{"stale revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision - 1 }, storage.ErrConflict},
		{"future revision", true, func(cur storage.KeyValue) int64 { return cur.ModRevision + 100 }, storage.ErrConflict},
		{"missing key", false, func(storage.KeyValue) int64 { return 0 }, storage.ErrNotFound},
		{"missing key with revision", false, func(storage.KeyValue) int64 { return 1 }, storage.ErrNotFound},
	}
	for i, tc := range tests {
		key := fmt.Sprintf("d/%d", i)
		var cur storage.KeyValue
		if tc.exists {
			created := h.create(key, "v1")
			cur = h.update(key, "v2", created.ModRevision)
		}
		before := h.rev()
		kv, err := h.s.Delete(h.ctx, key, tc.expected(cur))
		if tc.err != nil {
			wantErr(t, tc.name, err, tc.err)
			if h.rev() != before {
				t.Errorf("%s: failed delete moved the revision from %d to %d", tc.name, before, h.rev())
			}
			if tc.exists {
				checkKV(t, tc.name+": value after failed delete", h.get(key), cur)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want := storage.KeyValue{Key: key, Value: []byte("v2"), CreateRevision: cur.CreateRevision, ModRevision: before + 1}
		checkKV(t, tc.name+": Delete", kv, want)
		if _, err := h.s.Get(h.ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: Get after delete: %v, want ErrNotFound", tc.name, err)
		}
		if res := h.list(key, storage.ListOptions{}); len(res.KVs) != 0 {
			t.Errorf("%s: List after delete: %v", tc.name, keysOf(res.KVs))
		}
		_, err = h.s.Update(h.ctx, key, []byte("x"), 0)
		wantErr(t, tc.name+": Update after delete", err, storage.ErrNotFound)
		_, err = h.s.Delete(h.ctx, key, 0)
		wantErr(t, tc.name+": Delete after delete", err, storage.ErrNotFound)
	}
}

func testValuesAreCopied(t *testing.T, h *harness) {
	in := []byte("original")
	if _, err := h.s.Create(h.ctx, "v/a", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	got := h.get("v/a")
	if string(got.Value) != "original" {
		t.Fatalf("store kept the caller's Create buffer: %q", got.Value)
	}
	got.Value[0] = 'Y'
	if again := h.get("v/a"); string(again.Value) != "original" {
		t.Fatalf("Get returned the store's own buffer: %q", again.Value)
	}
	res := h.list("v/", storage.ListOptions{})
	res.KVs[0].Value[0] = 'Z'
	if again := h.get("v/a"); string(again.Value) != "original" {
		t.Fatalf("List returned the store's own buffer: %q", again.Value)
	}
	up := []byte("second")
	if _, err := h.s.Update(h.ctx, "v/a", up, 0); err != nil {
		t.Fatal(err)
	}
	up[0] = 'X'
	if again := h.get("v/a"); string(again.Value) != "second" {
		t.Fatalf("store kept the caller's Update buffer: %q", again.Value)
	}
}

func testListPrefixAndOrder(t *testing.T, h *harness) {
	keys := []string{"a", "a/1", "a/10", "a/2", "a/B", "a/b", "a/b/c", "a/\x01", "a/\xff", "a0", "ab", "b/1", "\xff"}
	want := map[string]storage.KeyValue{}
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(len(keys)) { // insertion order must not matter
		want[keys[i]] = h.create(keys[i], "v-"+keys[i])
	}
	for _, prefix := range []string{"", "a", "a/", "a/b", "a/b/", "a0", "b", "c", "\xff", "a/1"} {
		var exp []storage.KeyValue
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if strings.HasPrefix(k, prefix) {
				exp = append(exp, want[k])
			}
		}
		res := h.list(prefix, storage.ListOptions{})
		checkList(t, fmt.Sprintf("List(%q)", prefix), res.KVs, exp)
		if res.More {
			t.Errorf("List(%q) without limit: More", prefix)
		}
		if res.Revision != h.rev() {
			t.Errorf("List(%q) revision %d, want %d", prefix, res.Revision, h.rev())
		}
		for _, limit := range []int64{1, 2, 3, 100} {
			all := h.listAll(prefix, 0, limit)
			checkList(t, fmt.Sprintf("List(%q) in pages of %d", prefix, limit), all.KVs, exp)
		}
	}
}

func testListPagination(t *testing.T, h *harness) {
	var snapshot []storage.KeyValue
	for i := range 25 {
		snapshot = append(snapshot, h.create(fmt.Sprintf("p/%02d", i), fmt.Sprintf("v%d", i)))
	}
	h.create("p0", "outside")
	h.create("o", "outside")
	rev := h.rev()

	// Limit, More and StartKey at the current revision.
	tests := []struct {
		limit    int64
		start    string
		wantKeys []storage.KeyValue
		wantMore bool
	}{
		{10, "", snapshot[:10], true},
		{25, "", snapshot, false},
		{26, "", snapshot, false},
		{0, "", snapshot, false},
		{5, "p/10", snapshot[10:15], true},
		{5, "p/09\x00", snapshot[10:15], true},
		{5, "p/20", snapshot[20:25], false},
		{5, "p/24\x00", nil, false},
		{0, "p/23", snapshot[23:], false},
	}
	for _, tc := range tests {
		res := h.list("p/", storage.ListOptions{Limit: tc.limit, StartKey: tc.start})
		what := fmt.Sprintf("List(p/, limit %d, start %q)", tc.limit, tc.start)
		checkList(t, what, res.KVs, tc.wantKeys)
		if res.More != tc.wantMore {
			t.Errorf("%s: More = %v, want %v", what, res.More, tc.wantMore)
		}
		if res.Revision != rev {
			t.Errorf("%s: revision %d, want %d", what, res.Revision, rev)
		}
	}

	// Pages read at the first page's revision ignore writes made between
	// pages.
	first := h.list("p/", storage.ListOptions{Limit: 10})
	got := append([]storage.KeyValue(nil), first.KVs...)
	h.create("p/05a", "new")   // in an already read page
	h.create("p/15a", "new")   // in a page still to read
	h.delete("p/15", 0)        // ditto
	h.update("p/20", "new", 0) // ditto
	h.create("p/99", "new")    // after the last page
	h.delete("p/00", 0)        // in an already read page
	opts := storage.ListOptions{Revision: first.Revision, Limit: 10, StartKey: got[len(got)-1].Key + "\x00"}
	for more := first.More; more; {
		res := h.list("p/", opts)
		if res.Revision != first.Revision {
			t.Fatalf("page read at %d, want %d", res.Revision, first.Revision)
		}
		got = append(got, res.KVs...)
		more = res.More
		if more {
			opts.StartKey = res.KVs[len(res.KVs)-1].Key + "\x00"
		}
	}
	checkList(t, "pages at the first page's revision", got, snapshot)

	// The current revision sees the writes.
	var wantKeys []string
	for _, kv := range snapshot {
		if kv.Key != "p/00" && kv.Key != "p/15" {
			wantKeys = append(wantKeys, kv.Key)
		}
	}
	wantKeys = append(wantKeys, "p/05a", "p/15a", "p/99")
	slices.Sort(wantKeys)
	if cur := h.listAll("p/", 0, 7); !slices.Equal(keysOf(cur.KVs), wantKeys) {
		t.Errorf("current list: %v, want %v", keysOf(cur.KVs), wantKeys)
	}
}

func testListAtRevision(t *testing.T, h *harness) {
	a1 := h.create("h/a", "a1")
	a2 := h.update("h/a", "a2", 0)
	b1 := h.create("h/b", "b1")
	h.create("x/other", "o")
	ad := h.delete("h/a", 0)
	c1 := h.create("h/c", "c1")
	a3 := h.create("h/a", "a3")
	b2 := h.update("h/b", "b2", 0)

	tests := []struct {
		rev  int64
		want []storage.KeyValue
	}{
		{a1.ModRevision, []storage.KeyValue{a1}},
		{a2.ModRevision, []storage.KeyValue{a2}},
		{b1.ModRevision, []storage.KeyValue{a2, b1}},
		{b1.ModRevision + 1, []storage.KeyValue{a2, b1}}, // write outside the prefix
		{ad.ModRevision, []storage.KeyValue{b1}},
		{c1.ModRevision, []storage.KeyValue{b1, c1}},
		{a3.ModRevision, []storage.KeyValue{a3, b1, c1}},
		{b2.ModRevision, []storage.KeyValue{a3, b2, c1}},
		{0, []storage.KeyValue{a3, b2, c1}},
	}
	for _, tc := range tests {
		res := h.list("h/", storage.ListOptions{Revision: tc.rev})
		checkList(t, fmt.Sprintf("List(h/) at %d", tc.rev), res.KVs, tc.want)
		wantRev := tc.rev
		if wantRev == 0 {
			wantRev = h.rev()
		}
		if res.Revision != wantRev {
			t.Errorf("List at %d: revision %d", tc.rev, res.Revision)
		}
		for _, limit := range []int64{1, 2} {
			all := h.listAll("h/", tc.rev, limit)
			checkList(t, fmt.Sprintf("List(h/) at %d in pages of %d", tc.rev, limit), all.KVs, tc.want)
		}
		// A single key as its own prefix.
		res = h.list("h/b", storage.ListOptions{Revision: tc.rev})
		var wantB []storage.KeyValue
		for _, kv := range tc.want {
			if kv.Key == "h/b" {
				wantB = append(wantB, kv)
			}
		}
		checkList(t, fmt.Sprintf("List(h/b) at %d", tc.rev), res.KVs, wantB)
	}
	// More at an old revision counts only keys live then.
	res := h.list("h/", storage.ListOptions{Revision: ad.ModRevision, Limit: 1})
	if res.More || len(res.KVs) != 1 || res.KVs[0].Key != "h/b" {
		t.Errorf("List(h/, limit 1) at %d: %v more=%v, want [h/b] without More", ad.ModRevision, keysOf(res.KVs), res.More)
	}
}

func testListFutureRevision(t *testing.T, h *harness) {
	h.create("f/a", "1")
	cur := h.rev()
	_, err := h.s.List(h.ctx, "f/", storage.ListOptions{Revision: cur + 1})
	wantErr(t, "List at current+1", err, storage.ErrFutureRevision)
	_, err = h.s.List(h.ctx, "", storage.ListOptions{Revision: cur + 1000})
	wantErr(t, "List at current+1000", err, storage.ErrFutureRevision)
	err = h.s.Compact(h.ctx, cur+1)
	wantErr(t, "Compact at current+1", err, storage.ErrFutureRevision)
	if res := h.list("f/", storage.ListOptions{Revision: cur}); len(res.KVs) != 1 {
		t.Errorf("List at current: %v", keysOf(res.KVs))
	}
}

// testHistoryModel drives random writes against a model and checks every
// retained revision, list and replayed event against it, before and after
// successive compactions.
func testHistoryModel(t *testing.T, h *harness) {
	keys := []string{"m/a", "m/b", "m/b/c", "m/c", "m/\xff", "m/\x00", "m", "m0", "n/a"}
	type state = map[string]storage.KeyValue
	base := h.rev()
	states := map[int64]state{base: {}}
	events := map[int64]storage.Event{}
	cur := state{}
	rnd := rand.New(rand.NewPCG(7, 11))
	for range 160 {
		key := keys[rnd.IntN(len(keys))]
		old, exists := cur[key]
		var ev storage.Event
		switch {
		case !exists:
			kv := h.create(key, fmt.Sprintf("%s@%d", key, h.rev()+1))
			cur[key] = kv
			ev = created(kv)
		case rnd.IntN(4) == 0:
			kv := h.delete(key, old.ModRevision)
			delete(cur, key)
			ev = deleted(kv, old)
		default:
			kv := h.update(key, fmt.Sprintf("%s@%d", key, h.rev()+1), old.ModRevision)
			cur[key] = kv
			ev = updated(kv, old)
		}
		events[ev.Revision] = ev
		states[ev.Revision] = maps.Clone(cur)
	}
	last := h.rev()
	if last != base+160 {
		t.Fatalf("160 writes moved the revision from %d to %d", base, last)
	}
	expect := func(rev int64, prefix string) []storage.KeyValue {
		var out []storage.KeyValue
		st := states[rev]
		for _, k := range slices.Sorted(maps.Keys(st)) {
			if strings.HasPrefix(k, prefix) {
				out = append(out, st[k])
			}
		}
		return out
	}
	verify := func(from int64) {
		t.Helper()
		for rev := max(from, base+1); rev <= last; rev++ {
			for _, prefix := range []string{"", "m/", "m/b"} {
				res := h.list(prefix, storage.ListOptions{Revision: rev})
				checkList(t, fmt.Sprintf("List(%q) at %d", prefix, rev), res.KVs, expect(rev, prefix))
			}
			if rev%7 == 0 {
				all := h.listAll("m/", rev, 2)
				checkList(t, fmt.Sprintf("List(m/) at %d in pages of 2", rev), all.KVs, expect(rev, "m/"))
			}
		}
		for _, after := range []int64{from, from + 1, (from + last) / 2, last - 1} {
			if after <= 0 || after < from || after >= last { // 0 would mean "from now"
				continue
			}
			for _, prefix := range []string{"", "m/"} {
				var want []storage.Event
				for rev := after + 1; rev <= last; rev++ {
					if strings.HasPrefix(events[rev].KV.Key, prefix) {
						want = append(want, events[rev])
					}
				}
				ctx, cancel := context.WithCancel(h.ctx)
				ch, err := h.s.Watch(ctx, prefix, after, storage.WatchOptions{})
				if err != nil {
					t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
				}
				checkEvents(t, fmt.Sprintf("Watch(%q, %d)", prefix, after), collect(t, ch, len(want)), want)
				cancel()
				waitClosed(t, ch)
			}
		}
	}
	verify(base)
	for _, c := range []int64{base + 40, base + 90, base + 91, base + 150, last} {
		if err := h.s.Compact(h.ctx, c); err != nil {
			t.Fatalf("Compact(%d): %v", c, err)
		}
		if _, err := h.s.List(h.ctx, "", storage.ListOptions{Revision: c - 1}); c-1 > 0 && !errors.Is(err, storage.ErrCompacted) {
			t.Errorf("List at %d after Compact(%d): %v, want ErrCompacted", c-1, c, err)
		}
		verify(c)
	}
}

func testWatchFromNow(t *testing.T, h *harness) {
	h.create("w/old", "1")
	ch := h.watch("w/", 0, storage.WatchOptions{})
	h.create("x/outside", "1")
	h.update("w/old", "2", 0) // becomes the first event
	kv := h.create("w/new", "1")
	evs := collect(t, ch, 2)
	if evs[0].Type != storage.Updated || evs[0].KV.Key != "w/old" {
		t.Errorf("first event %s, want the update of w/old", fmtEvent(evs[0]))
	}
	checkEvents(t, "second event", evs[1:], []storage.Event{created(kv)})

	// Watching on an empty prefix sees everything.
	all := h.watch("", 0, storage.WatchOptions{})
	o := h.create("x/2", "1")
	n := h.create("w/2", "1")
	checkEvents(t, "Watch(\"\")", collect(t, all, 2), []storage.Event{created(o), created(n)})
	checkEvents(t, "Watch(w/)", collect(t, ch, 1), []storage.Event{created(n)})
}

// testWatchFromListRevision is the list-then-watch pattern of every client,
// from an empty store: a write between the list and the watch is not lost.
func testWatchFromListRevision(t *testing.T, h *harness) {
	res := h.list("", storage.ListOptions{})
	if len(res.KVs) != 0 || res.Revision < 1 {
		t.Fatalf("List of a new store: %d keys at revision %d, want none at 1 or more", len(res.KVs), res.Revision)
	}
	kv := h.create("lw/a", "1")
	checkEvents(t, "Watch from the list revision", collect(t, h.watch("", res.Revision, storage.WatchOptions{}), 1), []storage.Event{created(kv)})
	res = h.list("lw/", storage.ListOptions{})
	kv2 := h.create("lw/b", "1")
	checkEvents(t, "Watch from the second list revision", collect(t, h.watch("lw/", res.Revision, storage.WatchOptions{}), 1), []storage.Event{created(kv2)})
}

func testWatchReplay(t *testing.T, h *harness) {
	h.create("pre/a", "before the watch start")
	start := h.rev()
	var want []storage.Event
	a1 := h.create("rp/a", "a1")
	want = append(want, created(a1))
	h.create("rpx", "outside the prefix")
	b1 := h.create("rp/b", "b1")
	want = append(want, created(b1))
	a2 := h.update("rp/a", "a2", a1.ModRevision)
	want = append(want, updated(a2, a1))
	bd := h.delete("rp/b", 0)
	want = append(want, deleted(bd, b1))
	b2 := h.create("rp/b", "b2")
	want = append(want, created(b2))

	checkEvents(t, "replay from the start", collect(t, h.watch("rp/", start, storage.WatchOptions{}), len(want)), want)
	checkEvents(t, "replay from the middle", collect(t, h.watch("rp/", a2.ModRevision, storage.WatchOptions{}), 2), want[3:])
	checkEvents(t, "replay of one key", collect(t, h.watch("rp/b", start, storage.WatchOptions{}), 3), []storage.Event{want[1], want[3], want[4]})

	// A replaying watcher carries on with live events.
	ch := h.watch("rp/", b1.ModRevision, storage.WatchOptions{})
	a3 := h.update("rp/a", "a3", 0)
	checkEvents(t, "replay then live", collect(t, ch, 4), []storage.Event{want[2], want[3], want[4], updated(a3, a2)})
}

func testWatchPrevKV(t *testing.T, h *harness) {
	h.create("before", "so that the replay start revision is not 0")
	ch := h.watch("pk/", 0, storage.WatchOptions{})
	v1 := h.create("pk/a", "v1")
	v2 := h.update("pk/a", "v2", v1.ModRevision)
	v3 := h.update("pk/a", "v3", 0)
	d := h.delete("pk/a", v3.ModRevision)
	if !bytes.Equal(d.Value, []byte("v3")) || d.CreateRevision != v1.CreateRevision || d.ModRevision != v3.ModRevision+1 {
		t.Errorf("Delete returned %s", fmtKV(&d))
	}
	want := []storage.Event{created(v1), updated(v2, v1), updated(v3, v2), deleted(d, v3)}
	checkEvents(t, "live", collect(t, ch, 4), want)
	checkEvents(t, "replayed", collect(t, h.watch("pk/", v1.ModRevision-1, storage.WatchOptions{}), 4), want)
}

func testWatchReplayToLive(t *testing.T, h *harness) {
	const (
		writes   = 400
		sentinel = "rl/zzzz"
	)
	h.create("before", "so that the start revision is not 0")
	start := h.rev()
	// Watchers start at various past revisions, and from now, while a writer
	// keeps going; each must see every later revision exactly once, in order,
	// up to a last write that even a watcher started after the others sees.
	var wg sync.WaitGroup
	written := make(chan int64, writes)
	wg.Go(func() {
		defer close(written)
		for i := range writes {
			kv, err := h.s.Create(h.ctx, fmt.Sprintf("rl/%04d", i), []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			written <- kv.ModRevision
		}
	})
	type watch struct {
		after int64 // -1: from now, started after revision since
		since int64
		wait  func() ([]storage.Event, error)
	}
	var watches []watch
	add := func(after, since int64, ch <-chan storage.Event) {
		wait := background(func() ([]storage.Event, error) {
			return collectUntil(ch, func(evs []storage.Event) bool {
				return len(evs) > 0 && evs[len(evs)-1].KV.Key == sentinel
			})
		})
		watches = append(watches, watch{after, since, wait})
	}
	seen := 0
	for rev := range written {
		seen++
		if seen%50 == 1 {
			add(start, 0, h.watch("rl/", start, storage.WatchOptions{}))
			add(rev-1, 0, h.watch("rl/", rev-1, storage.WatchOptions{}))
			add(-1, rev, h.watch("rl/", 0, storage.WatchOptions{}))
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := h.create(sentinel, "end")
	end := last.ModRevision
	keyAt := func(rev int64) string {
		if rev == end {
			return sentinel
		}
		return fmt.Sprintf("rl/%04d", rev-start-1)
	}
	for _, w := range watches {
		evs, err := w.wait()
		if err != nil {
			t.Fatalf("watch from %d: %v", w.after, err)
		}
		first := w.after + 1
		if w.after < 0 {
			first = evs[0].Revision
			if first <= w.since {
				t.Fatalf("watch from now, started after revision %d, got %s", w.since, fmtEvent(evs[0]))
			}
		}
		if int64(len(evs)) != end-first+1 {
			t.Errorf("watch from %d: got %d events up to %d, want %d", w.after, len(evs), end, end-first+1)
		}
		for i, ev := range evs {
			if want := first + int64(i); ev.Revision != want || ev.Type != storage.Created || ev.KV.Key != keyAt(want) {
				t.Fatalf("watch from %d: event %d is %s, want Created %q at %d", w.after, i, fmtEvent(ev), keyAt(want), want)
			}
		}
	}
}

func testWatchFutureRevision(t *testing.T, h *harness) {
	cur := h.rev()
	ch := h.watch("fu/", cur+3, storage.WatchOptions{})
	var kvs []storage.KeyValue
	for i := range 5 {
		kvs = append(kvs, h.create(fmt.Sprintf("fu/%d", i), "v"))
	}
	checkEvents(t, "watch from current+3", collect(t, ch, 2), []storage.Event{created(kvs[3]), created(kvs[4])})
}

func testWatchContextCancel(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	ch, err := h.s.Watch(ctx, "cc/", 0, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.create("cc/a", "1")
	next(t, ch)
	cancel()
	waitClosed(t, ch)

	// A watch still replaying history ends as well.
	base := h.rev()
	for i := range 600 {
		h.create(fmt.Sprintf("cc/%d", i), "v")
	}
	ctx, cancel = context.WithCancel(h.ctx)
	ch, err = h.s.Watch(ctx, "cc/", base, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, ch)

	// A watch with a context already done ends at once (or fails).
	if ch, err = h.s.Watch(ctx, "cc/", 0, storage.WatchOptions{}); err == nil {
		waitClosed(t, ch)
	}
}

func testConcurrentWriters(t *testing.T, h *harness) {
	const (
		writers   = 16
		perWriter = 30
	)
	h.create("before", "so that the start revision is not 0")
	start := h.rev()
	total := writers * perWriter
	liveCh := h.watch("cw/", 0, storage.WatchOptions{})
	live := background(func() ([]storage.Event, error) { return collectEvents(liveCh, total) })
	results := make([][]storage.Event, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			key := func(i int) string { return fmt.Sprintf("cw/%02d/%d", g, i) }
			var last storage.KeyValue
			for i := range perWriter {
				var ev storage.Event
				switch i % 3 {
				case 0:
					kv, err := h.s.Create(h.ctx, key(i), []byte(fmt.Sprintf("%d-%d", g, i)))
					if err != nil {
						t.Errorf("Create: %v", err)
						return
					}
					ev, last = created(kv), kv
				case 1:
					kv, err := h.s.Update(h.ctx, last.Key, []byte(fmt.Sprintf("%d-%d", g, i)), last.ModRevision)
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					ev, last = updated(kv, last), kv
				case 2:
					kv, err := h.s.Delete(h.ctx, last.Key, last.ModRevision)
					if err != nil {
						t.Errorf("Delete: %v", err)
						return
					}
					ev = deleted(kv, last)
				}
				results[g] = append(results[g], ev)
			}
		})
	}
	wg.Wait()
	liveEvents, liveErr := live()
	if t.Failed() {
		return
	}
	byRev := map[int64]storage.Event{}
	for _, evs := range results {
		for i, ev := range evs {
			if i > 0 && ev.Revision <= evs[i-1].Revision {
				t.Fatalf("one writer's revisions went from %d to %d", evs[i-1].Revision, ev.Revision)
			}
			if _, dup := byRev[ev.Revision]; dup {
				t.Fatalf("revision %d given to two writes", ev.Revision)
			}
			byRev[ev.Revision] = ev
		}
	}
	var want []storage.Event
	for rev := start + 1; rev <= start+int64(total); rev++ {
		ev, ok := byRev[rev]
		if !ok {
			t.Fatalf("revision %d was given to no write (revisions %d..%d expected)", rev, start+1, start+int64(total))
		}
		want = append(want, ev)
	}
	if got := h.rev(); got != start+int64(total) {
		t.Errorf("Revision() = %d, want %d", got, start+int64(total))
	}
	if liveErr != nil {
		t.Fatalf("live watcher: %v", liveErr)
	}
	checkEvents(t, "live watcher", liveEvents, want)
	checkEvents(t, "replaying watcher", collect(t, h.watch("cw/", start, storage.WatchOptions{}), total), want)
}

func testConcurrentConflicts(t *testing.T, h *harness) {
	const n = 16
	race := func(what string, op func(i int) error, allowed ...error) {
		t.Helper()
		errs := make([]error, n)
		var ready, wg sync.WaitGroup
		ready.Add(n)
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				ready.Done()
				<-gate
				errs[i] = op(i)
			})
		}
		ready.Wait()
		close(gate)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !slices.ContainsFunc(allowed, func(e error) bool { return errors.Is(err, e) }):
				t.Errorf("%s: unexpected error %v", what, err)
			}
		}
		if wins != 1 {
			t.Errorf("%s: %d of %d concurrent writers succeeded, want exactly 1", what, wins, n)
		}
	}

	race("Create", func(i int) error {
		_, err := h.s.Create(h.ctx, "cc/key", []byte(fmt.Sprint(i)))
		return err
	}, storage.ErrKeyExists)

	cur := h.get("cc/key")
	race("Update", func(i int) error {
		_, err := h.s.Update(h.ctx, "cc/key", []byte(fmt.Sprint(i)), cur.ModRevision)
		return err
	}, storage.ErrConflict)
	if got := h.get("cc/key"); got.ModRevision != cur.ModRevision+1 {
		t.Errorf("after the update race the key is at %d, want %d", got.ModRevision, cur.ModRevision+1)
	}

	cur = h.get("cc/key")
	race("Delete", func(int) error {
		_, err := h.s.Delete(h.ctx, "cc/key", cur.ModRevision)
		return err
	}, storage.ErrConflict, storage.ErrNotFound)
	if got := h.rev(); got != cur.ModRevision+1 {
		t.Errorf("after the delete race the revision is %d, want %d", got, cur.ModRevision+1)
	}
}

func testCompaction(t *testing.T, h *harness) {
	a1 := h.create("k/a", "a1")
	a2 := h.update("k/a", "a2", 0)
	b1 := h.create("k/b", "b1")
	h.delete("k/b", 0)
	c1 := h.create("k/c", "c1")
	h.create("k/d", "d1")
	dd := h.delete("k/d", 0)
	compactAt := h.rev()
	a3 := h.update("k/a", "a3", 0)
	cd := h.delete("k/c", 0)
	b2 := h.create("k/b", "b2")

	if err := h.s.Compact(h.ctx, compactAt); err != nil {
		t.Fatalf("Compact(%d): %v", compactAt, err)
	}
	cur, compacted, err := h.s.Revision(h.ctx)
	if err != nil || compacted != compactAt || cur != b2.ModRevision {
		t.Errorf("Revision() = %d, %d, %v; want %d, %d", cur, compacted, err, b2.ModRevision, compactAt)
	}
	for _, rev := range []int64{a1.ModRevision, b1.ModRevision, dd.ModRevision - 1} {
		_, err := h.s.List(h.ctx, "k/", storage.ListOptions{Revision: rev})
		wantErr(t, fmt.Sprintf("List at %d after Compact(%d)", rev, compactAt), err, storage.ErrCompacted)
		watchFails(t, h, "k/", rev, storage.ErrCompacted)
	}
	watchFails(t, h, "", compactAt-1, storage.ErrCompacted)

	// The compacted revision itself and later ones are intact.
	checkList(t, "List at the compacted revision", h.list("k/", storage.ListOptions{Revision: compactAt}).KVs, []storage.KeyValue{a2, c1})
	checkList(t, "List at the compacted revision, pages of 1", h.listAll("k/", compactAt, 1).KVs, []storage.KeyValue{a2, c1})
	checkList(t, "List after the compacted revision", h.list("k/", storage.ListOptions{Revision: a3.ModRevision}).KVs, []storage.KeyValue{a3, c1})
	checkList(t, "List now", h.list("k/", storage.ListOptions{}).KVs, []storage.KeyValue{a3, b2})
	want := []storage.Event{updated(a3, a2), deleted(cd, c1), created(b2)}
	checkEvents(t, "Watch from the compacted revision", collect(t, h.watch("k/", compactAt, storage.WatchOptions{}), 3), want)

	// Writes, watches and further compactions carry on.
	ch := h.watch("k/", compactAt, storage.WatchOptions{})
	a4 := h.update("k/a", "a4", a3.ModRevision)
	checkEvents(t, "Watch across compaction into live", collect(t, ch, 4), append(want, updated(a4, a3)))
	if err := h.s.Compact(h.ctx, a4.ModRevision); err != nil {
		t.Fatalf("Compact(%d): %v", a4.ModRevision, err)
	}
	checkList(t, "List after the second compaction", h.list("k/", storage.ListOptions{Revision: a4.ModRevision}).KVs, []storage.KeyValue{a4, b2})
	checkKV(t, "Get after compaction", h.get("k/a"), a4)
	d2 := h.create("k/d", "d2")
	if d2.CreateRevision != a4.ModRevision+1 {
		t.Errorf("recreated key after compaction: %s", fmtKV(&d2))
	}
	if _, compacted, _ := h.s.Revision(h.ctx); compacted != a4.ModRevision {
		t.Errorf("compacted revision %d, want %d", compacted, a4.ModRevision)
	}
}

func testCompactionErrors(t *testing.T, h *harness) {
	for i := range 5 {
		h.create(fmt.Sprintf("ce/%d", i), "v")
	}
	cur := h.rev()
	wantErr(t, "Compact(current+1)", h.s.Compact(h.ctx, cur+1), storage.ErrFutureRevision)
	if err := h.s.Compact(h.ctx, cur-2); err != nil {
		t.Fatalf("Compact(%d): %v", cur-2, err)
	}
	wantErr(t, "Compact(compacted)", h.s.Compact(h.ctx, cur-2), storage.ErrCompacted)
	wantErr(t, "Compact(compacted-1)", h.s.Compact(h.ctx, cur-3), storage.ErrCompacted)
	if err := h.s.Compact(h.ctx, cur); err != nil {
		t.Fatalf("Compact(current): %v", err)
	}
	if res := h.list("ce/", storage.ListOptions{Revision: cur}); len(res.KVs) != 5 {
		t.Errorf("List at the compacted current revision: %v", keysOf(res.KVs))
	}
	// A watch from the compacted current revision only sees new events.
	ch := h.watch("ce/", cur, storage.WatchOptions{})
	kv := h.create("ce/new", "v")
	checkEvents(t, "Watch from the compacted current revision", collect(t, ch, 1), []storage.Event{created(kv)})
}

func testProgress(t *testing.T, h *harness) {
	h.create("pr/a", "1")
	ch := h.watch("pr/", 0, storage.WatchOptions{ProgressNotify: true})
	// Writes elsewhere advance the store; progress tells the idle watcher.
	other := h.create("other/a", "1")
	for {
		ev, err := nextEvent(ch, true)
		if err != nil {
			t.Fatalf("waiting for a Progress event at or after %d: %v", other.ModRevision, err)
		}
		if ev.Type != storage.Progress {
			t.Fatalf("unexpected event %s", fmtEvent(ev))
		}
		if ev.Revision >= other.ModRevision {
			break
		}
	}
	// Events still arrive, and progress never goes backwards past them.
	kv := h.create("pr/b", "1")
	var lastRev int64
	for {
		ev, err := nextEvent(ch, true)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Revision < lastRev {
			t.Fatalf("event %s after revision %d", fmtEvent(ev), lastRev)
		}
		lastRev = ev.Revision
		if ev.Type != storage.Progress {
			checkEvents(t, "event after progress", []storage.Event{ev}, []storage.Event{created(kv)})
			break
		}
	}
}

func testClose(t *testing.T, h *harness) {
	h.create("before", "so that the replay start revision is not 0")
	start := h.rev()
	for i := range 600 {
		h.create(fmt.Sprintf("cl/%03d", i), "v")
	}
	cur := h.rev()
	liveCh := h.watch("cl/", 0, storage.WatchOptions{})
	replayCh := h.watch("cl/", start, storage.WatchOptions{}) // never read: still replaying
	futureCh := h.watch("cl/", cur+10, storage.WatchOptions{})
	h.close()
	for i, ev := range waitClosed(t, replayCh) {
		if ev.Type != storage.Error && ev.Revision != start+int64(i)+1 {
			t.Errorf("replaying watch: event %d is %s before closing", i, fmtEvent(ev))
			break
		}
	}
	for name, ch := range map[string]<-chan storage.Event{"live": liveCh, "future": futureCh} {
		for _, ev := range waitClosed(t, ch) {
			if ev.Type != storage.Error && ev.Type != storage.Progress {
				t.Errorf("%s watch: event %s before closing", name, fmtEvent(ev))
			}
		}
	}

	ctx := h.ctx
	_, err := h.s.Get(ctx, "cl/000")
	wantErr(t, "Get", err, storage.ErrClosed)
	_, err = h.s.List(ctx, "cl/", storage.ListOptions{})
	wantErr(t, "List", err, storage.ErrClosed)
	_, err = h.s.Create(ctx, "cl/new", []byte("v"))
	wantErr(t, "Create", err, storage.ErrClosed)
	_, err = h.s.Update(ctx, "cl/000", []byte("v"), 0)
	wantErr(t, "Update", err, storage.ErrClosed)
	_, err = h.s.Delete(ctx, "cl/000", 0)
	wantErr(t, "Delete", err, storage.ErrClosed)
	_, err = h.s.Watch(ctx, "cl/", 0, storage.WatchOptions{})
	wantErr(t, "Watch", err, storage.ErrClosed)
	wantErr(t, "Compact", h.s.Compact(ctx, cur), storage.ErrClosed)
	_, _, err = h.s.Revision(ctx)
	wantErr(t, "Revision", err, storage.ErrClosed)
}

func testCloseDuringWrites(t *testing.T, h *harness) {
	const writers = 8
	var started, wg sync.WaitGroup
	started.Add(writers)
	for g := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := h.s.Create(h.ctx, fmt.Sprintf("cd/%d/%d", g, i), []byte("v"))
				if i == 0 {
					started.Done()
				}
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Create during Close: %v, want nil or ErrClosed", err)
					return
				}
			}
		})
	}
	started.Wait()
	h.close()
	wg.Wait()
}
