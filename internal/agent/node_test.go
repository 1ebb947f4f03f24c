package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeStatusChanged(t *testing.T) {
	base := corev1.NodeStatus{
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)}},
	}
	hb := base.DeepCopy()
	hb.Conditions[0].LastHeartbeatTime = metav1.NewTime(t0.Add(time.Minute))
	if nodeStatusChanged(base, *hb) {
		t.Error("a new heartbeat time counts as a change")
	}
	notReady := base.DeepCopy()
	notReady.Conditions[0].Status = corev1.ConditionFalse
	if !nodeStatusChanged(base, *notReady) {
		t.Error("a condition change is not a change")
	}
	moreCPU := base.DeepCopy()
	moreCPU.Capacity[corev1.ResourceCPU] = resource.MustParse("4")
	if !nodeStatusChanged(base, *moreCPU) {
		t.Error("a capacity change is not a change")
	}
}

func TestAllocatable(t *testing.T) {
	a := &Agent{dirs: newLayout(t.TempDir())}
	alloc := a.computeAllocatable(machineInfo{CPUs: 4, MemTotal: 1 << 30})
	if alloc.Cpu().Value() != 4 || alloc.Memory().Value() != 1<<30-evictionMemory || alloc.Pods().Value() != maxPods {
		t.Errorf("allocatable %v", alloc)
	}
	capacity := a.capacity(machineInfo{CPUs: 4, MemTotal: 1 << 30})
	if eph := alloc.StorageEphemeral().Value(); eph <= 0 || eph >= capacity.StorageEphemeral().Value() {
		t.Errorf("ephemeral storage allocatable %d of %d", eph, capacity.StorageEphemeral().Value())
	}
}
