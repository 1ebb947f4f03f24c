package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

// fakeBinder records bindings and confirms them in the cache, as the
// informer would.
type fakeBinder struct {
	cache *Cache
	mu    sync.Mutex
	bound map[string]string
}

func (b *fakeBinder) Name() string { return "FakeBinder" }

func (b *fakeBinder) Bind(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, node string) *framework.Status {
	b.mu.Lock()
	b.bound[pod.Name] = node
	b.mu.Unlock()
	if err := b.cache.AddPod(pod); err != nil {
		return framework.AsStatus(err)
	}
	return nil
}

func (b *fakeBinder) boundTo(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bound[name]
}

func newTestScheduler(t testing.TB, objs ...runtime.Object) (*Scheduler, *fakeBinder, *fake.Clientset, *events.FakeRecorder) {
	client := fake.NewClientset(objs...)
	s, err := New(client, nil, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBinder{cache: s.Cache, bound: map[string]string{}}
	s.profile.bind = []framework.BindPlugin{b}
	rec := events.NewFakeRecorder(100)
	s.profile.recorder = rec
	return s, b, client, rec
}

// runCycles runs n scheduling cycles and waits for the bindings.
func runCycles(s *Scheduler, n int) {
	for range n {
		s.scheduleOne(context.Background())
	}
	s.wg.Wait()
}

func TestScheduleOne(t *testing.T) {
	big := testutil.Pod("big", "3", "")
	s, b, client, rec := newTestScheduler(t, big)
	s.Cache.AddNode(testutil.Node("n0", "2", "4Gi", 10))
	s.Cache.AddNode(testutil.Node("n1", "2", "4Gi", 10))
	for i := range 4 {
		s.Queue.Add(testutil.Pod(fmt.Sprintf("p%d", i), "1", ""))
	}
	runCycles(s, 4)
	perNode := map[string]int{}
	for i := range 4 {
		node := b.boundTo(fmt.Sprintf("p%d", i))
		if node == "" {
			t.Fatalf("p%d not bound", i)
		}
		perNode[node]++
	}
	if perNode["n0"] != 2 || perNode["n1"] != 2 {
		t.Errorf("pods per node %v, want 2 and 2", perNode)
	}
	if got := s.Scheduled(); got != 4 {
		t.Errorf("Scheduled() = %d", got)
	}
	scheduledEvents := 0
	for range 4 {
		if ev := <-rec.Events; strings.HasPrefix(ev, "Normal Scheduled Successfully assigned default/p") {
			scheduledEvents++
		}
	}
	if scheduledEvents != 4 {
		t.Errorf("%d Scheduled events, want 4", scheduledEvents)
	}

	// A pod that fits nowhere: FailedScheduling and PodScheduled=False.
	s.Queue.Add(big)
	runCycles(s, 1)
	const want = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	select {
	case ev := <-rec.Events:
		if ev != "Warning FailedScheduling "+want {
			t.Errorf("event %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no FailedScheduling event")
	}
	var patched bool
	for _, a := range client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetSubresource() == "status" && p.GetName() == "big" {
			patch := string(p.GetPatch())
			patched = strings.Contains(patch, `"type":"PodScheduled"`) && strings.Contains(patch, `"reason":"Unschedulable"`) &&
				strings.Contains(patch, `"status":"False"`) && strings.Contains(patch, want)
		}
	}
	if !patched {
		t.Errorf("no PodScheduled=False status patch: %v", client.Actions())
	}
	if _, _, u := s.Queue.Lengths(); u != 1 {
		t.Fatalf("the pod is not among the unschedulable pods")
	}
	// A bigger node is a cluster event that retries it; it lands there.
	s.Cache.AddNode(testutil.Node("n2", "4", "4Gi", 10))
	s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventNodeAdd)
	// Past the pod's backoff.
	s.Queue.mu.Lock()
	s.Queue.now = func() time.Time { return time.Now().Add(time.Minute) }
	s.Queue.mu.Unlock()
	s.Queue.flushBackoffCompleted()
	if a, _, _ := s.Queue.Lengths(); a != 1 {
		t.Fatal("the node did not bring the pod back to activeQ")
	}
	runCycles(s, 1)
	if got := b.boundTo("big"); got != "n2" {
		t.Errorf("big bound to %q after n2 came, want n2", got)
	}
}

func TestScheduleNoNodes(t *testing.T) {
	pod := testutil.Pod("p", "", "")
	s, _, _, rec := newTestScheduler(t, pod)
	s.Queue.Add(pod)
	runCycles(s, 1)
	if ev := <-rec.Events; ev != "Warning FailedScheduling no nodes available to schedule pods" {
		t.Errorf("event %q", ev)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	s, _, _, _ := newTestScheduler(t)
	for _, tc := range []struct{ nodes, pct, want int }{
		{50, 0, 50}, {100, 0, 100}, {1000, 0, 420}, {5000, 0, 500}, {6000, 0, 300}, {10000, 0, 500}, {1000, 30, 300}, {200, 10, 100},
	} {
		s.cfg.PercentageOfNodesToScore = int32(tc.pct)
		if got := s.numFeasibleNodesToFind(tc.nodes); got != tc.want {
			t.Errorf("%d nodes at %d%%: %d, want %d", tc.nodes, tc.pct, got, tc.want)
		}
	}
}

// BenchmarkScheduleOne measures the scheduling cycle alone (no API):
// pods requesting CPU and memory on 5000 nodes, bound by a binder that
// only confirms them in the cache. b.N pods are scheduled.
func BenchmarkScheduleOne(b *testing.B) {
	for _, nodes := range []int{500, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			s, _, _, _ := newTestScheduler(b)
			s.profile.recorder = nopRecorder{}
			for i := range nodes {
				s.Cache.AddNode(testutil.Node(fmt.Sprintf("node-%05d", i), "32", "128Gi", 110,
					"topology.kubernetes.io/zone", fmt.Sprintf("zone-%d", i%3)))
			}
			pods := make([]*corev1.Pod, b.N)
			for i := range pods {
				pods[i] = testutil.Pod(fmt.Sprintf("pod-%07d", i), "100m", "100Mi")
			}
			b.ResetTimer()
			start := time.Now()
			for _, p := range pods {
				s.Queue.Add(p)
				s.scheduleOne(context.Background())
			}
			s.wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pods/s")
			if got := s.Scheduled(); got != int64(b.N) {
				b.Fatalf("scheduled %d of %d", got, b.N)
			}
		})
	}
}

type nopRecorder struct{}

func (nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}
