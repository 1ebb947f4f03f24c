package scheduler

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestQueue(c *fakeClock) *Queue {
	return NewQueue(QueueOptions{Now: c.now, Events: map[string][]framework.ClusterEvent{
		"NodeResourcesFit": {{Resource: framework.Node, ActionType: framework.Add}},
		"TaintToleration":  {{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}},
	}})
}

func TestQueueOrder(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := newTestQueue(c)
	q.Add(testutil.WithPriority(testutil.Pod("low-first", "", ""), 1))
	c.t = c.t.Add(time.Second)
	q.Add(testutil.WithPriority(testutil.Pod("high", "", ""), 10))
	c.t = c.t.Add(time.Second)
	q.Add(testutil.WithPriority(testutil.Pod("low-second", "", ""), 1))
	for _, want := range []string{"high", "low-first", "low-second"} {
		p, _ := q.Pop()
		if p.Pod.Name != want {
			t.Fatalf("popped %s, want %s", p.Pod.Name, want)
		}
	}
}

func TestQueueUnschedulableMoves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plugins []string
		event   framework.ClusterEvent
		moved   bool
	}{
		{"registered event", []string{"NodeResourcesFit"}, framework.EventNodeAdd, true},
		{"unrelated event", []string{"NodeResourcesFit"}, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}, false},
		{"one of several plugins", []string{"NodeResourcesFit", "TaintToleration"}, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}, true},
		{"wildcard", []string{"NodeResourcesFit"}, framework.EventUnschedulableFlush, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1000, 0)}
			q := newTestQueue(c)
			q.Add(testutil.Pod("p", "", ""))
			p, cycle := q.Pop()
			p.UnschedulablePlugins = sets.New(tc.plugins...)
			q.AddUnschedulableIfNotPresent(p, cycle)
			if a, b, u := q.Lengths(); a != 0 || b != 0 || u != 1 {
				t.Fatalf("lengths %d %d %d, want the pod unschedulable", a, b, u)
			}
			c.t = c.t.Add(time.Minute) // past its backoff
			q.MoveAllToActiveOrBackoffQueue(tc.event)
			a, _, u := q.Lengths()
			if moved := a == 1 && u == 0; moved != tc.moved {
				t.Errorf("moved = %v, want %v", moved, tc.moved)
			}
		})
	}
}

func TestQueueBackoff(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := newTestQueue(c)
	q.Add(testutil.Pod("p", "", ""))
	p, cycle := q.Pop()
	// An error (no rejecting plugin) goes to backoffQ.
	q.AddUnschedulableIfNotPresent(p, cycle)
	if _, b, _ := q.Lengths(); b != 1 {
		t.Fatal("pod not in backoffQ")
	}
	c.t = c.t.Add(500 * time.Millisecond)
	q.flushBackoffCompleted()
	if a, _, _ := q.Lengths(); a != 0 {
		t.Fatal("pod left backoffQ before its 1s backoff")
	}
	c.t = c.t.Add(600 * time.Millisecond)
	q.flushBackoffCompleted()
	if a, _, _ := q.Lengths(); a != 1 {
		t.Fatal("pod still backing off after 1.1s")
	}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 20: 10 * time.Second} {
		if got := q.backoffDuration(&QueuedPodInfo{Attempts: attempts}); got != want {
			t.Errorf("backoff after %d attempts: %v, want %v", attempts, got, want)
		}
	}
}

func TestQueueEventDuringAttempt(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := newTestQueue(c)
	q.Add(testutil.Pod("p", "", ""))
	p, cycle := q.Pop()
	// A node came while the pod was being scheduled: it must not wait
	// among the unschedulable pods for another event.
	q.MoveAllToActiveOrBackoffQueue(framework.EventNodeAdd)
	p.UnschedulablePlugins = sets.New("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p, cycle)
	if _, b, u := q.Lengths(); b != 1 || u != 0 {
		t.Errorf("backoff %d unschedulable %d, want the pod in backoffQ", b, u)
	}
}

func TestQueueUpdate(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	q := newTestQueue(c)
	pod := testutil.Pod("p", "", "")
	q.Add(pod)
	p, cycle := q.Pop()
	p.UnschedulablePlugins = sets.New("NodeResourcesFit")
	q.AddUnschedulableIfNotPresent(p, cycle)
	c.t = c.t.Add(time.Minute)

	statusOnly := pod.DeepCopy()
	statusOnly.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.Update(pod, statusOnly)
	if _, _, u := q.Lengths(); u != 1 {
		t.Fatal("a status update moved the pod")
	}
	relabelled := statusOnly.DeepCopy()
	relabelled.Labels = map[string]string{"x": "y"}
	q.Update(statusOnly, relabelled)
	if a, _, _ := q.Lengths(); a != 1 {
		t.Fatal("a spec/label update did not retry the pod")
	}
	q.Delete(relabelled)
	if a, b, u := q.Lengths(); a+b+u != 0 {
		t.Fatal("Delete left the pod queued")
	}
}

func TestNominator(t *testing.T) {
	q := newTestQueue(&fakeClock{t: time.Unix(1000, 0)})
	pod := testutil.Pod("p", "", "")
	q.AddNominatedPod(pod, "n1")
	if got := q.NominatedPodsForNode("n1"); len(got) != 1 || got[0].Pod.Name != "p" {
		t.Fatalf("nominated on n1: %v", got)
	}
	// An update without status.nominatedNodeName keeps the in-memory one.
	q.nominator.update(pod, pod.DeepCopy())
	if got := q.NominatedPodsForNode("n1"); len(got) != 1 {
		t.Fatal("the nomination was lost on an update")
	}
	q.DeleteNominatedPodIfExists(pod)
	if got := q.NominatedPodsForNode("n1"); len(got) != 0 {
		t.Fatal("the nomination survived its deletion")
	}
}
