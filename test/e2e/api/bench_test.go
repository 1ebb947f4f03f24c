package api_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// Benchmarks of the real binary through client-go over HTTPS (protobuf
// bodies, as every typed client sends). Run them without the tests:
//
//	go test ./test/e2e/api -run '^$' -bench . -benchtime 5s
//
// Environment: HAVRE_BENCH_WATCHERS (1000) for the watch fan-out,
// HAVRE_BENCH_IDLE (60s) for how long the server idles before its RSS is
// read.

// benchWorkers is the number of concurrent clients of the parallel
// benchmarks.
const benchWorkers = 16

// setWorkers makes RunParallel use benchWorkers goroutines (RunParallel
// starts parallelism × GOMAXPROCS of them).
func setWorkers(b *testing.B) {
	b.SetParallelism(int(math.Ceil(float64(benchWorkers) / float64(runtime.GOMAXPROCS(0)))))
}

func reportRate(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkAPI measures single-object requests and a 100-object list with
// 16 concurrent clients sharing one clientset, against one server.
func BenchmarkAPI(b *testing.B) {
	s := framework.StartServer(b)
	cs := s.Clientset()
	var seq atomic.Int64 // unique names across sub-benchmark runs

	b.Run("Create", func(b *testing.B) {
		ns := newNamespace(b, cs)
		setWorkers(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			api := cs.CoreV1().ConfigMaps(ns)
			for pb.Next() {
				name := fmt.Sprintf("c-%d", seq.Add(1))
				if _, err := api.Create(context.Background(), configMap(name, map[string]string{"k": name}), metav1.CreateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N, "req/s")
	})

	b.Run("Get", func(b *testing.B) {
		ns := newNamespace(b, cs)
		names := createConfigMaps(b, cs, ns, "g", 100, nil)
		setWorkers(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			api := cs.CoreV1().ConfigMaps(ns)
			i := int(seq.Add(1))
			for pb.Next() {
				i++
				if _, err := api.Get(context.Background(), names[i%len(names)], metav1.GetOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N, "req/s")
	})

	b.Run("Update", func(b *testing.B) {
		ns := newNamespace(b, cs)
		setWorkers(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			// Each worker updates its own object, so there are no
			// conflicts: every update is a real write.
			api := cs.CoreV1().ConfigMaps(ns)
			name := fmt.Sprintf("u-%d", seq.Add(1))
			cm, err := api.Create(context.Background(), configMap(name, map[string]string{"n": "0"}), metav1.CreateOptions{})
			if err != nil {
				b.Error(err)
				return
			}
			for n := 1; pb.Next(); n++ {
				cm.Data["n"] = strconv.Itoa(n)
				if cm, err = api.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N, "req/s")
	})

	b.Run("List100", func(b *testing.B) {
		ns := newNamespace(b, cs)
		createConfigMaps(b, cs, ns, "l", 100, nil)
		setWorkers(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			api := cs.CoreV1().ConfigMaps(ns)
			for pb.Next() {
				list, err := api.List(context.Background(), metav1.ListOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				if n := len(configMapNames(list.Items)); n != 100 {
					b.Errorf("list returned %d objects, want 100", n)
					return
				}
			}
		})
		reportRate(b, b.N, "lists/s")
		reportRate(b, 100*b.N, "objects/s")
	})
}

// fanout counts the events all watchers received and signals when a target
// is reached.
type fanout struct {
	total  atomic.Int64
	target atomic.Int64
	mu     sync.Mutex
	done   chan struct{}
}

func (f *fanout) hit() {
	if v := f.total.Add(1); v >= f.target.Load() {
		f.mu.Lock()
		if f.done != nil {
			close(f.done)
			f.done = nil
		}
		f.mu.Unlock()
	}
}

// expect arms the signal for when the total reaches target.
func (f *fanout) expect(target int64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	done := make(chan struct{})
	f.done = done
	f.target.Store(target)
	if f.total.Load() >= target {
		close(done)
		f.done = nil
	}
	return done
}

// BenchmarkWatchFanout has HAVRE_BENCH_WATCHERS (1000) watchers on one
// namespace's configmaps; each iteration updates one object, and the
// iteration count is complete when every watcher received every event.
func BenchmarkWatchFanout(b *testing.B) {
	watchers := envInt(b, "HAVRE_BENCH_WATCHERS", 1000)
	s := framework.StartServer(b)
	cs := s.Clientset()
	ns := newNamespace(b, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	cm, err := api.Create(context.Background(), configMap("hot", map[string]string{"n": "0"}), metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}

	watchCtx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	var (
		f        fanout
		perWatch = make([]atomic.Int64, watchers)
		broken   atomic.Int64
		wg       sync.WaitGroup
	)
	f.target.Store(math.MaxInt64)
	for i := range watchers {
		w, err := api.Watch(watchCtx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
		if err != nil {
			b.Fatalf("watcher %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					broken.Add(1)
					return
				}
				if ev.Type == watch.Modified {
					perWatch[i].Add(1)
					f.hit()
				}
			}
			if watchCtx.Err() == nil {
				broken.Add(1)
			}
		}()
	}
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	changes := int64(0)
	b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
		done := f.expect(f.total.Load() + int64(b.N)*int64(watchers))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			changes++
			patch := fmt.Sprintf(`{"data":{"n":"%d"}}`, changes)
			if _, err := api.Patch(context.Background(), "hot", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			b.Fatalf("watchers received %d of %d events within 2 minutes (%d watches broke)", f.total.Load(), f.target.Load(), broken.Load())
		}
		b.StopTimer()
		reportRate(b, b.N*watchers, "events/s")
		reportRate(b, b.N, "changes/s")
	})
	for i := range perWatch {
		if got := perWatch[i].Load(); got != changes {
			b.Errorf("watcher %d received %d events, want %d", i, got, changes)
			break
		}
	}
	if n := broken.Load(); n > 0 {
		b.Errorf("%d watches ended early", n)
	}
}

// BenchmarkStartup measures, per server start on a fresh data dir, the time
// from exec to the first 200 of /readyz and to the first successful
// authenticated GET.
func BenchmarkStartup(b *testing.B) {
	var toReady, toGet time.Duration
	for i := 0; i < b.N; i++ {
		s := framework.StartServer(b)
		ready := s.ReadyAt().Sub(s.StartedAt())
		cs, err := kubernetes.NewForConfig(s.RESTConfig())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
			b.Fatal(err)
		}
		toReady += ready
		toGet += time.Since(s.StartedAt())
		b.StopTimer()
		s.Stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(toReady.Milliseconds())/float64(b.N), "ms-to-ready")
	b.ReportMetric(float64(toGet.Milliseconds())/float64(b.N), "ms-to-first-get")
}

// BenchmarkIdleRSS starts a server, lets it idle for HAVRE_BENCH_IDLE
// (default 60s; shorter is fine for an ad hoc run) and reports its
// resident set size from /proc/PID/status.
func BenchmarkIdleRSS(b *testing.B) {
	idle := 60 * time.Second
	if v := os.Getenv("HAVRE_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("HAVRE_BENCH_IDLE=%q: %v", v, err)
		}
		idle = d
	}
	s := framework.StartServer(b)
	if _, err := s.Clientset().CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		b.Fatal(err)
	}
	// Sample once a second through the idle window; the figure is the
	// last sample, the peak is reported beside it.
	var last, peak int64
	deadline := time.Now().Add(idle)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		rss, err := framework.ProcessRSS(s.PID())
		if err != nil {
			b.Skipf("cannot read the server's RSS: %v", err)
		}
		last, peak = rss, max(peak, rss)
		if !time.Now().Before(deadline) {
			break
		}
		<-ticker.C
	}
	b.ReportMetric(float64(last)/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(idle.Seconds(), "idle-s")
}
