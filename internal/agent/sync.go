package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/volumes"
	"github.com/havre/havre/internal/mountinfo"
)

// syncPod brings what runs for a pod in line with the pod. It returns when
// to sync again (0: at the next resync) and done once nothing is left of a
// pod the API no longer has.
func (a *Agent) syncPod(ctx context.Context, w *podWorker) (time.Duration, bool) {
	pod := a.pod(w.uid)
	state, err := observe(ctx, a.rt, &a.statuses, w.uid)
	if err != nil {
		if ctx.Err() == nil {
			slog.Warn("reading a pod's containers from the runtime", "uid", w.uid, "err", err)
		}
		return 2 * time.Second, false
	}
	switch {
	case pod == nil:
		return a.cleanupPod(ctx, w.uid, state)
	case pod.DeletionTimestamp != nil:
		return a.terminatePod(ctx, w, pod, state)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return a.finishPod(ctx, w, pod, state)
	default:
		return a.runPod(ctx, w, pod, state)
	}
}

// event records an Event about a pod, or one of its containers.
func (a *Agent) event(pod *corev1.Pod, c *corev1.Container, init bool, eventType, reason, format string, args ...any) {
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if c != nil {
		field := "spec.containers"
		if init {
			field = "spec.initContainers"
		}
		ref.FieldPath = fmt.Sprintf("%s{%s}", field, c.Name)
	}
	a.recorder.Eventf(ref, eventType, reason, format, args...)
}

func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// containerSpec finds a container of the pod by name.
func containerSpec(pod *corev1.Pod, name string) (*corev1.Container, bool) {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i], true
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], false
		}
	}
	return nil, false
}

// killContainers stops every running container of state, in parallel,
// each within grace seconds (its preStop hook, then SIGTERM; see
// killContainer).
func (a *Agent) killContainers(ctx context.Context, pod *corev1.Pod, state *podState, grace int64) {
	podIP := firstIP(a.sandboxIPs(ctx, state.current()))
	var wg sync.WaitGroup
	for _, c := range state.Containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		var spec *corev1.Container
		init := false
		if pod != nil {
			spec, init = containerSpec(pod, c.Name)
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			a.killContainer(ctx, pod, spec, init, id, grace, podIP, "")
		}(c.ID)
	}
	wg.Wait()
}

// stopSandboxes stops every ready sandbox of state.
func (a *Agent) stopSandboxes(ctx context.Context, state *podState) error {
	var errs []error
	for _, s := range state.Sandboxes {
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if err := a.rt.StopPodSandbox(ctx, s.Id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeFailedSandboxes removes the pod's sandboxes that are not ready and
// never ran a container: what a failed creation leaves. The runtime keeps
// such a sandbox, with its network namespace and its address, until it is
// removed; without this every retry would leak one of each.
func (a *Agent) removeFailedSandboxes(ctx context.Context, pod *corev1.Pod, state *podState) {
	ran := map[string]bool{}
	for _, c := range state.Containers {
		ran[c.SandboxID] = true
	}
	for _, s := range state.Sandboxes {
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY || ran[s.Id] {
			continue
		}
		// Stop tears the network down; remove needs that done.
		err := a.rt.StopPodSandbox(ctx, s.Id)
		if err == nil {
			err = a.rt.RemovePodSandbox(ctx, s.Id)
		}
		if err != nil && ctx.Err() == nil {
			slog.Warn("removing a failed sandbox", "pod", pod.Namespace+"/"+pod.Name, "sandbox", s.Id, "err", grpcMessage(err))
			continue
		}
		a.ipCache.Delete(s.Id)
	}
}

// cleanupPod kills and removes what runs for a pod the API no longer has.
func (a *Agent) cleanupPod(ctx context.Context, uid types.UID, state *podState) (time.Duration, bool) {
	if !state.empty() {
		grace := int64(2)
		for _, s := range state.Sandboxes {
			if g, err := strconv.ParseInt(s.Annotations[annotationGrace], 10, 64); err == nil && g > grace {
				grace = min(g, 30) // the pod is gone: do not wait long
			}
		}
		a.killContainers(ctx, nil, state, grace)
		var errs []error
		for _, s := range state.Sandboxes {
			if err := a.rt.StopPodSandbox(ctx, s.Id); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := a.rt.RemovePodSandbox(ctx, s.Id); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range state.Containers {
			a.statuses.forget(c.ID)
		}
		a.probes.RemovePod(uid)
		a.watched.untrack(uid)
		a.forgetClaims(uid)
		if err := errors.Join(errs...); err != nil {
			if ctx.Err() == nil {
				slog.Warn("removing the sandboxes of a deleted pod", "uid", uid, "err", err)
			}
			return 2 * time.Second, false
		}
		slog.Info("removed a deleted pod's sandboxes", "uid", uid, "sandboxes", len(state.Sandboxes))
	}
	remaining, err := observe(ctx, a.rt, &a.statuses, uid)
	if err != nil || !remaining.empty() {
		return time.Second, false
	}
	a.forgetClaims(uid)
	a.removePodFiles(uid)
	a.crashBO.ForgetPrefix(string(uid) + "/")
	a.sandboxBO.ForgetPrefix(string(uid))
	a.pullBO.ForgetPrefix(string(uid) + "/")
	return 0, true
}

// removePodFiles removes a pod's directory (unmounting its tmpfs volumes
// first), logs and cgroups.
func (a *Agent) removePodFiles(uid types.UID) {
	dir := filepath.Join(a.dirs.pods, string(uid))
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // as the mount table names it
	}
	if err := mountinfo.UnmountBelow(dir); err != nil {
		// What is still mounted (a subPath of a claim) must not be
		// removed with the pod's files: keep the directory.
		slog.Warn("unmounting a pod's volumes; its directory is kept", "uid", uid, "dir", dir, "err", err)
	} else if err := os.RemoveAll(filepath.Join(a.dirs.pods, string(uid))); err != nil {
		slog.Warn("removing a pod's directory", "uid", uid, "err", err)
	}
	if matches, err := filepath.Glob(filepath.Join(a.dirs.logs, "*_"+string(uid))); err == nil {
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
	removePodCgroups(uid)
}

// terminatePod stops a pod being deleted within its grace period, writes
// its final status and deletes it for good.
func (a *Agent) terminatePod(ctx context.Context, w *podWorker, pod *corev1.Pod, state *podState) (time.Duration, bool) {
	if pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0 && len(pod.Finalizers) > 0 && !running(state) {
		// Done on our side; finalizers hold the pod.
		return 0, false
	}
	a.probes.RemovePod(pod.UID)
	a.watched.untrack(pod.UID)
	a.forgetClaims(pod.UID)
	a.killContainers(ctx, pod, state, rawGracePeriod(pod))
	if err := a.stopSandboxes(ctx, state); err != nil && ctx.Err() == nil {
		slog.Warn("stopping a terminating pod's sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return time.Second, false
	}
	if ctx.Err() != nil {
		return 0, false
	}
	final, err := observe(ctx, a.rt, &a.statuses, pod.UID)
	if err != nil {
		return time.Second, false
	}
	_, hostIPs, _ := a.facts()
	st := computeStatus(statusInputs{
		pod: pod, state: final, hostIPs: hostIPs, runtimeName: a.runtimeName, now: a.now(), terminating: true,
		podIPs: a.sandboxIPs(ctx, final.current()),
	})
	a.writeStatus(ctx, w, pod, st)
	err = a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		slog.Warn("deleting a terminated pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return time.Second, false
	}
	slog.Info("pod terminated", "pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
	return 0, false
}

func running(state *podState) bool {
	for _, c := range state.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return true
		}
	}
	for _, s := range state.Sandboxes {
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			return true
		}
	}
	return false
}

// finishPod stops what still runs of a pod that reached a terminal phase
// and keeps its container statuses current.
func (a *Agent) finishPod(ctx context.Context, w *podWorker, pod *corev1.Pod, state *podState) (time.Duration, bool) {
	a.probes.RemovePod(pod.UID)
	a.watched.untrack(pod.UID)
	if running(state) {
		a.killContainers(ctx, pod, state, rawGracePeriod(pod))
		if err := a.stopSandboxes(ctx, state); err != nil {
			return time.Second, false
		}
		var err error
		if state, err = observe(ctx, a.rt, &a.statuses, pod.UID); err != nil {
			return time.Second, false
		}
	}
	_, hostIPs, _ := a.facts()
	st := computeStatus(statusInputs{
		pod: pod, state: state, hostIPs: hostIPs, runtimeName: a.runtimeName, now: a.now(),
		waiting: w.waiting, podIPs: a.sandboxIPs(ctx, state.current()),
	})
	// A finished pod keeps its IPs in its status.
	if len(st.PodIPs) == 0 {
		st.PodIP, st.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
	}
	a.writeStatus(ctx, w, pod, st)
	return 0, false
}

// sandboxIPs returns a sandbox's pod IPs.
func (a *Agent) sandboxIPs(ctx context.Context, sb *runtimeapi.PodSandbox) []string {
	if sb == nil {
		return nil
	}
	if v, ok := a.ipCache.Load(sb.Id); ok {
		return v.([]string)
	}
	st, err := a.rt.PodSandboxStatus(ctx, sb.Id)
	if err != nil || st.GetNetwork() == nil {
		return nil
	}
	var ips []string
	if ip := st.Network.Ip; ip != "" {
		ips = append(ips, ip)
	}
	for _, extra := range st.Network.AdditionalIps {
		ips = append(ips, extra.Ip)
	}
	if len(ips) > 0 || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		a.ipCache.Store(sb.Id, ips)
	}
	return ips
}

// writeStatus writes a pod's status if it changed.
func (a *Agent) writeStatus(ctx context.Context, w *podWorker, pod *corev1.Pod, st corev1.PodStatus) {
	if statusEqual(&pod.Status, &st) {
		return
	}
	if w.lastStatus != nil && w.lastStatusRV == pod.ResourceVersion && statusEqual(w.lastStatus, &st) {
		return // written already; the informer has not caught up
	}
	pods := a.client.CoreV1().Pods(pod.Namespace)
	p := pod.DeepCopy()
	p.Status = st
	_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		fresh, gerr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil || fresh.UID != pod.UID {
			return
		}
		fresh.Status = st
		_, err = pods.UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
	}
	if err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			slog.Warn("writing a pod's status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		return
	}
	w.lastStatus = &st
	w.lastStatusRV = pod.ResourceVersion
}

// networkReady reports whether the runtime can give pods a network.
func (a *Agent) networkReady(ctx context.Context) bool {
	_, ok, _ := a.runtimeConditions(ctx)
	return ok
}

// runPod makes a live pod run: its sandbox, its init containers in order,
// then its containers, restarting them as its restart policy says.
func (a *Agent) runPod(ctx context.Context, w *podWorker, pod *corev1.Pod, state *podState) (time.Duration, bool) {
	a.watched.track(pod)
	runCtx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.cancelRun = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.cancelRun = nil
		w.mu.Unlock()
		cancel()
	}()

	requeue := time.Duration(0)
	want := func(d time.Duration) {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	// Claim volumes first: without them neither the sandbox nor any
	// container starts (the kubelet's wait for volumes).
	mountDelay, mounted := a.mountClaims(runCtx, w, pod, len(state.Containers) == 0)
	want(mountDelay)
	sb := state.current()
	sandboxID, ready := "", false
	if sb != nil && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		sandboxID, ready = sb.Id, true
	}
	attempt := uint32(0)
	if sb != nil {
		attempt = sb.GetMetadata().GetAttempt()
	}
	if !ready {
		switch {
		case sb != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && len(state.Containers) > 0:
			// The sandbox died after containers ran: do not start again.
		case !mounted:
			// Waiting for volumes (mountClaims said why).
		case !pod.Spec.HostNetwork && !a.networkReady(runCtx):
			want(time.Second)
		default:
			key := string(pod.UID)
			if last, ok := a.sandboxBO.LastUpdate(key); ok {
				if in, left := a.sandboxBO.InBackoffSince(key, last); in {
					want(left)
					break
				}
			}
			if sb != nil {
				attempt++
			}
			if err := a.stopSandboxes(runCtx, state); err != nil && runCtx.Err() == nil {
				slog.Warn("stopping an old sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
			a.removeFailedSandboxes(runCtx, pod, state)
			cfg := sandboxConfig(pod, attempt, a.dirs.logs, a.sandboxDNS(pod))
			if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
				slog.Warn("creating a pod's log directory", "err", err)
			}
			id, err := a.rt.RunPodSandbox(runCtx, cfg)
			if err != nil {
				if runCtx.Err() != nil {
					return time.Millisecond, false
				}
				a.sandboxBO.Next(key, a.now())
				delay := a.sandboxBO.Delay(key)
				a.event(pod, nil, false, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", grpcMessage(err))
				slog.Warn("creating a pod sandbox failed", "pod", pod.Namespace+"/"+pod.Name, "retryIn", delay.String(), "err", grpcMessage(err))
				w.sandboxErr = err
				want(delay)
				break
			}
			a.sandboxBO.ForgetPrefix(key)
			w.sandboxErr = nil
			sandboxID, ready = id, true
			var oerr error
			if state, oerr = observe(runCtx, a.rt, &a.statuses, pod.UID); oerr != nil {
				return time.Second, false
			}
		}
	}

	if ready {
		sbCfg := sandboxConfig(pod, attempt, a.dirs.logs, dnsConfig(pod, a.hostDNS, a.clusterDNS()).Config)
		podIPs := a.sandboxIPs(runCtx, state.current())
		if !a.podPoliced(runCtx, pod, podIPs) {
			return time.Second, false
		}
		start := func(c *corev1.Container, latest *containerState, init bool) {
			if !mounted {
				return // waiting for volumes
			}
			want(a.startOrBackoff(runCtx, w, pod, c, latest, state, sandboxID, sbCfg, podIPs, init))
		}
		initDone := true
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			latest := state.latest(c.Name, sandboxID)
			if isSidecar(c) {
				if latest != nil && latest.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
					if msg, grace, failed := a.probeFailure(pod, c, latest); failed {
						a.killContainer(runCtx, pod, c, true, latest.ID, grace, firstIP(podIPs), msg)
						want(time.Millisecond)
						initDone = false
						break
					}
					// The next init container waits for the sidecar's
					// startup probe.
					if started, _ := a.containerHealth(pod.UID)(c, latest.ID); !started {
						initDone = false
						break
					}
					continue
				}
				start(c, latest, true)
				initDone = false
				break
			}
			if latest != nil && latest.State == runtimeapi.ContainerState_CONTAINER_EXITED && latest.ExitCode == 0 {
				continue
			}
			initDone = false
			switch {
			case latest == nil:
				start(c, nil, true)
			case latest.State == runtimeapi.ContainerState_CONTAINER_EXITED:
				if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
					start(c, latest, true)
				}
			case latest.State == runtimeapi.ContainerState_CONTAINER_CREATED:
				a.removeContainer(runCtx, latest)
				start(c, nil, true)
			}
			break
		}
		if initDone {
			for i := range pod.Spec.Containers {
				c := &pod.Spec.Containers[i]
				latest := state.latest(c.Name, sandboxID)
				switch {
				case latest == nil:
					if prev := state.latest(c.Name, ""); prev != nil && prev.State == runtimeapi.ContainerState_CONTAINER_EXITED &&
						!shouldRestart(pod, c, prev.ExitCode) {
						continue
					}
					start(c, nil, false)
				case latest.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
					if msg, grace, failed := a.probeFailure(pod, c, latest); failed {
						a.killContainer(runCtx, pod, c, false, latest.ID, grace, firstIP(podIPs), msg)
						want(time.Millisecond)
					} else if latest.Image != "" && latest.Image != c.Image {
						a.killContainer(runCtx, pod, c, false, latest.ID, rawGracePeriod(pod), firstIP(podIPs),
							fmt.Sprintf("Container %s definition changed, will be restarted", c.Name))
						want(time.Millisecond)
					}
				case latest.State == runtimeapi.ContainerState_CONTAINER_EXITED:
					if shouldRestart(pod, c, latest.ExitCode) {
						start(c, latest, false)
					}
				case latest.State == runtimeapi.ContainerState_CONTAINER_CREATED:
					a.removeContainer(runCtx, latest)
					start(c, nil, false)
				}
			}
		}
		if runCtx.Err() != nil && ctx.Err() == nil {
			return time.Millisecond, false // interrupted by a deletion
		}
		a.refreshVolumes(runCtx, w, pod, podIPs)
		a.gc(runCtx, pod, state, sandboxID)
		var err error
		if state, err = observe(ctx, a.rt, &a.statuses, pod.UID); err != nil {
			return time.Second, false
		}
	}

	_, hostIPs, _ := a.facts()
	in := statusInputs{
		pod: pod, state: state, sandboxID: sandboxID, sandboxReady: ready, hostIPs: hostIPs,
		waiting: w.waiting, runtimeName: a.runtimeName, now: a.now(), health: a.containerHealth(pod.UID),
	}
	if ready {
		in.podIPs = a.sandboxIPs(ctx, state.current())
	}
	a.updateProbes(pod, state, sandboxID, in.podIPs)
	st := computeStatus(in)
	a.writeStatus(ctx, w, pod, st)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		want(time.Millisecond) // stop the sandbox
	}
	return requeue, false
}

func (a *Agent) removeContainer(ctx context.Context, c *containerState) {
	if err := a.rt.RemoveContainer(ctx, c.ID); err != nil && ctx.Err() == nil {
		slog.Warn("removing a container", "id", c.ID, "err", err)
	}
	a.statuses.forget(c.ID)
}

// gc removes exited containers beyond the two newest instances of each
// container, and stopped sandboxes other than the current one.
func (a *Agent) gc(ctx context.Context, pod *corev1.Pod, state *podState, sandboxID string) {
	seen := map[string]int{}
	for _, c := range state.Containers {
		seen[c.Name]++
		if seen[c.Name] > 2 && c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			a.removeContainer(ctx, c)
		}
	}
	for _, s := range state.Sandboxes {
		if s.Id != sandboxID && s.State != runtimeapi.PodSandboxState_SANDBOX_READY && sandboxID != "" {
			if err := a.rt.RemovePodSandbox(ctx, s.Id); err != nil && ctx.Err() == nil {
				slog.Warn("removing an old sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
			a.ipCache.Delete(s.Id)
		}
	}
}

// nextAttempt is the restart count of a container's next instance.
func nextAttempt(pod *corev1.Pod, c *corev1.Container, state *podState, init bool) uint32 {
	if l := state.latest(c.Name, ""); l != nil {
		return l.Attempt + 1
	}
	list := pod.Status.ContainerStatuses
	if init {
		list = pod.Status.InitContainerStatuses
	}
	if prev := findStatus(list, c.Name); prev != nil &&
		(prev.State.Running != nil || prev.State.Terminated != nil || prev.LastTerminationState.Terminated != nil) {
		return uint32(prev.RestartCount) + 1
	}
	return 0
}

// startOrBackoff starts a container unless its last instance failed too
// recently. It returns when to look again.
func (a *Agent) startOrBackoff(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, latest *containerState,
	state *podState, sandboxID string, sbCfg *runtimeapi.PodSandboxConfig, podIPs []string, init bool) time.Duration {
	key := containerKey(pod, c.Name)
	if latest != nil && latest.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		finished := latest.FinishedAt
		if finished.IsZero() {
			finished = latest.CreatedAt
		}
		if in, left := a.crashBO.InBackoffSince(key, finished); in {
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", a.crashBO.Delay(key), c.Name, pod.Name, pod.Namespace, pod.UID)
			if w.waiting[c.Name].Reason != reasonCrashLoopBackOff {
				a.event(pod, c, init, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.Name, pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")")
			}
			w.setWaiting(c.Name, reasonCrashLoopBackOff, msg)
			return left
		}
		a.crashBO.Next(key, finished)
	}
	return a.startContainer(ctx, w, pod, c, state, sandboxID, sbCfg, podIPs, init)
}

// startContainer pulls a container's image if needed, creates and starts
// it. Failures are remembered as the container's waiting state.
func (a *Agent) startContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, state *podState,
	sandboxID string, sbCfg *runtimeapi.PodSandboxConfig, podIPs []string, init bool) time.Duration {
	img, imageRef, requeue, ok := a.ensureImage(ctx, w, pod, c, init, sbCfg)
	if !ok {
		return requeue
	}
	attempt := nextAttempt(pod, c, state, init)
	cfg, err := a.buildContainerConfig(ctx, pod, c, podIPs, attempt, imageRef, img, init, w.claims)
	if err != nil {
		if ctx.Err() != nil {
			return time.Millisecond
		}
		w.setWaiting(c.Name, reasonCreateConfigError, err.Error())
		a.event(pod, c, init, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return 5 * time.Second
	}
	id, err := a.rt.CreateContainer(ctx, sandboxID, cfg, sbCfg)
	if err != nil {
		if ctx.Err() != nil {
			return time.Millisecond
		}
		w.setWaiting(c.Name, reasonCreateError, grpcMessage(err))
		a.event(pod, c, init, corev1.EventTypeWarning, "Failed", "Error: %s", grpcMessage(err))
		return 5 * time.Second
	}
	a.event(pod, c, init, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if err := a.rt.StartContainer(ctx, id); err != nil {
		w.setWaiting(c.Name, reasonRunContainerError, grpcMessage(err))
		a.event(pod, c, init, corev1.EventTypeWarning, "Failed", "Error: %s", grpcMessage(err))
		return time.Second
	}
	delete(w.waiting, c.Name)
	a.event(pod, c, init, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if !a.runPostStart(ctx, w, pod, c, init, id, firstIP(podIPs)) {
		if ctx.Err() != nil {
			return time.Millisecond
		}
		return time.Second
	}
	return 0
}

// ensureImage makes sure a container's image is present as its pull policy
// says, pulling with back-off.
func (a *Agent) ensureImage(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, init bool,
	sbCfg *runtimeapi.PodSandboxConfig) (*runtimeapi.Image, string, time.Duration, bool) {
	img, err := a.rt.ImageStatus(ctx, c.Image)
	if err != nil {
		if ctx.Err() == nil {
			w.setWaiting(c.Name, reasonErrImagePull, grpcMessage(err))
		}
		return nil, "", 2 * time.Second, false
	}
	present := img != nil
	policy := c.ImagePullPolicy
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		if w.waiting[c.Name].Reason != reasonErrImageNeverPull {
			a.event(pod, c, init, corev1.EventTypeWarning, reasonErrImageNeverPull, "%s", msg)
		}
		w.setWaiting(c.Name, reasonErrImageNeverPull, msg)
		return nil, "", 10 * time.Second, false
	case present && policy != corev1.PullAlways:
		a.event(pod, c, init, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
		return img, img.Id, 0, true
	}
	key := pullKey(pod, c)
	if last, ok := a.pullBO.LastUpdate(key); ok {
		if in, left := a.pullBO.InBackoffSince(key, last); in {
			msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
			if w.waiting[c.Name].Reason != reasonImagePullBackOff {
				a.event(pod, c, init, corev1.EventTypeNormal, "BackOff", "%s", msg)
			}
			w.setWaiting(c.Name, reasonImagePullBackOff, msg)
			return nil, "", left, false
		}
	}
	a.event(pod, c, init, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := time.Now()
	pullCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	ref, err := a.rt.PullImage(pullCtx, c.Image, sbCfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", time.Millisecond, false
		}
		a.pullBO.Next(key, a.now())
		msg := grpcMessage(err)
		w.setWaiting(c.Name, reasonErrImagePull, msg)
		a.event(pod, c, init, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", c.Image, msg)
		a.event(pod, c, init, corev1.EventTypeWarning, "Failed", "Error: %s", reasonErrImagePull)
		// Look again soon: the status then says ImagePullBackOff.
		return nil, "", time.Second, false
	}
	a.pullBO.ForgetPrefix(key)
	a.event(pod, c, init, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	img, _ = a.rt.ImageStatus(ctx, c.Image)
	return img, ref, 0, true
}

// buildContainerConfig resolves a container's environment, volumes and
// security into its CRI configuration.
func (a *Agent) buildContainerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs []string, attempt uint32,
	imageRef string, img *runtimeapi.Image, init bool, claims map[string]*volumes.Claim) (*runtimeapi.ContainerConfig, error) {
	m, hostIPs, alloc := a.facts()
	in := envInputs{podIPs: podIPs, hostIPs: hostIPs, nodeName: a.nodeName, allocatable: alloc, objects: a.objects, services: a.services}
	env, warnings, err := resolveEnv(ctx, pod, c, in)
	if err != nil {
		return nil, err
	}
	for _, wmsg := range warnings {
		a.event(pod, c, init, corev1.EventTypeWarning, "InvalidEnvironmentVariableNames", "%s", wmsg)
	}
	dir := podDir(a.dirs.pods, pod)
	vols, err := volumeSetup{dir: dir, objects: a.objects, env: in, mounter: a.mounter, claims: claims}.prepare(ctx, pod)
	if err != nil {
		return nil, err
	}
	termFile := ""
	if c.TerminationMessagePath != "" {
		termFile = filepath.Join(dir, "containers", c.Name, strconv.FormatUint(uint64(attempt), 10))
		if err := os.MkdirAll(filepath.Dir(termFile), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(termFile, nil, 0o666); err != nil {
			return nil, err
		}
		if err := os.Chmod(termFile, 0o666); err != nil {
			return nil, err
		}
	}
	mounts, err := containerMounts(pod, c, mountInputs{volumes: vols, env: env, podDir: dir, noBind: a.mounter == nil, termMsgFile: termFile})
	if err != nil {
		return nil, err
	}
	if imageRef == "" {
		imageRef = c.Image
	}
	return containerConfig(pod, c, containerInputs{
		attempt: attempt, env: env, image: imageRef, imageInfo: img, mounts: mounts, memoryCapacity: m.MemTotal, init: init,
	})
}
