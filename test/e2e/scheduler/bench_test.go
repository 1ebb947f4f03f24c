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
	// envBenchNodeObjects=1 creates the nodes as bare API objects instead
	// of running a hollow agent for them: no heartbeats and no pod status
	// reports, only the scheduler's work.
	envBenchNodeObjects = "HAVRE_BENCH_NODE_OBJECTS"
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
// server: N hollow nodes run (a `havre agent --hollow N` process, which
// renews their Leases and reports their pods Running), M pods are created
// as fast as a few clients can, and the figure is pods per second from the
// first create to the last pod seen bound (HAVRE_BENCH_NODES, default 500;
// HAVRE_BENCH_PODS, default 5000). Run it once: -benchtime=1x.
func BenchmarkScheduling(b *testing.B) {
	nodes, pods := envInt(b, envBenchNodes, 500), envInt(b, envBenchPods, 5000)
	s := framework.StartServer(b, noNodeMonitor)
	// The processes whose CPU time per pod is reported; this one (the
	// clients creating pods and watching them) is pid 0.
	procs := []benchProc{{"server", s.PID()}, {"client", 0}}
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
	if os.Getenv(envBenchNodeObjects) == "1" {
		parallel(b, nodes, 16, func(i int) error {
			n := nodeObject(fmt.Sprintf("node-%05d", i), "32", "128Gi", 110)
			_, err := cs.CoreV1().Nodes().Create(bg, n, metav1.CreateOptions{})
			return err
		})
	} else {
		agent := s.StartHollowAgent(b, nodes, "--hollow-cpu", "32", "--hollow-memory", "128Gi")
		procs = append(procs, benchProc{"hollow-agent", agent.PID()})
	}

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
	cpu0 := cpuTimes(procs)
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
		for i, t := range cpuTimes(procs) {
			b.ReportMetric(float64((t-cpu0[i]).Microseconds())/float64(pods), procs[i].name+"-cpu-µs/pod")
		}
		b.Logf("%d pods on %d nodes: created in %v, all bound after %v: %.0f pods/s",
			pods, nodes, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d pods bound after 10 minutes", bound.Load(), pods)
	}
}

// benchProc is a process whose CPU time a benchmark reports; pid 0 is the
// benchmark's own process.
type benchProc struct {
	name string
	pid  int
}

// cpuTimes returns the CPU time each process has used so far (0 where it
// cannot be read).
func cpuTimes(procs []benchProc) []time.Duration {
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		pid := p.pid
		if pid == 0 {
			pid = os.Getpid()
		}
		out[i], _ = framework.ProcessCPU(pid)
	}
	return out
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
