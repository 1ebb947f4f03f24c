package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// Environment variables sizing BenchmarkScheduling.
const (
	envBenchNodes = "HAVRE_BENCH_NODES"
	envBenchPods  = "HAVRE_BENCH_PODS"
	// envBenchProfile names a file to write a 5-second CPU profile of the
	// server to, taken while pods are created and scheduled.
	envBenchProfile = "HAVRE_BENCH_CPUPROFILE"
	// envBenchCreateOnly=1 gives the pods a scheduler name no scheduler
	// serves and reports only how fast the API server creates them: the
	// ceiling of the end-to-end figure.
	envBenchCreateOnly = "HAVRE_BENCH_CREATE_ONLY"
)

func saveProfile(b *testing.B, s *framework.Server, path string) {
	resp, err := s.HTTPClient().Get(s.URL("/debug/pprof/profile?seconds=5"))
	if err != nil {
		b.Logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Logf("profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Logf("profile: %v", err)
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkScheduling measures the scheduler end to end against a real
// server: N Node objects exist, M pods are created as fast as a few
// clients can, and the figure is pods per second from the first create to
// the last pod seen bound (HAVRE_BENCH_NODES, default 500;
// HAVRE_BENCH_PODS, default 5000). Run it once: -benchtime=1x.
func BenchmarkScheduling(b *testing.B) {
	nodes, pods := envInt(b, envBenchNodes, 500), envInt(b, envBenchPods, 5000)
	s := framework.StartServer(b, noNodeMonitor)
	cfg := s.RESTConfig()
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	bg := context.Background()
	ns, err := cs.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// Pods wait for their namespace's default ServiceAccount: let it come
	// before the clock starts.
	if err := framework.WaitFor(30*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(bg, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		b.Logf("no default ServiceAccount in %s: %v", ns.Name, err)
	}
	parallel(b, nodes, 16, func(i int) error {
		n := nodeObject(fmt.Sprintf("node-%05d", i), "32", "128Gi", 110)
		_, err := cs.CoreV1().Nodes().Create(bg, n, metav1.CreateOptions{})
		return err
	})

	w, err := cs.CoreV1().Pods(ns.Name).Watch(bg, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var bound atomic.Int64
	done := make(chan time.Time, 1)
	go func() {
		seen := make(map[string]bool, pods)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || pod.Spec.NodeName == "" || seen[pod.Name] {
				continue
			}
			seen[pod.Name] = true
			if bound.Add(1) == int64(pods) {
				done <- time.Now()
				return
			}
		}
	}()

	if path := os.Getenv(envBenchProfile); path != "" {
		go saveProfile(b, s, path)
	}
	b.ResetTimer()
	start := time.Now()
	createOnly := os.Getenv(envBenchCreateOnly) == "1"
	// One measured run whatever b.N: pods are not recreated.
	parallel(b, pods, 32, func(i int) error {
		p := makePod(ns.Name, podSpec{name: fmt.Sprintf("pod-%06d", i), cpu: "100m"})
		if createOnly {
			p.Spec.SchedulerName = "no-scheduler"
		}
		_, err := cs.CoreV1().Pods(ns.Name).Create(bg, p, metav1.CreateOptions{})
		return err
	})
	created := time.Since(start)
	if createOnly {
		b.ReportMetric(float64(pods)/created.Seconds(), "created/s")
		b.Logf("%d pods created in %v (not scheduled)", pods, created.Round(time.Millisecond))
		return
	}
	select {
	case end := <-done:
		elapsed := end.Sub(start)
		b.ReportMetric(float64(pods)/elapsed.Seconds(), "pods/s")
		b.ReportMetric(float64(pods)/created.Seconds(), "created/s")
		if rss, err := framework.ProcessRSS(s.PID()); err == nil {
			b.ReportMetric(float64(rss)/(1<<20), "server-rss-MiB")
		}
		b.Logf("%d pods on %d nodes: created in %v, all bound after %v: %.0f pods/s",
			pods, nodes, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d pods bound after 10 minutes", bound.Load(), pods)
	}
}

// parallel runs do(0..n-1) on workers goroutines and fails on the first
// error.
func parallel(b *testing.B, n, workers int, do func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

func nodeObject(name, cpu, memory string, pods int) *corev1.Node {
	return nodeFromSpec(nodeSpec{name: name, cpu: cpu, memory: memory, pods: pods})
}
