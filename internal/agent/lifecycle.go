package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/agent/prober"
)

// minGracePeriod is the least time a container gets between SIGTERM and
// SIGKILL, whatever is left of its grace period.
const minGracePeriod = 2

// Waiting reason of a container whose postStart hook failed.
const reasonPostStartHookError = "PostStartHookError"

// rawGracePeriod is a pod's termination grace period in seconds, before the
// minimum is applied: the deletion's, else the spec's (default 30).
func rawGracePeriod(pod *corev1.Pod) int64 {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// formatPod names a pod in messages as the kubelet does: name_namespace(uid).
func formatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

func firstIP(ips []string) string {
	if len(ips) == 0 {
		return ""
	}
	return ips[0]
}

// runHook runs a lifecycle handler of a running container. On failure it
// returns the message the kubelet reports.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, containerID, podIP string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		stdout, stderr, code, err := a.rt.ExecSync(ctx, containerID, h.Exec.Command, 0)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, stderr)
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, formatPod(pod), err, string(append(stdout, stderr...))), err
		}
		return "", nil
	case h.HTTPGet != nil:
		req, err := prober.NewHTTPGetRequest(h.HTTPGet, c, podIP, "lifecycle")
		if err == nil {
			err = prober.Get(ctx, req)
		}
		if err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, formatPod(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, formatPod(pod), err), err
		}
	}
	err := errors.New("invalid handler: only exec, httpGet and sleep handlers are supported")
	return fmt.Sprintf("Cannot run handler: %v", err), err
}

// runPostStart runs a container's postStart hook, if it has one, after it
// started. On failure the container is killed (and restarted as its pod
// says) and false is returned.
func (a *Agent) runPostStart(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, init bool, id, podIP string) bool {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return true
	}
	msg, err := a.runHook(ctx, pod, c, id, podIP, c.Lifecycle.PostStart)
	if err == nil || ctx.Err() != nil {
		return err == nil
	}
	a.event(pod, c, init, corev1.EventTypeWarning, "FailedPostStartHook", "%s", msg)
	a.killContainer(ctx, pod, c, init, id, rawGracePeriod(pod), podIP, "FailedPostStartHook")
	w.setWaiting(c.Name, reasonPostStartHookError, msg)
	return false
}

// killContainer stops a running container as the kubelet does: a Killing
// Event (message, else "Stopping container <name>"), its preStop hook run
// within the grace period, then what is left of the period (at least 2 s)
// between SIGTERM and SIGKILL. Without a pod or spec (a pod the API
// forgot) only the last step is done.
func (a *Agent) killContainer(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, init bool, id string, grace int64, podIP, message string) {
	if pod != nil && spec != nil {
		if message == "" {
			message = "Stopping container " + spec.Name
		}
		a.event(pod, spec, init, corev1.EventTypeNormal, "Killing", "%s", message)
		if spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
			grace -= a.runPreStop(ctx, pod, spec, init, id, podIP, grace)
		}
	}
	grace = max(grace, minGracePeriod)
	if err := a.rt.StopContainer(ctx, id, grace); err != nil && ctx.Err() == nil {
		slog.Warn("stopping a container", "id", id, "err", err)
	}
}

// runPreStop runs a container's preStop hook for at most grace seconds and
// returns how many whole seconds it took.
func (a *Agent) runPreStop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, init bool, id, podIP string, grace int64) int64 {
	start := time.Now()
	hookCtx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
	defer cancel()
	_, err := a.runHook(hookCtx, pod, spec, id, podIP, spec.Lifecycle.PreStop)
	switch {
	case err != nil && hookCtx.Err() == nil:
		slog.Info("preStop hook failed", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "err", err)
		// The message stays out of the Event, lest it leak secrets.
		a.event(pod, spec, init, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed")
	case hookCtx.Err() != nil && ctx.Err() == nil:
		slog.Info("preStop hook not completed in grace period", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "gracePeriod", grace)
	}
	return int64(time.Since(start).Seconds())
}
