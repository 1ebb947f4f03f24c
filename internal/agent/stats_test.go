package agent

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func ctrStat(uid, pod, name, id string, ts time.Time, cpuNs, workingSet uint64) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Labels: map[string]string{labelPodUID: uid, labelPodName: pod, labelPodNamespace: "ns", labelManagedBy: managedBy}},
		Cpu:    &runtimeapi.CpuUsage{Timestamp: ts.UnixNano(), UsageCoreNanoSeconds: u64(cpuNs)},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts.UnixNano(), WorkingSetBytes: u64(workingSet), UsageBytes: u64(workingSet + 100), RssBytes: u64(workingSet / 2)},
	}
}

func TestCollectStats(t *testing.T) {
	rt := newFakeRuntime()
	a := &Agent{rt: rt}
	ts := time.Unix(1000, 0)
	rt.sandboxStatsErr = status.Error(codes.Unimplemented, "no")
	rt.ctrStats = []*runtimeapi.ContainerStats{
		ctrStat("u1", "web", "app", "c1", ts, 1e9, 10<<20),
		ctrStat("u1", "web", "side", "c2", ts, 2e9, 5<<20),
		ctrStat("u2", "db", "db", "c3", ts, 0, 1<<20),
	}
	if err := a.collectStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats := a.Stats()
	if len(stats) != 2 || stats[0].Name != "db" || stats[1].Name != "web" || len(stats[1].Containers) != 2 {
		t.Fatalf("stats %+v", stats)
	}
	web := stats[1]
	if web.Memory.WorkingSetBytes != 15<<20 || web.CPU.UsageCoreNanoSeconds != 3e9 || web.CPU.UsageNanoCores != 0 || !web.Time.Equal(ts) {
		t.Errorf("pod totals from containers: %+v", web)
	}
	if !a.stats.noSandboxStats {
		t.Error("an Unimplemented ListPodSandboxStats is asked again")
	}

	// A second sample gives rates: app used half a core over 2 s.
	rt.ctrStats = []*runtimeapi.ContainerStats{
		ctrStat("u1", "web", "app", "c1", ts.Add(2*time.Second), 2e9, 12<<20),
		ctrStat("u1", "web", "side", "c2", ts.Add(2*time.Second), 2e9, 5<<20),
	}
	if err := a.collectStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats = a.Stats()
	if len(stats) != 1 {
		t.Fatalf("stats after the db pod went: %+v", stats)
	}
	app := stats[0].Containers[0]
	if app.Name != "app" || app.CPU.UsageNanoCores != 5e8 || app.Memory.WorkingSetBytes != 12<<20 || app.Memory.RSSBytes != 6<<20 {
		t.Errorf("app %+v", app)
	}
	if stats[0].CPU.UsageNanoCores != 5e8 {
		t.Errorf("pod CPU %+v", stats[0].CPU)
	}

	// With sandbox stats, the pod's figures are its cgroup's; a runtime's
	// own rate is kept.
	a = &Agent{rt: rt}
	rt.sandboxStatsErr = nil
	rt.sandboxStats = []*runtimeapi.PodSandboxStats{{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb1", Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"},
			Labels: map[string]string{labelPodUID: "u1"}},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:    &runtimeapi.CpuUsage{Timestamp: ts.UnixNano(), UsageCoreNanoSeconds: u64(9e9), UsageNanoCores: u64(7e8)},
			Memory: &runtimeapi.MemoryUsage{Timestamp: ts.UnixNano(), WorkingSetBytes: u64(40 << 20)},
		},
	}}
	if err := a.collectStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats = a.Stats()
	if len(stats) != 1 || stats[0].CPU.UsageNanoCores != 7e8 || stats[0].Memory.WorkingSetBytes != 40<<20 || len(stats[0].Containers) != 2 {
		t.Errorf("stats with sandbox stats %+v", stats)
	}
	// A sandbox figure missing is the containers' sum.
	rt.sandboxStats[0].Linux.Memory = nil
	if err := a.collectStats(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats()[0]; got.Memory.WorkingSetBytes != 17<<20 || got.CPU.UsageCoreNanoSeconds != 9e9 {
		t.Errorf("pod figures without sandbox memory: %+v", got)
	}
	// Stats returns copies.
	stats[0].Containers[0].Name = "changed"
	if a.Stats()[0].Containers[0].Name != "app" {
		t.Error("Stats shares its slices")
	}
}
