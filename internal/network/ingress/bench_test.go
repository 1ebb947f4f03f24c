package ingress

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// benchTarget is the URL BenchmarkThroughput loads: the proxy's, or with
// INGRESS_BENCH_DIRECT=1 the backend's, or INGRESS_BENCH_URL (another
// proxy, e.g. nginx in front of INGRESS_BENCH_BACKEND).
func benchGet(b *testing.B, url, host string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	c := &http.Client{Transport: tr}
	b.SetParallelism(32) // 64 connections on 2 CPUs
	cpu0 := processCPU(b)
	b.ResetTimer()
	defer func() {
		// CPU time per request (client, proxy and backend together: the
		// proxy's share is the difference to INGRESS_BENCH_DIRECT=1),
		// steadier than ns/op on a shared machine.
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughput: requests through the proxy to a small backend,
// keep-alive, 64 connections, client, proxy and backend in the test
// process:
//
//	go test ./internal/network/ingress -run '^$' -bench Throughput -benchtime 3s -benchmem
//	INGRESS_BENCH_DIRECT=1 go test ./internal/network/ingress -run '^$' -bench Throughput -benchtime 3s -benchmem
func BenchmarkThroughput(b *testing.B) {
	backend := os.Getenv("INGRESS_BENCH_BACKEND")
	if backend == "" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello\n")) }))
		defer srv.Close()
		backend = srv.Listener.Addr().String()
	}
	if u := os.Getenv("INGRESS_BENCH_URL"); u != "" {
		benchGet(b, u, "bench.example")
		return
	}
	if os.Getenv("INGRESS_BENCH_DIRECT") != "" {
		benchGet(b, "http://"+backend+"/", "bench.example")
		return
	}
	eps := &fakeEndpoints{}
	eps.set("a", backend)
	p, err := New(Config{Address: "127.0.0.1", Endpoints: eps})
	if err != nil {
		b.Fatal(err)
	}
	p.cfg.HTTPPort, p.cfg.HTTPSPort = 0, 0
	if err := p.ensureServer(0, routes.HTTP); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.Apply(table(&routes.VirtualHost{Hostname: "bench.example", Routes: []*routes.Route{route("i", routes.PathPrefix, "/", "a")}}))
	benchGet(b, fmt.Sprintf("http://127.0.0.1:%d/", p.cfg.HTTPPort), "bench.example")
}

// TestMemoryThousandHosts reports the heap a table of 1,000 Ingress hosts
// takes once compiled (the figure: ≤ 50 MiB for the whole proxy).
func TestMemoryThousandHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := New(Config{Endpoints: &fakeEndpoints{}})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*routes.VirtualHost
	for i := 0; i < 1000; i++ {
		hosts = append(hosts, &routes.VirtualHost{Hostname: fmt.Sprintf("host-%d.example", i), Routes: []*routes.Route{
			route(fmt.Sprintf("ing-%d", i), routes.PathPrefix, "/", "a"), route(fmt.Sprintf("ing-%d", i), routes.PathPrefix, "/api", "b")}})
	}
	start := time.Now()
	p.Apply(table(hosts...))
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("1,000 hosts (2,000 routes): table applied in %v, heap %+.1f MiB", took, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	runtime.KeepAlive(p)
}
