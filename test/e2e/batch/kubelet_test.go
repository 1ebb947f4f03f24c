package batch_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/havre/havre/test/framework"
)

// outcome is what the fake kubelet does with a pod bound to its node.
type outcome struct {
	// phase is Running (the pod stays running until finish is called),
	// Succeeded or Failed; "" leaves the pod Pending.
	phase    corev1.PodPhase
	exitCode int32
}

var (
	succeed = outcome{phase: corev1.PodSucceeded}
	run     = outcome{phase: corev1.PodRunning}
)

func fail(code int32) outcome { return outcome{phase: corev1.PodFailed, exitCode: code} }

// kubelet stands in for a scheduler and a node agent in one namespace: it
// binds pending pods to its node, takes them to the phase decide returns,
// and finishes pods being deleted (Failed, then deleted with no grace
// period), as a kubelet does. It watches the pods in order, so it also
// knows how many were active (neither finished nor being deleted) at
// once.
type kubelet struct {
	t      *testing.T
	cs     kubernetes.Interface
	ns     string
	node   string
	decide func(p *corev1.Pod) outcome

	mu        sync.Mutex
	active    map[string]bool
	maxActive int
	decided   map[types.UID]bool
	seen      map[string]*corev1.Pod // the last version of every pod
}

// startKubelet runs a fake kubelet for ns until the test ends.
func startKubelet(t *testing.T, cs kubernetes.Interface, ns, node string, decide func(p *corev1.Pod) outcome) *kubelet {
	t.Helper()
	k := &kubelet{t: t, cs: cs, ns: ns, node: node, decide: decide,
		active: map[string]bool{}, decided: map[types.UID]bool{}, seen: map[string]*corev1.Pod{}}
	list, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w, err := watchtools.NewRetryWatcherWithContext(runCtx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		cancel()
		t.Fatalf("watching pods: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			k.observe(ev.Type, p)
			if ev.Type != watch.Deleted {
				k.act(runCtx, p)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		<-done
	})
	return k
}

func (k *kubelet) observe(typ watch.EventType, p *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seen[p.Name] = p
	if typ == watch.Deleted || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
		delete(k.active, p.Name)
	} else {
		k.active[p.Name] = true
	}
	k.maxActive = max(k.maxActive, len(k.active))
}

// act does the kubelet's part for the current version of a pod.
func (k *kubelet) act(ctx context.Context, p *corev1.Pod) {
	terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	switch {
	case p.DeletionTimestamp != nil:
		if p.Spec.NodeName == "" {
			return // the API server deletes unbound pods at once
		}
		if !terminal {
			k.report(ctx, p, corev1.PodFailed, 137)
		}
		zero := int64(0)
		err := k.cs.CoreV1().Pods(k.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}})
		k.check(ctx, "deleting", p, err)
	case terminal:
	case p.Spec.NodeName == "":
		err := k.cs.CoreV1().Pods(k.ns).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
		k.check(ctx, "binding", p, err)
	case p.Status.Phase == corev1.PodPending || p.Status.Phase == "":
		k.mu.Lock()
		first := !k.decided[p.UID]
		k.decided[p.UID] = true
		k.mu.Unlock()
		if !first {
			return
		}
		if o := k.decide(p); o.phase != "" {
			k.report(ctx, p, o.phase, o.exitCode)
		}
	}
}

// finish ends a running pod as a container exiting with code would.
func (k *kubelet) finish(name string, code int32) {
	k.t.Helper()
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	k.mu.Lock()
	p := k.seen[name]
	k.mu.Unlock()
	if p == nil {
		k.t.Fatalf("the kubelet never saw pod %s", name)
	}
	k.report(ctx(k.t), p, phase, code)
}

// report writes the pod's status as the kubelet would for phase.
func (k *kubelet) report(ctx context.Context, p *corev1.Pod, phase corev1.PodPhase, code int32) {
	now := metav1.Now()
	ready := corev1.ConditionFalse
	state := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: "Completed", StartedAt: now, FinishedAt: now}}
	switch {
	case phase == corev1.PodRunning:
		ready = corev1.ConditionTrue
		state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	case code != 0:
		state.Terminated.Reason = "Error"
	}
	var statuses []corev1.ContainerStatus
	for _, c := range p.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: state, Ready: ready == corev1.ConditionTrue})
	}
	patch, err := json.Marshal(map[string]any{"status": corev1.PodStatus{
		Phase:             phase,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: now}},
		ContainerStatuses: statuses,
		StartTime:         &now,
	}})
	if err != nil {
		k.t.Errorf("encoding a pod status: %v", err)
		return
	}
	_, err = k.cs.CoreV1().Pods(k.ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	k.check(ctx, "reporting the status of", p, err)
}

// check reports an unexpected error; pods may go away at any time, and
// nothing matters once the test ended.
func (k *kubelet) check(ctx context.Context, what string, p *corev1.Pod, err error) {
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || ctx.Err() != nil {
		return
	}
	k.t.Errorf("fake kubelet: %s pod %s: %v", what, p.Name, err)
}

// peak returns the most pods that were active at once.
func (k *kubelet) peak() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maxActive
}

// pods returns the last version of every pod seen.
func (k *kubelet) pods() map[string]*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]*corev1.Pod, len(k.seen))
	for n, p := range k.seen {
		out[n] = p
	}
	return out
}

// waitRunning waits until a pod is reported running and returns its name.
func (k *kubelet) waitRunning(t *testing.T, timeout time.Duration) string {
	t.Helper()
	var name string
	framework.Eventually(t, timeout, func() (bool, error) {
		for n, p := range k.pods() {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				name = n
				return true, nil
			}
		}
		return false, nil
	}, "a pod running in %s", k.ns)
	return name
}
