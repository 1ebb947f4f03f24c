package agent

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsInterval is how often resource usage is sampled from the runtime
// (the kubelet's housekeeping is 10 s).
const statsInterval = 10 * time.Second

// PodStats is a pod's resource usage at its last sample.
type PodStats struct {
	UID       types.UID
	Namespace string
	Name      string
	// Time is when the runtime took the sample.
	Time time.Time
	// CPU and Memory are the pod's as a whole (its cgroup, or the sum of
	// its containers' when the runtime has no sandbox stats).
	CPU        CPUStats
	Memory     MemoryStats
	Containers []ContainerStats
	// Volumes are the pod's claim volumes, sampled every minute, sorted
	// by name.
	Volumes []VolumeStats
}

// ContainerStats is a running container's resource usage at its last
// sample.
type ContainerStats struct {
	Name   string
	ID     string
	Time   time.Time
	CPU    CPUStats
	Memory MemoryStats
}

// CPUStats is CPU usage, as the kubelet's summary API reports it.
type CPUStats struct {
	// UsageNanoCores is the usage over the last sample window, in
	// billionths of a core (from the runtime, else computed from two
	// samples; 0 until there are two).
	UsageNanoCores uint64
	// UsageCoreNanoSeconds is the cumulative usage, summed over the cores.
	UsageCoreNanoSeconds uint64
}

// MemoryStats is memory usage, in bytes.
type MemoryStats struct {
	// WorkingSetBytes is what the kubelet evicts and OOM-ranks on: usage
	// less inactive file pages.
	WorkingSetBytes uint64
	UsageBytes      uint64
	RSSBytes        uint64
}

// statsCollector keeps the last samples.
type statsCollector struct {
	mu   sync.RWMutex
	pods map[types.UID]*PodStats
	// prev is the last cumulative CPU sample of each container and
	// sandbox, for usage rates the runtime did not compute.
	prev map[string]cpuSample
	// noSandboxStats is set once the runtime said it has no
	// ListPodSandboxStats.
	noSandboxStats bool
	// volumes are the pods' volume samples (volumes_stats.go).
	volumes map[types.UID][]VolumeStats
}

type cpuSample struct {
	at    int64 // ns
	usage uint64
}

// Stats returns the resource usage of the pods the agent runs, as last
// sampled (every 10 s), sorted by namespace and name.
func (a *Agent) Stats() []PodStats {
	a.stats.mu.RLock()
	defer a.stats.mu.RUnlock()
	out := make([]PodStats, 0, len(a.stats.pods))
	for _, p := range a.stats.pods {
		c := *p
		c.Containers = append([]ContainerStats(nil), p.Containers...)
		c.Volumes = append([]VolumeStats(nil), a.stats.volumes[p.UID]...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// statsLoop samples resource usage every statsInterval until ctx is done.
func (a *Agent) statsLoop(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		if err := a.collectStats(ctx); err != nil && ctx.Err() == nil {
			slog.Debug("sampling resource usage", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collectStats takes one sample of every pod's and container's usage.
func (a *Agent) collectStats(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sel := map[string]string{labelManagedBy: managedBy}
	containers, err := a.rt.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{LabelSelector: sel})
	if err != nil {
		return err
	}
	a.stats.mu.RLock()
	trySandboxes := !a.stats.noSandboxStats
	a.stats.mu.RUnlock()
	var sandboxes []*runtimeapi.PodSandboxStats
	if trySandboxes {
		sandboxes, err = a.rt.ListPodSandboxStats(ctx, &runtimeapi.PodSandboxStatsFilter{LabelSelector: sel})
		if status.Code(err) == codes.Unimplemented {
			a.stats.mu.Lock()
			a.stats.noSandboxStats = true
			a.stats.mu.Unlock()
		}
		if err != nil {
			sandboxes = nil
		}
	}

	a.stats.mu.Lock()
	defer a.stats.mu.Unlock()
	prev := a.stats.prev
	next := map[string]cpuSample{}
	rate := func(id string, cpu *runtimeapi.CpuUsage) CPUStats {
		var s CPUStats
		if cpu == nil {
			return s
		}
		s.UsageCoreNanoSeconds = cpu.GetUsageCoreNanoSeconds().GetValue()
		s.UsageNanoCores = cpu.GetUsageNanoCores().GetValue()
		if cpu.UsageCoreNanoSeconds != nil && cpu.Timestamp > 0 {
			cur := cpuSample{at: cpu.Timestamp, usage: s.UsageCoreNanoSeconds}
			next[id] = cur
			if p, ok := prev[id]; ok && s.UsageNanoCores == 0 && cur.at > p.at && cur.usage >= p.usage {
				s.UsageNanoCores = uint64(float64(cur.usage-p.usage) / float64(cur.at-p.at) * 1e9)
			}
		}
		return s
	}

	pods := map[types.UID]*PodStats{}
	for _, sb := range sandboxes {
		attr := sb.GetAttributes()
		uid := types.UID(attr.GetLabels()[labelPodUID])
		if uid == "" {
			continue
		}
		p := &PodStats{UID: uid, Namespace: attr.GetMetadata().GetNamespace(), Name: attr.GetMetadata().GetName()}
		if l := sb.GetLinux(); l != nil {
			p.CPU = rate("sandbox/"+attr.GetId(), l.GetCpu())
			p.Memory = memoryStats(l.GetMemory())
			p.Time = sampleTime(l.GetCpu().GetTimestamp(), l.GetMemory().GetTimestamp())
		}
		pods[uid] = p
	}
	fromContainers := map[types.UID]bool{}
	for _, c := range containers {
		attr := c.GetAttributes()
		labels := attr.GetLabels()
		uid := types.UID(labels[labelPodUID])
		if uid == "" || c.GetCpu() == nil && c.GetMemory() == nil {
			continue
		}
		p := pods[uid]
		if p == nil {
			p = &PodStats{UID: uid, Namespace: labels[labelPodNamespace], Name: labels[labelPodName]}
			pods[uid] = p
			fromContainers[uid] = true
		}
		cs := ContainerStats{
			Name: attr.GetMetadata().GetName(), ID: attr.GetId(),
			Time: sampleTime(c.GetCpu().GetTimestamp(), c.GetMemory().GetTimestamp()),
			CPU:  rate(attr.GetId(), c.GetCpu()), Memory: memoryStats(c.GetMemory()),
		}
		// Of several instances of a container, the newest sample wins.
		replaced := false
		for i := range p.Containers {
			if p.Containers[i].Name == cs.Name {
				if cs.Time.After(p.Containers[i].Time) {
					p.Containers[i] = cs
				}
				replaced = true
			}
		}
		if !replaced {
			p.Containers = append(p.Containers, cs)
		}
	}
	// Pods without sandbox stats, or whose sandbox stats lack a figure
	// (containerd 1.6 on cgroup v1 reports no pod memory), get the sums
	// of their containers'.
	for uid, p := range pods {
		all := fromContainers[uid]
		var cpu CPUStats
		var mem MemoryStats
		for _, c := range p.Containers {
			cpu.UsageNanoCores += c.CPU.UsageNanoCores
			cpu.UsageCoreNanoSeconds += c.CPU.UsageCoreNanoSeconds
			mem.WorkingSetBytes += c.Memory.WorkingSetBytes
			mem.UsageBytes += c.Memory.UsageBytes
			mem.RSSBytes += c.Memory.RSSBytes
			if all && c.Time.After(p.Time) {
				p.Time = c.Time
			}
		}
		if all || p.CPU.UsageCoreNanoSeconds == 0 {
			p.CPU = cpu
		}
		if all || p.Memory.WorkingSetBytes == 0 {
			p.Memory = mem
		}
	}
	for _, p := range pods {
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
	}
	a.stats.pods, a.stats.prev = pods, next
	return nil
}

func memoryStats(m *runtimeapi.MemoryUsage) MemoryStats {
	return MemoryStats{
		WorkingSetBytes: m.GetWorkingSetBytes().GetValue(),
		UsageBytes:      m.GetUsageBytes().GetValue(),
		RSSBytes:        m.GetRssBytes().GetValue(),
	}
}

// sampleTime is the later of two sample timestamps (ns).
func sampleTime(a, b int64) time.Time {
	ts := max(a, b)
	if ts <= 0 {
		return time.Time{}
	}
	return time.Unix(0, ts)
}
