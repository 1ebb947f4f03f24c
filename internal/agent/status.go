package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// waitingState is why a container is not running, when the runtime cannot
// tell (image pulls, configuration errors, back-off).
type waitingState struct {
	Reason  string
	Message string
}

// Waiting reasons, as the kubelet reports them.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonErrImagePull      = "ErrImagePull"
	reasonImagePullBackOff  = "ImagePullBackOff"
	reasonErrImageNeverPull = "ErrImageNeverPull"
	reasonCreateConfigError = "CreateContainerConfigError"
	reasonCreateError       = "CreateContainerError"
	reasonRunContainerError = "RunContainerError"
)

// statusInputs is everything a pod's status is computed from.
type statusInputs struct {
	pod   *corev1.Pod
	state *podState
	// sandboxID is the current sandbox ("" when none); sandboxReady says
	// whether it runs with its network set up.
	sandboxID    string
	sandboxReady bool
	podIPs       []string
	hostIPs      []string
	waiting      map[string]waitingState
	runtimeName  string
	now          time.Time
	// terminating: the pod is being deleted and everything was stopped;
	// the phase becomes terminal.
	terminating bool
	// health gives the started and ready fields of a running container
	// instance (from its probes); nil: both true.
	health func(c *corev1.Container, id string) (started, ready bool)
}

// mtime is a metav1.Time at the API's (second) precision, so that computed
// statuses compare equal to the stored ones.
func mtime(t time.Time) metav1.Time {
	return metav1.NewTime(t.Truncate(time.Second))
}

// computeStatus returns the pod's status: phase, conditions, IPs and
// container statuses, keeping from the old status what the agent does not
// own.
func computeStatus(in statusInputs) corev1.PodStatus {
	pod := in.pod
	old := pod.Status
	s := corev1.PodStatus{
		NominatedNodeName:     old.NominatedNodeName,
		QOSClass:              qosClass(pod),
		Resize:                old.Resize,
		ResourceClaimStatuses: old.ResourceClaimStatuses,
		Reason:                old.Reason,
		Message:               old.Message,
	}
	s.StartTime = old.StartTime
	if s.StartTime == nil {
		t := mtime(in.now)
		s.StartTime = &t
	}
	for _, ip := range in.hostIPs {
		s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
	}
	if len(in.hostIPs) > 0 {
		s.HostIP = in.hostIPs[0]
	}
	podIPs := in.podIPs
	if pod.Spec.HostNetwork {
		podIPs = in.hostIPs
	}
	if in.sandboxID == "" && !in.terminating {
		podIPs = nil
	}
	if len(podIPs) == 0 && in.terminating {
		// Keep the IPs a terminating pod had.
		for _, ip := range old.PodIPs {
			podIPs = append(podIPs, ip.IP)
		}
	}
	for _, ip := range podIPs {
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(podIPs) > 0 {
		s.PodIP = podIPs[0]
	}

	initDone := initContainersDone(pod, in.state, in.sandboxID)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s.InitContainerStatuses = append(s.InitContainerStatuses,
			containerStatus(c, in, findStatus(old.InitContainerStatuses, c.Name), reasonPodInitializing))
	}
	defaultWaiting := reasonContainerCreating
	if !initDone {
		defaultWaiting = reasonPodInitializing
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s.ContainerStatuses = append(s.ContainerStatuses,
			containerStatus(c, in, findStatus(old.ContainerStatuses, c.Name), defaultWaiting))
	}

	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses)
	if in.terminating && s.Phase != corev1.PodSucceeded && s.Phase != corev1.PodFailed {
		s.Phase = corev1.PodFailed
		if allSucceeded(s.ContainerStatuses) {
			s.Phase = corev1.PodSucceeded
		}
	}
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		s.Phase = old.Phase // terminal phases are final
	}
	s.Conditions = podConditions(pod, s, in, initDone)
	return s
}

func allSucceeded(statuses []corev1.ContainerStatus) bool {
	for _, cs := range statuses {
		t := cs.State.Terminated
		if t == nil || t.ExitCode != 0 {
			return false
		}
	}
	return true
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// isSidecar reports whether an init container keeps running beside the
// regular ones (restartPolicy Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// initContainersDone reports whether every init container has done its part
// in the current sandbox: regular ones exited 0, sidecars started.
func initContainersDone(pod *corev1.Pod, state *podState, sandboxID string) bool {
	if sandboxID == "" {
		return len(pod.Spec.InitContainers) == 0
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l := state.latest(c.Name, sandboxID)
		if l == nil {
			return false
		}
		if isSidecar(c) {
			if l.State != runtimeapi.ContainerState_CONTAINER_RUNNING && l.StartedAt.IsZero() {
				return false
			}
			continue
		}
		if l.State != runtimeapi.ContainerState_CONTAINER_EXITED || l.ExitCode != 0 {
			return false
		}
	}
	return true
}

func terminated(c *containerState, runtimeName string) *corev1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = "Error"
		if c.ExitCode == 0 {
			reason = "Completed"
		}
	}
	t := &corev1.ContainerStateTerminated{
		ExitCode:    c.ExitCode,
		Reason:      reason,
		Message:     c.Message,
		ContainerID: runtimeName + "://" + c.ID,
	}
	if !c.StartedAt.IsZero() {
		t.StartedAt = mtime(c.StartedAt)
	}
	if !c.FinishedAt.IsZero() {
		t.FinishedAt = mtime(c.FinishedAt)
	}
	return t
}

// containerStatus is the status of one container from its instances (newest
// first, across sandboxes), what the agent remembers of it, and its
// previous status (for what the runtime forgot).
func containerStatus(c *corev1.Container, in statusInputs, prev *corev1.ContainerStatus, defaultWaiting string) corev1.ContainerStatus {
	insts := in.state.instances(c.Name, "")
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(false)}
	w, hasWaiting := in.waiting[c.Name]
	if len(insts) == 0 {
		if prev != nil {
			cs.RestartCount = prev.RestartCount
			cs.LastTerminationState = prev.LastTerminationState
			if prev.State.Terminated != nil {
				cs.LastTerminationState = corev1.ContainerState{Terminated: prev.State.Terminated}
			}
			cs.ImageID = prev.ImageID
		}
		if in.terminating {
			if prev != nil && prev.State.Terminated != nil {
				cs.State = prev.State
				cs.LastTerminationState = prev.LastTerminationState
				return cs
			}
			if prev != nil && prev.State.Running != nil {
				// It ran and is gone: report it as the kubelet does.
				cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
					Message: "The container could not be located when the pod was terminated"}
				return cs
			}
		}
		if hasWaiting {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: defaultWaiting}
		}
		return cs
	}
	latest := insts[0]
	cs.ContainerID = in.runtimeName + "://" + latest.ID
	cs.ImageID = latest.ImageRef
	cs.RestartCount = int32(latest.Attempt)
	var previous *corev1.ContainerStateTerminated
	if len(insts) > 1 && insts[1].State == runtimeapi.ContainerState_CONTAINER_EXITED {
		previous = terminated(insts[1], in.runtimeName)
	} else if prev != nil && prev.LastTerminationState.Terminated != nil && latest.Attempt > 0 {
		previous = prev.LastTerminationState.Terminated
	}
	switch latest.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(latest.StartedAt)}
		started, ready := true, true
		if in.health != nil {
			started, ready = in.health(c, latest.ID)
		}
		cs.Started = new(started)
		cs.Ready = ready && !in.terminating
		cs.LastTerminationState.Terminated = previous
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		term := terminated(latest, in.runtimeName)
		if hasWaiting && !in.terminating {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
			cs.LastTerminationState.Terminated = term
		} else {
			cs.State.Terminated = term
			cs.LastTerminationState.Terminated = previous
		}
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		reason := waitingState{Reason: reasonContainerCreating}
		if hasWaiting {
			reason = w
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason.Reason, Message: reason.Message}
		cs.LastTerminationState.Terminated = previous
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerStatusUnknown", Message: "The container state is unknown to the runtime"}
		cs.LastTerminationState.Terminated = previous
	}
	return cs
}

// podPhase computes the phase from the container statuses, as the
// kubelet's getPhase does.
func podPhase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus) corev1.PodPhase {
	pendingInit, failedInit := 0, 0
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := findStatus(initStatuses, c.Name)
		if isSidecar(c) {
			if st == nil || st.Started == nil || !*st.Started {
				pendingInit++
			}
			continue
		}
		switch {
		case st == nil:
			pendingInit++
		case st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			if st.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case st.State.Waiting != nil:
			if t := st.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for i := range pod.Spec.Containers {
		st := findStatus(statuses, pod.Spec.Containers[i].Name)
		switch {
		case st == nil:
			unknown++
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case st.State.Waiting != nil:
			if st.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0 || failedInit > 0:
		return corev1.PodPending
	case waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	default:
		return corev1.PodPending
	}
}

// Conditions the agent owns.
var ownedConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

func podConditions(pod *corev1.Pod, s corev1.PodStatus, in statusInputs, initDone bool) []corev1.PodCondition {
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	var conds []corev1.PodCondition
	add := func(t corev1.PodConditionType, ok bool, reason, message string) {
		st := corev1.ConditionFalse
		if ok {
			st = corev1.ConditionTrue
			reason, message = "", ""
		}
		conds = append(conds, corev1.PodCondition{Type: t, Status: st, Reason: reason, Message: message})
	}
	add(corev1.PodReadyToStartContainers, in.sandboxReady && !terminal && !in.terminating, "", "")

	var incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := findStatus(s.InitContainerStatuses, c.Name)
		done := st != nil && (isSidecar(c) && st.Started != nil && *st.Started ||
			!isSidecar(c) && st.State.Terminated != nil && st.State.Terminated.ExitCode == 0)
		if !done {
			incomplete = append(incomplete, c.Name)
		}
	}
	initialized := initDone || len(incomplete) == 0 || oldCondition(pod, corev1.PodInitialized) && terminal
	if terminal && s.Phase == corev1.PodSucceeded {
		initialized = true
	}
	initMsg := ""
	if len(incomplete) > 0 {
		initMsg = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))
	}
	add(corev1.PodInitialized, initialized, "ContainersNotInitialized", initMsg)

	var unready []string
	for _, cs := range s.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if st := findStatus(s.InitContainerStatuses, c.Name); isSidecar(c) && (st == nil || !st.Ready) {
			unready = append(unready, c.Name)
		}
	}
	sort.Strings(unready)
	reason, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		reason = "PodCompleted"
		msg = ""
	}
	ready := len(unready) == 0 && !terminal && initialized
	add(corev1.ContainersReady, ready, reason, msg)

	// Readiness gates: Ready needs every gate's condition True.
	var gatesMissing []string
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				found = true
			}
		}
		if !found {
			gatesMissing = append(gatesMissing, string(g.ConditionType))
		}
	}
	podReady := ready && len(gatesMissing) == 0
	if ready && len(gatesMissing) > 0 {
		reason, msg = "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", gatesMissing[0])
	}
	add(corev1.PodReady, podReady, reason, msg)
	add(corev1.PodScheduled, true, "", "")

	// Keep transition times of unchanged conditions and the conditions
	// others own.
	for i := range conds {
		conds[i].LastTransitionTime = mtime(in.now)
		for _, o := range pod.Status.Conditions {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
				conds[i].LastProbeTime = o.LastProbeTime
			}
		}
	}
	for _, o := range pod.Status.Conditions {
		if !ownedConditions[o.Type] {
			conds = append(conds, o)
		}
	}
	return conds
}

func oldCondition(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// statusEqual reports whether writing s over old would change nothing.
func statusEqual(old, s *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(old, s)
}
