package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havre/havre/internal/storage"
)

// Run with: go test -run x -bench . -benchtime 2s ./internal/storage/bolt/
//
// HAVRE_BENCH_DIR puts the databases elsewhere than the default temporary
// directory (for example on tmpfs, to take fsync out of the picture), and
// HAVRE_BENCH_NOFREELISTSYNC=1 sets Options.NoFreelistSync.

func benchStore(b *testing.B) *Store {
	b.Helper()
	dir := b.TempDir()
	if d := os.Getenv("HAVRE_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "havre-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	opts := Options{NoFreelistSync: os.Getenv("HAVRE_BENCH_NOFREELISTSYNC") == "1"}
	s, err := Open(filepath.Join(dir, "havre.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchValue is the size of a small Kubernetes object.
var benchValue = make([]byte, 512)

// parallelWrites runs n writes from the given number of goroutines.
func parallelWrites(b *testing.B, writers, n int, write func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := write(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := benchStore(b)
			ctx := b.Context()
			b.SetBytes(int64(len(benchValue)))
			b.ResetTimer()
			parallelWrites(b, writers, b.N, func(i int) error {
				_, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue)
				return err
			})
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := benchStore(b)
			ctx := b.Context()
			const keys = 1000
			parallelWrites(b, 16, keys, func(i int) error {
				_, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue)
				return err
			})
			b.SetBytes(int64(len(benchValue)))
			b.ResetTimer()
			parallelWrites(b, writers, b.N, func(i int) error {
				_, err := s.Update(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i%keys), benchValue, 0)
				return err
			})
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	const keys = 1000
	parallelWrites(b, 16, keys, func(i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue)
		return err
	})
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("/registry/pods/default/pod-%d", i)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, names[i%keys]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList lists 1000 keys at the current revision (from the current
// value bucket) and at an older revision (from history).
func BenchmarkList(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	const keys = 1000
	parallelWrites(b, 16, keys, func(i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue)
		return err
	})
	old, _, _ := s.Revision(ctx)
	// Other keys and newer versions that the lists must skip.
	parallelWrites(b, 16, keys, func(i int) error {
		_, err := s.Update(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue, 0)
		return err
	})
	parallelWrites(b, 16, keys, func(i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("/registry/services/default/svc-%d", i), benchValue)
		return err
	})
	for _, tc := range []struct {
		name string
		rev  int64
	}{{"current", 0}, {"history", old}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(keys * int64(len(benchValue)))
			for b.Loop() {
				res, err := s.List(ctx, "/registry/pods/", storage.ListOptions{Revision: tc.rev})
				if err != nil || len(res.KVs) != keys {
					b.Fatalf("List: %d keys, %v", len(res.KVs), err)
				}
			}
		})
	}
}

// BenchmarkWatchFanout measures writes (from 16 writers) delivered to 1000
// watchers of the same prefix; one op is one write seen by every watcher.
func BenchmarkWatchFanout(b *testing.B) {
	const watchers = 1000
	s := benchStore(b)
	ctx := b.Context()
	var received sync.WaitGroup
	received.Add(watchers)
	for range watchers {
		ch, err := s.Watch(ctx, "/registry/pods/", 0, storage.WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer received.Done()
			for n := 0; n < b.N; n++ {
				ev, ok := <-ch
				if !ok || ev.Type != storage.Created {
					b.Errorf("watcher got %v (open %v) after %d events: %v", ev.Type, ok, n, ev.Err)
					return
				}
			}
		}()
	}
	start := time.Now()
	b.ResetTimer()
	parallelWrites(b, 16, b.N, func(i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%d", i), benchValue)
		return err
	})
	received.Wait()
	b.ReportMetric(float64(b.N)*watchers/time.Since(start).Seconds(), "deliveries/s")
}
