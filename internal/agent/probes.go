package agent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/prober"
)

// probeManager is what the agent needs of prober.Manager (unit tests use a
// fake).
type probeManager interface {
	UpdatePod(pod *corev1.Pod, podIP string, containers []prober.ContainerState)
	RemovePod(uid types.UID)
	Result(uid types.UID, name string, kind prober.Kind, containerID string) (prober.Result, bool)
	Stop()
}

// newProber returns the agent's probe manager: its results wake the pod's
// worker, its Events are the pod's.
func (a *Agent) newProber() *prober.Manager {
	return prober.NewManager(prober.Options{
		Execer:  a.rt,
		Changed: a.enqueue,
		Event: func(pod *corev1.Pod, c *corev1.Container, eventType, reason, message string) {
			_, init := containerSpec(pod, c.Name)
			a.event(pod, c, init, eventType, reason, "%s", message)
		},
		Expand: expandStaticCommand,
	})
}

// expandStaticCommand expands $(VAR) in an exec probe's command with the
// container's plain env values (not those from other sources), as the
// kubelet does.
func expandStaticCommand(_ *corev1.Pod, c *corev1.Container, cmd []string) []string {
	var vars []envVar
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vars = append(vars, envVar{Name: e.Name, Value: e.Value})
		}
	}
	return expandAll(cmd, vars)
}

// hasProbes reports whether any container of the pod has a probe.
func hasProbes(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].LivenessProbe != nil || cs[i].ReadinessProbe != nil || cs[i].StartupProbe != nil {
				return true
			}
		}
	}
	return false
}

// updateProbes tells the probe manager what runs of a pod in its current
// sandbox (nothing without a ready sandbox: its containers are not
// probed).
func (a *Agent) updateProbes(pod *corev1.Pod, state *podState, sandboxID string, podIPs []string) {
	if a.probes == nil || !hasProbes(pod) {
		return
	}
	var list []prober.ContainerState
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			l := state.latest(cs[i].Name, sandboxID)
			if sandboxID == "" || l == nil {
				continue
			}
			list = append(list, prober.ContainerState{Name: l.Name, ID: l.ID,
				Running: l.State == runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: l.StartedAt})
		}
	}
	a.probes.UpdatePod(pod, firstIP(podIPs), list)
}

// containerHealth returns the started and ready fields of a running
// container instance of a pod: without a startup probe it started when it
// ran, without a readiness probe it is ready once started; otherwise the
// probes say.
func (a *Agent) containerHealth(uid types.UID) func(c *corev1.Container, id string) (started, ready bool) {
	return func(c *corev1.Container, id string) (bool, bool) {
		started := true
		if c.StartupProbe != nil {
			r, ok := a.probes.Result(uid, c.Name, prober.Startup, id)
			started = ok && r == prober.Success
		}
		ready := started
		if ready && c.ReadinessProbe != nil {
			r, ok := a.probes.Result(uid, c.Name, prober.Readiness, id)
			ready = ok && r == prober.Success
		}
		return started, ready
	}
}

// probeFailure reports whether a running container failed its liveness or
// startup probe, with the Killing message and the grace period to kill it
// with.
func (a *Agent) probeFailure(pod *corev1.Pod, c *corev1.Container, l *containerState) (message string, grace int64, failed bool) {
	var probe *corev1.Probe
	if r, ok := a.probes.Result(pod.UID, c.Name, prober.Liveness, l.ID); ok && r == prober.Failure && c.LivenessProbe != nil {
		message, probe = fmt.Sprintf("Container %s failed liveness probe", c.Name), c.LivenessProbe
	} else if r, ok := a.probes.Result(pod.UID, c.Name, prober.Startup, l.ID); ok && r == prober.Failure && c.StartupProbe != nil {
		message, probe = fmt.Sprintf("Container %s failed startup probe", c.Name), c.StartupProbe
	} else {
		return "", 0, false
	}
	if isSidecar(c) || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		message += ", will be restarted"
	}
	grace = rawGracePeriod(pod)
	if pod.DeletionGracePeriodSeconds == nil && probe.TerminationGracePeriodSeconds != nil {
		grace = *probe.TerminationGracePeriodSeconds
	}
	return message, grace, true
}
