package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/havre/havre/test/framework"
)

// BenchmarkPodStartup measures pod startup latency on a real node with the
// image present: from the create call to the pod seen Running and Ready
// through a watch, for 1 pod alone and for 50 pods created at once (each
// pod's own latency; p50 and p99 over the batch). The pods are scheduled
// by the server's scheduler. Run with -benchtime=1x; each iteration runs
// both cases in a fresh namespace.
//
//	go test ./test/e2e/agent/ -run '^$' -bench PodStartup -benchtime=1x
func BenchmarkPodStartup(b *testing.B) {
	s := startNode(b)
	var one, batch []time.Duration
	for i := range b.N {
		ns := fmt.Sprintf("bench-%d", i)
		createNamespace(b, s, ns)
		one = append(one, startPods(b, s, ns, "single", 1)...)
		batch = append(batch, startPods(b, s, ns, "batch", 50)...)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(one, 50)), "single-p50-ms")
	b.ReportMetric(ms(percentile(batch, 50)), "50pods-p50-ms")
	b.ReportMetric(ms(percentile(batch, 99)), "50pods-p99-ms")

	// Memory once the pods have run and the node is quiet again: the
	// server process (API server, controllers and agent) and its
	// containerd, reported separately.
	data, err := os.ReadFile(filepath.Join(s.DataDir(), "agent", "containerd", "containerd.pid"))
	if err != nil {
		b.Fatal(err)
	}
	cpid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if rss, err := framework.ProcessRSS(s.PID()); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "server-rss-MiB")
	}
	if rss, err := framework.ProcessRSS(cpid); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "containerd-rss-MiB")
	}
}

// startPods creates n pods at once and returns each one's latency from its
// create call to Running and Ready.
func startPods(tb testing.TB, s *framework.Server, ns, prefix string, n int) []time.Duration {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pods := s.Clientset().CoreV1().Pods(ns)
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "bench=" + prefix})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	started := map[string]time.Time{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			started[name] = time.Now()
			mu.Unlock()
			_, err := pods.Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": prefix}},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever}},
					TerminationGracePeriodSeconds: new(int64),
				},
			}, metav1.CreateOptions{})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	var out []time.Duration
	done := map[string]bool{}
	for len(done) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				tb.Fatalf("watch ended with %d of %d pods ready", len(done), n)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted || done[p.Name] || !running(p) {
				continue
			}
			done[p.Name] = true
			mu.Lock()
			out = append(out, time.Since(started[p.Name]))
			mu.Unlock()
		case <-ctx.Done():
			tb.Fatalf("%d of %d pods ready: %v", len(done), n, ctx.Err())
		}
	}
	return out
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}
