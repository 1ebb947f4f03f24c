// Package noderesources holds the NodeResourcesFit plugin (a pod's
// requests against a node's allocatable, including the pod count, and the
// LeastAllocated or MostAllocated score) and
// NodeResourcesBalancedAllocation (prefer nodes whose CPU and memory use
// stay balanced).
package noderesources

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// FitName is the fit plugin's name in configurations.
const FitName = "NodeResourcesFit"

// ScoringStrategyType names how the fit plugin scores nodes.
type ScoringStrategyType string

// The strategies.
const (
	// LeastAllocated favours the emptiest nodes: pods spread (the default).
	LeastAllocated ScoringStrategyType = "LeastAllocated"
	// MostAllocated favours the fullest nodes: pods are packed.
	MostAllocated ScoringStrategyType = "MostAllocated"
)

// ResourceSpec is a resource scored, with its weight.
type ResourceSpec struct {
	Name   corev1.ResourceName `json:"name"`
	Weight int64               `json:"weight"`
}

// ScoringStrategy is the fit plugin's scoring.
type ScoringStrategy struct {
	Type      ScoringStrategyType `json:"type"`
	Resources []ResourceSpec      `json:"resources,omitempty"`
}

// FitArgs are the fit plugin's arguments (pluginConfig NodeResourcesFit).
type FitArgs struct {
	ScoringStrategy *ScoringStrategy `json:"scoringStrategy,omitempty"`
	// IgnoredResources are not checked by Filter.
	IgnoredResources []string `json:"ignoredResources,omitempty"`
}

// DefaultResources are scored when a strategy names none: CPU and memory,
// weight 1 each.
var DefaultResources = []ResourceSpec{{Name: corev1.ResourceCPU, Weight: 1}, {Name: corev1.ResourceMemory, Weight: 1}}

// Validate checks the arguments, upstream's way.
func (a *FitArgs) Validate() error {
	if a.ScoringStrategy == nil {
		return nil
	}
	switch a.ScoringStrategy.Type {
	case LeastAllocated, MostAllocated:
	case "":
		return fmt.Errorf("scoringStrategy.type: Required value")
	default:
		return fmt.Errorf("scoringStrategy.type: Unsupported value: %q: supported values: %q, %q", a.ScoringStrategy.Type, LeastAllocated, MostAllocated)
	}
	for i, r := range a.ScoringStrategy.Resources {
		if r.Name == "" {
			return fmt.Errorf("scoringStrategy.resources[%d].name: Required value", i)
		}
		if r.Weight <= 0 || r.Weight > 100 {
			return fmt.Errorf("scoringStrategy.resources[%d].weight: Invalid value: %d: resource weight of %s should be in the range [1, 100]", i, r.Weight, r.Name)
		}
	}
	return nil
}

// Fit is the NodeResourcesFit plugin.
type Fit struct {
	strategy  ScoringStrategyType
	resources []ResourceSpec
	ignored   map[corev1.ResourceName]bool
}

var (
	_ framework.PreFilterPlugin   = (*Fit)(nil)
	_ framework.FilterPlugin      = (*Fit)(nil)
	_ framework.PreScorePlugin    = (*Fit)(nil)
	_ framework.ScorePlugin       = (*Fit)(nil)
	_ framework.EnqueueExtensions = (*Fit)(nil)
)

// NewFit returns the plugin; nil args mean LeastAllocated on CPU and
// memory.
func NewFit(args *FitArgs) (*Fit, error) {
	f := &Fit{strategy: LeastAllocated, resources: DefaultResources, ignored: map[corev1.ResourceName]bool{}}
	if args == nil {
		return f, nil
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	if s := args.ScoringStrategy; s != nil {
		f.strategy = s.Type
		if len(s.Resources) > 0 {
			f.resources = s.Resources
		}
	}
	for _, r := range args.IgnoredResources {
		f.ignored[corev1.ResourceName(r)] = true
	}
	return f, nil
}

// Name returns the plugin's name.
func (*Fit) Name() string { return FitName }

// Strategy returns the scoring strategy in use.
func (f *Fit) Strategy() ScoringStrategyType { return f.strategy }

// EventsToRegister: pods leaving or shrinking, nodes added or growing.
func (*Fit) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.Pod, ActionType: framework.Delete | framework.UpdatePodScaleDown},
		{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable | framework.UpdateNodeTaint | framework.UpdateNodeLabel},
	}
}

const (
	preFilterKey framework.StateKey = "PreFilter" + FitName
	preScoreKey  framework.StateKey = "PreScore" + FitName
)

type podRequests struct{ framework.Resource }

func (s *podRequests) Clone() framework.StateData { return s }

// PreFilter computes the pod's requests once.
func (*Fit) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	state.Write(preFilterKey, &podRequests{framework.PodInfoOf(state, pod).Requests})
	return nil, nil
}

// PreFilterExtensions: the node info's sums are up to date.
func (*Fit) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// InsufficientResource is one resource the node lacks.
type InsufficientResource struct {
	Name   corev1.ResourceName
	Reason string
	// Unresolvable: the pod asks more than the node's whole allocatable,
	// so preempting pods cannot help.
	Unresolvable bool
}

// Filter rejects a node without room for the pod's requests or pod count.
func (f *Fit) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	var req *framework.Resource
	if state != nil && state.PodInfo != nil && state.PodInfo.Pod.UID == pod.UID {
		req = &state.PodInfo.Requests // the hot path: no state lookup
	} else if d, err := state.Read(preFilterKey); err == nil {
		req = &d.(*podRequests).Resource
	} else {
		req = &framework.NewPodInfo(pod).Requests
	}
	insufficient := f.Fits(req, nodeInfo)
	if len(insufficient) == 0 {
		return nil
	}
	code := framework.Unschedulable
	reasons := make([]string, 0, len(insufficient))
	for _, r := range insufficient {
		reasons = append(reasons, r.Reason)
		if r.Unresolvable {
			code = framework.UnschedulableAndUnresolvable
		}
	}
	return framework.NewStatus(code, reasons...)
}

// Fits lists what the node lacks for a pod requesting req.
func (f *Fit) Fits(req *framework.Resource, n *framework.NodeInfo) []InsufficientResource {
	var out []InsufficientResource
	if len(n.Pods)+1 > n.Allocatable.AllowedPodNumber {
		out = append(out, InsufficientResource{Name: corev1.ResourcePods, Reason: "Too many pods",
			Unresolvable: n.Allocatable.AllowedPodNumber < 1})
	}
	check := func(name corev1.ResourceName, want, alloc, used int64) {
		if want == 0 || f.ignored[name] {
			return
		}
		if want > alloc-used {
			out = append(out, InsufficientResource{Name: name, Reason: "Insufficient " + string(name), Unresolvable: want > alloc})
		}
	}
	check(corev1.ResourceCPU, req.MilliCPU, n.Allocatable.MilliCPU, n.Requested.MilliCPU)
	check(corev1.ResourceMemory, req.Memory, n.Allocatable.Memory, n.Requested.Memory)
	check(corev1.ResourceEphemeralStorage, req.EphemeralStorage, n.Allocatable.EphemeralStorage, n.Requested.EphemeralStorage)
	for name, want := range req.ScalarResources {
		check(name, want, n.Allocatable.ScalarResources[name], n.Requested.ScalarResources[name])
	}
	return out
}

// PreScore computes the requests scores count (with defaults for unset
// CPU and memory).
func (*Fit) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	state.Write(preScoreKey, newScoreRequests(state, pod))
	return nil
}

// scoreRequests are a pod's requests as scoring counts them.
type scoreRequests struct{ nonZero, actual *framework.Resource }

func (s *scoreRequests) Clone() framework.StateData { return s }

func newScoreRequests(state *framework.CycleState, pod *corev1.Pod) *scoreRequests {
	pi := framework.PodInfoOf(state, pod)
	return &scoreRequests{nonZero: &pi.NonZeroRequests, actual: &pi.Requests}
}

// readScoreRequests returns the pod's requests for scoring: from the
// cycle's PodInfo (no lookup on the hot path), PreScore's state, or
// derived.
func readScoreRequests(state *framework.CycleState, pod *corev1.Pod) scoreRequests {
	if state != nil && state.PodInfo != nil && state.PodInfo.Pod.UID == pod.UID {
		return scoreRequests{nonZero: &state.PodInfo.NonZeroRequests, actual: &state.PodInfo.Requests}
	}
	if d, err := state.Read(preScoreKey); err == nil {
		return *d.(*scoreRequests)
	}
	return *newScoreRequests(state, pod)
}

// allocatableAndRequested returns a resource's allocatable on the node and
// what would be requested with the pod there.
func allocatableAndRequested(name corev1.ResourceName, n *framework.NodeInfo, pod scoreRequests) (int64, int64) {
	switch name {
	case corev1.ResourceCPU:
		return n.Allocatable.MilliCPU, n.NonZeroRequested.MilliCPU + pod.nonZero.MilliCPU
	case corev1.ResourceMemory:
		return n.Allocatable.Memory, n.NonZeroRequested.Memory + pod.nonZero.Memory
	}
	return n.Allocatable.Get(name), n.Requested.Get(name) + pod.actual.Get(name)
}

// Score rates the node by the strategy: the weighted mean over resources
// of the free share (LeastAllocated) or the used share (MostAllocated).
func (f *Fit) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	req := readScoreRequests(state, pod)
	var sum, weights int64
	for _, r := range f.resources {
		alloc, used := allocatableAndRequested(r.Name, nodeInfo, req)
		if alloc == 0 {
			continue
		}
		weights += r.Weight
		sum += r.Weight * strategyScore(f.strategy, used, alloc)
	}
	if weights == 0 {
		return 0, nil
	}
	return sum / weights, nil
}

func strategyScore(s ScoringStrategyType, used, alloc int64) int64 {
	if s == MostAllocated {
		if used > alloc {
			return framework.MaxNodeScore
		}
		return used * framework.MaxNodeScore / alloc
	}
	if used > alloc {
		return 0
	}
	return (alloc - used) * framework.MaxNodeScore / alloc
}

// ScoreExtensions: scores are already in [0, 100].
func (*Fit) ScoreExtensions() framework.ScoreExtensions { return nil }
