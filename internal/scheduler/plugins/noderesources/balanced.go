package noderesources

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// BalancedAllocationName is the balanced-allocation plugin's name.
const BalancedAllocationName = "NodeResourcesBalancedAllocation"

// BalancedAllocation prefers nodes where the pod leaves the requested
// shares of CPU and memory close to each other.
type BalancedAllocation struct {
	resources []corev1.ResourceName
}

var (
	_ framework.PreScorePlugin = (*BalancedAllocation)(nil)
	_ framework.ScorePlugin    = (*BalancedAllocation)(nil)
)

// NewBalancedAllocation returns the plugin over CPU and memory.
func NewBalancedAllocation() *BalancedAllocation {
	return &BalancedAllocation{resources: []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}}
}

// Name returns the plugin's name.
func (*BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore computes the pod's requests once (shared with the fit plugin's
// key when it ran).
func (*BalancedAllocation) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	if _, err := state.Read(preScoreKey); err != nil {
		state.Write(preScoreKey, newScoreRequests(state, pod))
	}
	return nil
}

// Score is (1 - standard deviation of the requested shares) * 100.
func (b *BalancedAllocation) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	req := readScoreRequests(state, pod)
	fractions := make([]float64, 0, len(b.resources))
	for _, r := range b.resources {
		alloc, used := allocatableAndRequested(r, nodeInfo, req)
		if alloc == 0 {
			continue
		}
		fractions = append(fractions, min(1, float64(used)/float64(alloc)))
	}
	var std float64
	switch n := len(fractions); {
	case n == 2:
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	case n > 2:
		var mean, variance float64
		for _, f := range fractions {
			mean += f
		}
		mean /= float64(n)
		for _, f := range fractions {
			variance += (f - mean) * (f - mean)
		}
		std = math.Sqrt(variance / float64(n))
	}
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}

// ScoreExtensions: scores are already in [0, 100].
func (*BalancedAllocation) ScoreExtensions() framework.ScoreExtensions { return nil }
