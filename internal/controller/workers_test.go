package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

func newQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 10*time.Millisecond))
}

// eventually fails t unless cond holds before the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, deadline, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// receive fails t unless ch delivers before the deadline.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("waiting for %s: timed out", what)
		var zero T
		return zero
	}
}

// logRecords makes the default logger record what it is given for the
// duration of the test.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

func (l *logRecords) get() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]slog.Record(nil), l.records...)
}

func captureLogs(t *testing.T) *logRecords {
	l := &logRecords{}
	old := slog.Default()
	slog.SetDefault(slog.New(l))
	t.Cleanup(func() { slog.SetDefault(old) })
	return l
}

func attrs(r slog.Record) map[string]any {
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	return m
}

var errQuiet = errors.New("quiet")

func TestRunWorkersRetriesUntilSuccess(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		opts       []Option
		wantLogged bool
	}{
		{name: "failures are logged", err: errors.New("boom"), wantLogged: true},
		{name: "quiet failures are not logged", err: errQuiet,
			opts: []Option{Quiet(func(err error) bool { return errors.Is(err, errQuiet) })}},
		{name: "loud failures are logged despite Quiet", err: errors.New("boom"), wantLogged: true,
			opts: []Option{Quiet(func(err error) bool { return errors.Is(err, errQuiet) })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const failures = 3
			logs := captureLogs(t)
			queue := newQueue()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			defer func() { cancel(); <-done }()

			var mu sync.Mutex
			var requeues []int // queue.NumRequeues seen by each call
			syncKey := func(_ context.Context, key string) error {
				mu.Lock()
				defer mu.Unlock()
				if key != "a" {
					t.Errorf("sync(%q), want a", key)
				}
				requeues = append(requeues, queue.NumRequeues(key))
				if len(requeues) <= failures {
					return tc.err
				}
				return nil
			}
			calls := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(requeues)
			}
			queue.Add("a")
			go func() {
				defer close(done)
				RunWorkers(ctx, queue, nil, 1, syncKey, "syncing a thing failed; retrying", "thing", tc.opts...)
			}()

			eventually(t, "the successful sync", func() bool { return calls() == failures+1 })
			// The key is forgotten (and done) once the successful sync returns.
			eventually(t, "the key to be forgotten", func() bool { return queue.NumRequeues("a") == 0 })
			eventually(t, "the queue to be empty", func() bool { return queue.Len() == 0 })
			mu.Lock()
			for i, n := range requeues {
				if n != i {
					t.Errorf("call %d saw %d requeues, want %d (rate-limited requeues)", i, n, i)
				}
			}
			mu.Unlock()

			records := logs.get()
			if !tc.wantLogged {
				if len(records) != 0 {
					t.Fatalf("logged %d records, want none", len(records))
				}
				return
			}
			if len(records) != failures {
				t.Fatalf("logged %d records, want %d", len(records), failures)
			}
			for _, r := range records {
				if r.Level != slog.LevelWarn || r.Message != "syncing a thing failed; retrying" {
					t.Errorf("logged %v %q", r.Level, r.Message)
				}
				a := attrs(r)
				if len(a) != 2 || a["thing"] != "a" || a["err"] != tc.err {
					t.Errorf("logged attributes %v, want thing=a err=%v", a, tc.err)
				}
			}
		})
	}
}

func TestRunWorkersWaitsForSyncAndStops(t *testing.T) {
	queue := newQueue()
	var cacheSynced atomic.Bool
	polled := make(chan struct{}, 100)
	synced := []cache.InformerSynced{
		func() bool { return true },
		func() bool {
			select {
			case polled <- struct{}{}:
			default:
			}
			return cacheSynced.Load()
		},
	}
	var order []string // guarded by mu
	var mu sync.Mutex
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	processed := make(chan string, 10)
	syncKey := func(_ context.Context, key string) error {
		record("sync " + key)
		processed <- key
		return nil
	}
	afterSync := AfterSync(func(context.Context) { record("afterSync") })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queue.Add("a")
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		RunWorkers(ctx, queue, synced, 2, syncKey, "failed", "key", afterSync)
	}()

	// Until the caches have synced, nothing is processed.
	receive(t, "a poll of the caches", polled)
	receive(t, "a second poll of the caches", polled)
	mu.Lock()
	if len(order) != 0 {
		t.Fatalf("before the caches synced: %v", order)
	}
	mu.Unlock()

	cacheSynced.Store(true)
	if key := receive(t, "the first sync", processed); key != "a" {
		t.Fatalf("synced %q, want a", key)
	}
	queue.Add("b")
	if key := receive(t, "the second sync", processed); key != "b" {
		t.Fatalf("synced %q, want b", key)
	}
	mu.Lock()
	if len(order) != 3 || order[0] != "afterSync" {
		t.Errorf("calls %v, want afterSync then the syncs", order)
	}
	mu.Unlock()

	select {
	case <-returned:
		t.Fatal("RunWorkers returned before ctx was done")
	default:
	}
	if queue.ShuttingDown() {
		t.Fatal("queue shut down before ctx was done")
	}
	cancel()
	receive(t, "RunWorkers to return", returned)
	if !queue.ShuttingDown() {
		t.Error("queue not shut down once RunWorkers returned")
	}
}

func TestRunWorkersCancelledBeforeSync(t *testing.T) {
	queue := newQueue()
	queue.Add("a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	RunWorkers(ctx, queue, []cache.InformerSynced{func() bool { return false }}, 1,
		func(context.Context, string) error { calls.Add(1); return nil }, "failed", "key",
		AfterSync(func(context.Context) { calls.Add(1) }))
	if !queue.ShuttingDown() {
		t.Error("queue not shut down once RunWorkers returned")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls of sync or AfterSync, want none", n)
	}
}

func TestRunWorkersRunsWorkersConcurrently(t *testing.T) {
	const workers = 3
	queue := newQueue()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	defer func() { cancel(); <-returned }()

	// Every sync waits until workers syncs are under way at once.
	var inFlight atomic.Int32
	release := make(chan struct{})
	synced := make(chan string, workers)
	syncKey := func(_ context.Context, key string) error {
		if inFlight.Add(1) == workers {
			close(release)
		}
		select {
		case <-release:
		case <-time.After(deadline):
			t.Errorf("sync(%q): fewer than %d workers ran at once", key, workers)
		}
		synced <- key
		return nil
	}
	for _, key := range []string{"a", "b", "c"} {
		queue.Add(key)
	}
	go func() {
		defer close(returned)
		RunWorkers(ctx, queue, nil, workers, syncKey, "failed", "key")
	}()
	seen := map[string]bool{}
	for range workers {
		seen[receive(t, "a sync", synced)] = true
	}
	if len(seen) != workers {
		t.Errorf("synced %v, want a, b and c", seen)
	}
}

func TestWorkerReturnsOnShutDown(t *testing.T) {
	queue := newQueue()
	synced := make(chan string, 1)
	worker := Worker(queue, func(_ context.Context, key string) error {
		synced <- key
		return nil
	}, "failed", "key")
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		worker(context.Background())
	}()
	queue.Add("a")
	if key := receive(t, "the sync", synced); key != "a" {
		t.Fatalf("synced %q, want a", key)
	}
	queue.ShutDown()
	receive(t, "the worker to return", returned)
	if n := queue.NumRequeues("a"); n != 0 {
		t.Errorf("NumRequeues(a) = %d after a successful sync, want 0", n)
	}
}
