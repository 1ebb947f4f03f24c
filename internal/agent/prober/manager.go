package prober

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Options configure a Manager.
type Options struct {
	// Execer runs exec probes.
	Execer Execer
	// Event records an Event about a container of a pod (Unhealthy,
	// ProbeWarning). Optional.
	Event func(pod *corev1.Pod, c *corev1.Container, eventType, reason, message string)
	// Changed is called, outside any lock, when a container's result
	// changed. Optional.
	Changed func(uid types.UID)
	// Expand returns an exec probe's command with the container's
	// variables expanded (nil: as written).
	Expand func(pod *corev1.Pod, c *corev1.Container, cmd []string) []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ContainerState is what the Manager needs to know of a container's
// current instance.
type ContainerState struct {
	Name      string
	ID        string
	Running   bool
	StartedAt time.Time
}

// Manager runs the probes of the pods it is told about, one worker
// goroutine per container and probe kind, and keeps their results.
type Manager struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pods    map[types.UID]*podEntry
	results map[resultKey]resultEntry
	// manual leaves the workers to the tests, which call doProbe.
	manual bool
}

type podEntry struct {
	pod        *corev1.Pod
	podIP      string
	containers map[string]ContainerState
	workers    map[workerKey]*worker
}

type workerKey struct {
	name string
	kind Kind
}

type resultKey struct {
	uid  types.UID
	name string
	kind Kind
}

type resultEntry struct {
	containerID string
	result      Result
}

// NewManager returns a Manager; Stop ends its workers.
func NewManager(o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{opts: o, ctx: ctx, cancel: cancel, pods: map[types.UID]*podEntry{}, results: map[resultKey]resultEntry{}}
}

// probeOf returns a container's probe of a kind, or nil.
func probeOf(c *corev1.Container, k Kind) *corev1.Probe {
	switch k {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	case Startup:
		return c.StartupProbe
	}
	return nil
}

// probedContainers are the containers of a pod that may have probes: the
// regular ones and the sidecars (init containers that keep running).
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out = append(out, c)
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// UpdatePod tells the Manager about a pod, its IP and the current instances
// of its containers; it starts the workers of the pod's probes the first
// time. A nil Manager does nothing.
func (m *Manager) UpdatePod(pod *corev1.Pod, podIP string, containers []ContainerState) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	e := m.pods[pod.UID]
	if e == nil {
		e = &podEntry{workers: map[workerKey]*worker{}}
		m.pods[pod.UID] = e
	}
	old := e.containers
	e.pod, e.podIP = pod, podIP
	e.containers = make(map[string]ContainerState, len(containers))
	for _, c := range containers {
		e.containers[c.Name] = c
	}
	for _, c := range probedContainers(pod) {
		for _, k := range []Kind{Liveness, Readiness, Startup} {
			spec := probeOf(c, k)
			if spec == nil {
				continue
			}
			key := workerKey{c.Name, k}
			w := e.workers[key]
			if w == nil {
				w = newWorker(m, pod.UID, c.Name, k, spec)
				e.workers[key] = w
				if !m.manual {
					m.wg.Add(1)
					go w.run(m.ctx)
				}
				continue
			}
			// A new instance is probed for readiness at once, so that
			// it is marked ready without waiting a period.
			if cur := e.containers[c.Name]; k == Readiness && cur.ID != "" && cur.ID != old[c.Name].ID {
				w.kick()
			}
		}
	}
}

// RemovePod stops the workers of a pod and forgets its results. A nil
// Manager does nothing.
func (m *Manager) RemovePod(uid types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[uid]
	if e == nil {
		return
	}
	for _, w := range e.workers {
		w.stop()
	}
	delete(m.pods, uid)
	for k := range m.results {
		if k.uid == uid {
			delete(m.results, k)
		}
	}
}

// Result returns a container instance's current result for a probe kind;
// ok is false while the instance has none yet. A nil Manager knows none.
func (m *Manager) Result(uid types.UID, name string, kind Kind, containerID string) (r Result, ok bool) {
	if m == nil {
		return Unknown, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.results[resultKey{uid, name, kind}]
	if !ok || e.containerID != containerID {
		return Unknown, false
	}
	return e.result, true
}

// Stop stops every worker and waits for them.
func (m *Manager) Stop() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}

// snapshot returns what a worker needs: the pod, its IP and the
// container's current instance; ok is false once the pod was removed.
func (m *Manager) snapshot(uid types.UID, name string) (pod *corev1.Pod, podIP string, c ContainerState, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[uid]
	if e == nil {
		return nil, "", ContainerState{}, false
	}
	return e.pod, e.podIP, e.containers[name], true
}

// setResult records a result and calls Changed if it differs from the
// instance's last one (and notify is set).
func (m *Manager) setResult(uid types.UID, name string, kind Kind, containerID string, r Result, notify bool) {
	key := resultKey{uid, name, kind}
	m.mu.Lock()
	if _, live := m.pods[uid]; !live {
		m.mu.Unlock()
		return
	}
	prev, had := m.results[key]
	m.results[key] = resultEntry{containerID: containerID, result: r}
	m.mu.Unlock()
	if notify && (!had || prev.containerID != containerID || prev.result != r) && m.opts.Changed != nil {
		m.opts.Changed(uid)
	}
}
