package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rl(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func podWith(containers ...corev1.ResourceRequirements) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u"}}
	for _, r := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c", Resources: r})
	}
	return p
}

func TestQOS(t *testing.T) {
	const memCap = 8 << 30
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		qos      corev1.PodQOSClass
		cgroup   string
		oom      int64
		shares   int64
		quota    int64
		memLimit int64
	}{
		{name: "best effort", pod: podWith(corev1.ResourceRequirements{}), qos: corev1.PodQOSBestEffort,
			cgroup: "havre/besteffort/podu", oom: 1000, shares: 2},
		{name: "guaranteed", pod: podWith(corev1.ResourceRequirements{Limits: rl("cpu", "500m", "memory", "1Gi"), Requests: rl("cpu", "500m", "memory", "1Gi")}),
			qos: corev1.PodQOSGuaranteed, cgroup: "havre/podu", oom: 0, shares: 512, quota: 50000, memLimit: 1 << 30},
		{name: "burstable with a request", pod: podWith(corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "4Gi")}),
			qos: corev1.PodQOSBurstable, cgroup: "havre/burstable/podu", oom: 500, shares: 102},
		{name: "burstable with a limit only on cpu", pod: podWith(corev1.ResourceRequirements{Limits: rl("cpu", "2")}),
			qos: corev1.PodQOSBurstable, cgroup: "havre/burstable/podu", oom: 999, shares: 2048, quota: 200000},
		{name: "burstable request near capacity stays above guaranteed", pod: podWith(corev1.ResourceRequirements{Requests: rl("memory", "8Gi")}),
			qos: corev1.PodQOSBurstable, cgroup: "havre/burstable/podu", oom: 2, shares: 2},
		{name: "tiny cpu limit has the minimum quota", pod: podWith(corev1.ResourceRequirements{Limits: rl("cpu", "1m", "memory", "10Mi"), Requests: rl("cpu", "1m", "memory", "10Mi")}),
			qos: corev1.PodQOSGuaranteed, cgroup: "havre/podu", oom: 0, shares: 2, quota: 1000, memLimit: 10 << 20},
		{name: "one container without limits makes it burstable",
			pod: podWith(corev1.ResourceRequirements{Limits: rl("cpu", "1", "memory", "1Gi"), Requests: rl("cpu", "1", "memory", "1Gi")}, corev1.ResourceRequirements{}),
			qos: corev1.PodQOSBurstable, cgroup: "havre/burstable/podu", oom: 1000 - 1000*(1<<30)/memCap, shares: 1024, quota: 100000, memLimit: 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := computeQOS(tc.pod); got != tc.qos {
				t.Fatalf("QoS %s, want %s", got, tc.qos)
			}
			if got := podCgroupParent(tc.pod); got != tc.cgroup {
				t.Errorf("cgroup parent %s, want %s", got, tc.cgroup)
			}
			c := &tc.pod.Spec.Containers[0]
			r := containerResources(tc.pod, c, memCap)
			if r.OomScoreAdj != tc.oom || r.CpuShares != tc.shares || r.CpuQuota != tc.quota || r.MemoryLimitInBytes != tc.memLimit {
				t.Errorf("resources oom=%d shares=%d quota=%d mem=%d; want %d %d %d %d",
					r.OomScoreAdj, r.CpuShares, r.CpuQuota, r.MemoryLimitInBytes, tc.oom, tc.shares, tc.quota, tc.memLimit)
			}
			if tc.quota > 0 && r.CpuPeriod != quotaPeriod {
				t.Errorf("cpu period %d", r.CpuPeriod)
			}
			if r.OomScoreAdj < 0 {
				t.Error("negative OOM score adjustment")
			}
		})
	}
	// The API server's class wins.
	p := podWith(corev1.ResourceRequirements{})
	p.Status.QOSClass = corev1.PodQOSBurstable
	if qosClass(p) != corev1.PodQOSBurstable {
		t.Error("status QoS class ignored")
	}
}
