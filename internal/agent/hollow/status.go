package hollow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Exit codes reported for containers stopped by a deletion: a hollow
// container does not handle SIGTERM and is killed.
const (
	killedExitCode = 137
	reasonError    = "Error"
	reasonDone     = "Completed"
)

// ownedConditions are the pod conditions the kubelet owns.
var ownedConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

// containerMode is what a pod's containers do.
type containerMode int

const (
	modeRunning   containerMode = iota // running and ready
	modeExited                         // exited for good: the pod is terminal
	modeCrashLoop                      // exited and waiting to restart
)

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// exitCode returns the code AnnotationExitCode asks for.
func exitCode(pod *corev1.Pod) (int32, bool) {
	v, ok := pod.Annotations[AnnotationExitCode]
	if !ok {
		return 0, false
	}
	code, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(code), true
}

// mode applies the pod's restart policy to the exit code it asks for, as
// the kubelet does to an exited container.
func mode(pod *corev1.Pod) (containerMode, int32) {
	code, ok := exitCode(pod)
	if !ok {
		return modeRunning, 0
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return modeExited, code
	case corev1.RestartPolicyOnFailure:
		if code == 0 {
			return modeExited, 0
		}
	}
	return modeCrashLoop, code
}

func containerID(pod *corev1.Pod, name string) string {
	sum := sha256.Sum256([]byte(string(pod.UID) + "/" + name))
	return RuntimeName + "://" + hex.EncodeToString(sum[:])
}

func exitReason(code int32) string {
	if code == 0 {
		return reasonDone
	}
	return reasonError
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// baseStatus is what every status keeps from the old one, with the
// addresses and the start time.
func baseStatus(pod *corev1.Pod, hostIP string, ip netip.Addr, now time.Time) corev1.PodStatus {
	old := pod.Status
	s := corev1.PodStatus{
		ObservedGeneration:                   old.ObservedGeneration,
		NominatedNodeName:                    old.NominatedNodeName,
		QOSClass:                             old.QOSClass,
		Reason:                               old.Reason,
		Message:                              old.Message,
		Resize:                               old.Resize,
		ResourceClaimStatuses:                old.ResourceClaimStatuses,
		ExtendedResourceClaimStatus:          old.ExtendedResourceClaimStatus,
		NodeAllocatableResourceClaimStatuses: old.NodeAllocatableResourceClaimStatuses,
		StartTime:                            old.StartTime,
		HostIP:                               hostIP,
		HostIPs:                              []corev1.HostIP{{IP: hostIP}},
	}
	if s.StartTime == nil {
		t := metav1.NewTime(now.Truncate(time.Second))
		s.StartTime = &t
	}
	if ip.IsValid() {
		s.PodIP = ip.String()
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	return s
}

// runningStatus is the status of a pod whose containers started: running
// and ready, or exited as AnnotationExitCode asks.
func runningStatus(pod *corev1.Pod, hostIP string, ip netip.Addr, now time.Time) corev1.PodStatus {
	s := baseStatus(pod, hostIP, ip, now)
	start := *s.StartTime
	m, code := mode(pod)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c.Name), Started: new(false)}
		switch {
		case isSidecar(c) && m == modeExited:
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: reasonDone, StartedAt: start, FinishedAt: start, ContainerID: cs.ContainerID}
		case isSidecar(c):
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: start}
			cs.Ready, cs.Started = true, new(true)
		default:
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: reasonDone, StartedAt: start, FinishedAt: start, ContainerID: cs.ContainerID}
			cs.Ready = true
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c.Name), Started: new(false)}
		term := &corev1.ContainerStateTerminated{ExitCode: code, Reason: exitReason(code), StartedAt: start, FinishedAt: start, ContainerID: cs.ContainerID}
		switch m {
		case modeRunning:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: start}
			cs.Ready, cs.Started = true, new(true)
		case modeExited:
			cs.State.Terminated = term
		case modeCrashLoop:
			cs.RestartCount = 1
			cs.LastTerminationState.Terminated = term
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off 10s restarting failed container=%s pod=%s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)}
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	s.Phase = corev1.PodRunning
	if m == modeExited {
		s.Phase = corev1.PodSucceeded
		if code != 0 {
			s.Phase = corev1.PodFailed
		}
	}
	s.Conditions = podConditions(pod, &s, now)
	return s
}

// terminatedStatus is the final status of a pod being deleted: every
// container that had not exited was killed.
func terminatedStatus(pod *corev1.Pod, now time.Time) corev1.PodStatus {
	hostIP := pod.Status.HostIP
	ip, _ := netip.ParseAddr(pod.Status.PodIP)
	s := baseStatus(pod, hostIP, ip, now)
	if hostIP == "" {
		s.HostIP, s.HostIPs = "", nil
	}
	at := metav1.NewTime(now.Truncate(time.Second))
	kill := func(c *corev1.Container, prev *corev1.ContainerStatus) corev1.ContainerStatus {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod, c.Name), Started: new(false)}
		switch {
		case prev != nil && prev.State.Terminated != nil:
			cs = *prev.DeepCopy()
			cs.Ready, cs.Started = false, new(false)
		case prev != nil && prev.State.Running != nil:
			cs.RestartCount = prev.RestartCount
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: killedExitCode, Reason: reasonError,
				StartedAt: prev.State.Running.StartedAt, FinishedAt: at, ContainerID: cs.ContainerID}
		default:
			if prev != nil {
				cs.RestartCount = prev.RestartCount
				cs.LastTerminationState = prev.LastTerminationState
			}
			cs.ContainerID = ""
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: killedExitCode, Reason: "ContainerStatusUnknown",
				Message: "The container could not be located when the pod was terminated"}
		}
		return cs
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s.InitContainerStatuses = append(s.InitContainerStatuses, kill(c, findStatus(pod.Status.InitContainerStatuses, c.Name)))
	}
	s.Phase = corev1.PodSucceeded
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := kill(c, findStatus(pod.Status.ContainerStatuses, c.Name))
		if cs.State.Terminated.ExitCode != 0 {
			s.Phase = corev1.PodFailed
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	s.Conditions = podConditions(pod, &s, now)
	return s
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// podConditions are the kubelet's conditions for s; transition and probe
// times of unchanged conditions, and the conditions others own, are kept.
func podConditions(pod *corev1.Pod, s *corev1.PodStatus, now time.Time) []corev1.PodCondition {
	done := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	var conds []corev1.PodCondition
	add := func(t corev1.PodConditionType, ok bool, reason, message string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
		if !ok {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, message
		}
		conds = append(conds, c)
	}
	var unready []string
	for _, cs := range s.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if cs := findStatus(s.InitContainerStatuses, c.Name); isSidecar(c) && (cs == nil || !cs.Ready) {
			unready = append(unready, c.Name)
		}
	}
	sort.Strings(unready)
	ready := len(unready) == 0 && !done
	reason, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if done {
		reason, msg = "PodCompleted", ""
	}
	var missing []string
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, string(g.ConditionType))
		}
	}
	podReason, podMsg := reason, msg
	if ready && len(missing) > 0 {
		podReason, podMsg = "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", missing[0])
	}
	add(corev1.PodReadyToStartContainers, !done && pod.DeletionTimestamp == nil, "", "")
	add(corev1.PodInitialized, true, "", "")
	add(corev1.PodReady, ready && len(missing) == 0, podReason, podMsg)
	add(corev1.ContainersReady, ready, reason, msg)
	add(corev1.PodScheduled, true, "", "")
	t := metav1.NewTime(now.Truncate(time.Second))
	for i := range conds {
		conds[i].LastTransitionTime = t
		for _, o := range pod.Status.Conditions {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime, conds[i].LastProbeTime = o.LastTransitionTime, o.LastProbeTime
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

// statusEqual reports whether writing s over old would change nothing.
func statusEqual(old, s *corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(old, s)
}
