package core

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// Values the admission plugins upstream runs on pod creation give a pod.
const (
	DefaultTolerationSeconds = int64(300)
	SystemClusterCritical    = "system-cluster-critical"
	SystemNodeCritical       = "system-node-critical"
)

// SystemPriorityClasses are the built-in priority classes and their values.
var SystemPriorityClasses = map[string]int32{
	SystemClusterCritical: 2000000000,
	SystemNodeCritical:    2000001000,
}

// updatablePodSpecFields is what the pod update error lists as mutable.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

var validPodPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// PodStrategy governs pods.
type PodStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = PodStrategy{}

// Default applies the v1 pod defaults.
func (PodStrategy) Default(obj runtime.Object) { defaultPod(obj.(*corev1.Pod)) }

// PrepareForCreate resets the status to Pending with the pod's QoS class.
// What upstream's admission plugins add to a new pod (service account,
// not-ready/unreachable tolerations, priority) the API server's pod
// admission does, after defaulting.
func (PodStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: QOSClass(pod)}
}

// Validate validates a new pod.
func (PodStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	pod := obj.(*corev1.Pod)
	specPath := field.NewPath("spec")
	errs := validatePodSpec(&pod.Spec, specPath, true)
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	return errs
}

// ValidateUpdate validates the new pod and allows only upstream's mutable
// spec fields to change.
func (PodStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	specPath := field.NewPath("spec")
	errs := validatePodSpec(&pod.Spec, specPath, true)

	if len(pod.Spec.Containers) != len(oldPod.Spec.Containers) {
		return append(errs, field.Forbidden(specPath.Child("containers"), "pod updates may not add or remove containers"))
	}
	if len(pod.Spec.InitContainers) != len(oldPod.Spec.InitContainers) {
		return append(errs, field.Forbidden(specPath.Child("initContainers"), "pod updates may not add or remove containers"))
	}

	adsPath := specPath.Child("activeDeadlineSeconds")
	switch nw, od := pod.Spec.ActiveDeadlineSeconds, oldPod.Spec.ActiveDeadlineSeconds; {
	case nw != nil && (*nw < 0 || *nw > math.MaxInt32):
		return append(errs, field.Invalid(adsPath, *nw, validation.InclusiveRangeError(0, math.MaxInt32)))
	case nw != nil && od != nil && *od < *nw:
		return append(errs, field.Invalid(adsPath, *nw, "must be less than or equal to previous value"))
	case nw == nil && od != nil:
		errs = append(errs, field.Invalid(adsPath, nw, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, oldPod.Spec.Tolerations, specPath.Child("tolerations"))...)

	// Put the mutable fields back to their old values; anything left that
	// differs is a forbidden change.
	munged := *pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = oldPod.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = oldPod.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = oldPod.Spec.ActiveDeadlineSeconds
	munged.Tolerations = oldPod.Spec.Tolerations
	munged.SchedulingGates = oldPod.Spec.SchedulingGates
	if og, ng := oldPod.Spec.TerminationGracePeriodSeconds, munged.TerminationGracePeriodSeconds; og != nil && *og < 0 && ng != nil && *ng == 1 {
		munged.TerminationGracePeriodSeconds = og
	}
	if !equality.Semantic.DeepEqual(munged, oldPod.Spec) {
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n  changed: spec.%s",
			strings.Join(updatablePodSpecFields, ","), strings.Join(changedFields(oldPod.Spec, munged), ", spec."))))
	}
	return errs
}

// validateOnlyAddedTolerations allows new tolerations and changed
// tolerationSeconds, nothing else.
func validateOnlyAddedTolerations(tolerations, oldTolerations []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, old := range oldTolerations {
		found := false
		for _, t := range tolerations {
			o := old
			o.TolerationSeconds = t.TolerationSeconds
			if equality.Semantic.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

// ValidateStatusUpdate validates a write to pods/status.
func (PodStrategy) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	st, p := &pod.Status, field.NewPath("status")
	var errs field.ErrorList
	if st.Phase != "" && !sets.New(validPodPhases...).Has(st.Phase) {
		errs = append(errs, field.NotSupported(p.Child("phase"), st.Phase, validPodPhases))
	}
	if st.QOSClass != "" && oldPod.Status.QOSClass != "" && st.QOSClass != oldPod.Status.QOSClass {
		errs = append(errs, field.Invalid(p.Child("qosClass"), st.QOSClass, immutableErrorMsg))
	}
	if st.NominatedNodeName != "" && st.NominatedNodeName != oldPod.Status.NominatedNodeName {
		errs = append(errs, ValidateDNS1123Subdomain(st.NominatedNodeName, p.Child("nominatedNodeName"))...)
	}
	for i, c := range st.Conditions {
		cp := p.Child("conditions").Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(cp.Child("type"), ""))
		}
		errs = append(errs, validateConditionStatus(c.Status, cp.Child("status"))...)
	}
	errs = append(errs, validateIPList(ipsOf(st.PodIPs), p.Child("podIPs"))...)
	errs = append(errs, validateIPList(hostIPsOf(st.HostIPs), p.Child("hostIPs"))...)
	errs = append(errs, validateContainerStateTransition(st.ContainerStatuses, oldPod.Status.ContainerStatuses, oldPod.Spec.RestartPolicy, p.Child("containerStatuses"))...)
	errs = append(errs, validateContainerStateTransition(st.InitContainerStatuses, oldPod.Status.InitContainerStatuses, corev1.RestartPolicyNever, p.Child("initContainerStatuses"))...)
	for _, list := range []struct {
		name string
		cs   []corev1.ContainerStatus
	}{{"containerStatuses", st.ContainerStatuses}, {"initContainerStatuses", st.InitContainerStatuses}} {
		for i, cs := range list.cs {
			errs = append(errs, ValidateNonnegative(&cs.RestartCount, p.Child(list.name).Index(i).Child("restartCount"))...)
		}
	}
	return errs
}

// validateContainerStateTransition forbids restarting a terminated
// container of a pod that does not restart it.
func validateContainerStateTransition(statuses, oldStatuses []corev1.ContainerStatus, rp corev1.RestartPolicy, fldPath *field.Path) field.ErrorList {
	if rp == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, s := range statuses {
		for _, old := range oldStatuses {
			if old.Name != s.Name || old.State.Terminated == nil || s.State.Terminated != nil {
				continue
			}
			if rp == corev1.RestartPolicyOnFailure && old.State.Terminated.ExitCode != 0 {
				continue
			}
			errs = append(errs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
		}
	}
	return errs
}

func ipsOf(ips []corev1.PodIP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.IP
	}
	return out
}

func hostIPsOf(ips []corev1.HostIP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.IP
	}
	return out
}

// validateIPList checks a list of IPs: each valid, at most one per family.
func validateIPList(ips []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	v4, v6 := 0, 0
	for i, ip := range ips {
		errs = append(errs, ValidateIP(ip, fldPath.Index(i).Child("ip"))...)
		if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() != nil {
			v4++
		} else {
			v6++
		}
	}
	if len(errs) == 0 && (v4 > 1 || v6 > 1) {
		errs = append(errs, field.Invalid(fldPath, ips, "may specify no more than one IP for each IP family"))
	}
	return errs
}

// SelectableFields returns upstream's pod field-selector fields.
// status.podIPs is accepted by upstream's field-label conversion but never
// set, so it only matches the empty value; Havre keeps that.
func (PodStrategy) SelectableFields(obj runtime.Object) fields.Set {
	pod := obj.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             pod.Status.PodIP,
		"status.podIPs":            "",
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	}
}

// QOSClass computes a pod's quality-of-service class from its cpu and
// memory requests and limits: Guaranteed when every container (or the pod
// level, when set) has equal cpu and memory requests and limits, BestEffort
// when nothing is requested or limited, Burstable otherwise.
func QOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	var all []corev1.ResourceRequirements
	if r := pod.Spec.Resources; r != nil && len(r.Requests)+len(r.Limits) > 0 {
		all = []corev1.ResourceRequirements{*r}
	} else {
		for _, c := range pod.Spec.Containers {
			all = append(all, c.Resources)
		}
		for _, c := range pod.Spec.InitContainers {
			all = append(all, c.Resources)
		}
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	for _, r := range all {
		addQOSResources(requests, r.Requests)
		if found := addQOSResources(limits, r.Limits); !found.HasAll(corev1.ResourceCPU, corev1.ResourceMemory) {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			guaranteed = false
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// addQOSResources adds the positive cpu and memory quantities of rl to sum
// and returns which it found.
func addQOSResources(sum, rl corev1.ResourceList) sets.Set[corev1.ResourceName] {
	found := sets.New[corev1.ResourceName]()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		q, ok := rl[name]
		if !ok || q.Sign() <= 0 {
			continue
		}
		found.Insert(name)
		total := sum[name]
		if total.Format == "" {
			total = resource.Quantity{Format: q.Format}
		}
		total.Add(q)
		sum[name] = total
	}
	return found
}
