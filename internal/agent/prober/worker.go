package prober

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Probe defaults, as the API server sets them (for specs that skipped
// defaulting).
const (
	defaultPeriod           = 10 * time.Second
	defaultTimeout          = time.Second
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// worker probes one container of a pod for one kind of probe, every
// period, across the container's instances. Its fields below trigger are
// the goroutine's own.
type worker struct {
	m       *Manager
	uid     types.UID
	name    string
	kind    Kind
	spec    *corev1.Probe
	trigger chan struct{}
	cancel  context.CancelFunc

	containerID string
	lastResult  Result
	resultRun   int
	// onHold stops probing an instance whose liveness or startup probe
	// failed: it is being killed.
	onHold bool
}

func newWorker(m *Manager, uid types.UID, name string, kind Kind, spec *corev1.Probe) *worker {
	return &worker{m: m, uid: uid, name: name, kind: kind, spec: spec, trigger: make(chan struct{}, 1)}
}

func seconds(v int32, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return time.Duration(v) * time.Second
}

func threshold(v int32, def int) int {
	if v <= 0 {
		return def
	}
	return int(v)
}

// initial is a kind's result for an instance not probed yet.
func (w *worker) initial() Result {
	switch w.kind {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	}
	return Unknown
}

func (w *worker) kick() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// stop ends the worker (called with the Manager's lock held).
func (w *worker) stop() {
	if w.cancel != nil {
		w.cancel()
	}
}

func (w *worker) run(parent context.Context) {
	defer w.m.wg.Done()
	ctx, cancel := context.WithCancel(parent)
	w.m.mu.Lock()
	w.cancel = cancel
	stopped := w.m.pods[w.uid] == nil || w.m.pods[w.uid].workers[workerKey{w.name, w.kind}] != w
	w.m.mu.Unlock()
	defer cancel()
	if stopped {
		return
	}
	t := time.NewTicker(seconds(w.spec.PeriodSeconds, defaultPeriod))
	defer t.Stop()
	for {
		w.doProbe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.trigger:
		}
	}
}

// doProbe probes the container's current instance once, if it should be,
// and records the result once a threshold is met, as the kubelet's worker
// does.
func (w *worker) doProbe(ctx context.Context) {
	pod, podIP, cs, ok := w.m.snapshot(w.uid, w.name)
	if !ok || cs.ID == "" {
		return
	}
	if cs.ID != w.containerID {
		w.containerID = cs.ID
		w.lastResult, w.resultRun, w.onHold = Unknown, 0, false
		w.m.setResult(w.uid, w.name, w.kind, cs.ID, w.initial(), false)
	}
	if w.onHold || !cs.Running {
		return
	}
	spec := containerSpec(pod, w.name)
	if spec == nil {
		return
	}
	// Only the startup probe runs until the container started; it stops
	// once it did.
	started := true
	if spec.StartupProbe != nil {
		r, ok := w.m.Result(w.uid, w.name, Startup, cs.ID)
		started = ok && r == Success
	}
	if w.kind == Startup && started || w.kind != Startup && !started {
		return
	}
	now := w.m.opts.Now()
	if int32(now.Sub(cs.StartedAt).Seconds()) < w.spec.InitialDelaySeconds {
		return
	}

	target := Target{PodIP: podIP, Container: spec, ContainerID: cs.ID}
	if w.spec.Exec != nil && w.m.opts.Expand != nil {
		target.Command = w.m.opts.Expand(pod, spec, w.spec.Exec.Command)
	}
	outcome, output, err := Run(ctx, &w.spec.ProbeHandler, seconds(w.spec.TimeoutSeconds, defaultTimeout), target, w.m.opts.Execer)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		// The probe could not run: that says nothing of the container.
		w.event(pod, spec, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe errored: %v", w.kind, err))
		return
	}
	result := Success
	switch outcome {
	case OutcomeWarning:
		w.event(pod, spec, corev1.EventTypeWarning, "ProbeWarning", fmt.Sprintf("%s probe warning: %s", w.kind, output))
	case OutcomeFailure:
		result = Failure
		w.event(pod, spec, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", w.kind, output))
	}

	if w.lastResult == result {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = result, 1
	}
	if result == Failure && w.resultRun < threshold(w.spec.FailureThreshold, defaultFailureThreshold) ||
		result == Success && w.resultRun < threshold(w.spec.SuccessThreshold, defaultSuccessThreshold) {
		return // not yet: the result stands
	}
	w.m.setResult(w.uid, w.name, w.kind, cs.ID, result, true)
	if (w.kind == Liveness || w.kind == Startup) && result == Failure {
		// The container is killed and restarted: probe the next instance.
		w.onHold, w.resultRun = true, 0
	}
}

func (w *worker) event(pod *corev1.Pod, c *corev1.Container, eventType, reason, msg string) {
	if w.m.opts.Event != nil {
		w.m.opts.Event(pod, c, eventType, reason, msg)
	}
}

// containerSpec finds a probed container of the pod by name.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range probedContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
