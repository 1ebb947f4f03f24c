package agent

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupRoot is where pod cgroups live, relative to the agent's own cgroup
// in each hierarchy (runc resolves relative paths that way): pods stay
// inside whatever the agent itself is confined to.
const cgroupRoot = "havre"

// CPU shares and CFS period, as the kubelet computes them.
const (
	minShares     = 2
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	quotaPeriod   = 100000 // µs
	minQuota      = 1000
)

// qosClass is the pod's QoS class: the one the API server recorded, else
// computed.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return computeQOS(pod)
}

// computeQOS computes a pod's QoS class from its containers' cpu and memory
// requests and limits.
func computeQOS(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[name]; ok && !q.IsZero() {
				sum := requests[name]
				sum.Add(q)
				requests[name] = sum
			}
			q, ok := c.Resources.Limits[name]
			if ok && !q.IsZero() {
				sum := limits[name]
				sum.Add(q)
				limits[name] = sum
			} else {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// podCgroupParent is the cgroup (relative to the agent's) a pod's
// containers go under.
func podCgroupParent(pod *corev1.Pod) string {
	switch qosClass(pod) {
	case corev1.PodQOSGuaranteed:
		return path.Join(cgroupRoot, "pod"+string(pod.UID))
	case corev1.PodQOSBurstable:
		return path.Join(cgroupRoot, "burstable", "pod"+string(pod.UID))
	default:
		return path.Join(cgroupRoot, "besteffort", "pod"+string(pod.UID))
	}
}

// oomScoreAdj is the OOM score adjustment of a container, as the kubelet
// computes it, except that it is never negative: the agent may lack
// CAP_SYS_RESOURCE, and a guaranteed pod gets 0 rather than -997.
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) int64 {
	switch qosClass(pod) {
	case corev1.PodQOSGuaranteed:
		return 0
	case corev1.PodQOSBestEffort:
		return 1000
	}
	req := c.Resources.Requests.Memory().Value()
	if memoryCapacity <= 0 {
		return 999
	}
	adj := 1000 - (1000*req)/memoryCapacity
	// Burstable containers stay above guaranteed ones and below best
	// effort ones.
	return max(2, min(adj, 999))
}

// milliCPUToShares converts a CPU request into cgroup v1 shares.
func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return minShares
	}
	return max(milli*sharesPerCPU/milliCPUToCPU, minShares)
}

// milliCPUToQuota converts a CPU limit into a CFS quota for quotaPeriod.
func milliCPUToQuota(milli int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*quotaPeriod/milliCPUToCPU, minQuota)
}

// containerResources is the CRI resources of a container.
func containerResources(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq := c.Resources.Requests.Cpu()
	cpuLim := c.Resources.Limits.Cpu()
	req := cpuReq.MilliValue()
	if req == 0 && !cpuLim.IsZero() {
		req = cpuLim.MilliValue()
	}
	r.CpuShares = milliCPUToShares(req)
	if !cpuLim.IsZero() {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = milliCPUToQuota(cpuLim.MilliValue())
	}
	if mem := c.Resources.Limits.Memory(); !mem.IsZero() {
		r.MemoryLimitInBytes = mem.Value()
	}
	r.OomScoreAdj = oomScoreAdj(pod, c, memoryCapacity)
	return r
}

// resourceValue reads a resource of a container for resourceFieldRef:
// limits fall back to the node's allocatable when unset.
func resourceValue(c *corev1.Container, res string, allocatable corev1.ResourceList) (resource.Quantity, bool) {
	get := func(l corev1.ResourceList, n corev1.ResourceName) (resource.Quantity, bool) {
		q, ok := l[n]
		return q, ok && !q.IsZero()
	}
	switch res {
	case "limits.cpu", "limits.memory", "limits.ephemeral-storage":
		n := corev1.ResourceName(res[len("limits."):])
		if q, ok := get(c.Resources.Limits, n); ok {
			return q, true
		}
		q, ok := allocatable[n]
		return q, ok
	case "requests.cpu", "requests.memory", "requests.ephemeral-storage":
		n := corev1.ResourceName(res[len("requests."):])
		if q, ok := get(c.Resources.Requests, n); ok {
			return q, true
		}
		if n == corev1.ResourceCPU || n == corev1.ResourceEphemeralStorage || n == corev1.ResourceMemory {
			return resource.Quantity{}, true // an unset request reads as 0
		}
	}
	return resource.Quantity{}, false
}
