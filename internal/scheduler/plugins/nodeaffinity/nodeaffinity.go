// Package nodeaffinity is the NodeAffinity plugin: spec.nodeSelector and
// required node affinity (Filter, with the node names of metadata.name
// matchFields as a PreFilter result), and preferred node affinity (Score).
package nodeaffinity

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/plugins/helper"
)

// Name is the plugin's name in configurations.
const Name = "NodeAffinity"

// Upstream's reasons.
const (
	// ErrReasonPod: the node matches neither the selector nor the affinity.
	ErrReasonPod = "node(s) didn't match Pod's node affinity/selector"
	// ErrReasonConflict: the terms' node names exclude each other.
	ErrReasonConflict = "pod affinity terms conflict"
)

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

// NodeAffinity is the plugin.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin   = NodeAffinity{}
	_ framework.FilterPlugin      = NodeAffinity{}
	_ framework.PreScorePlugin    = NodeAffinity{}
	_ framework.ScorePlugin       = NodeAffinity{}
	_ framework.EnqueueExtensions = NodeAffinity{}
)

// New returns the plugin.
func New() NodeAffinity { return NodeAffinity{} }

// Name returns the plugin's name.
func (NodeAffinity) Name() string { return Name }

// EventsToRegister: new nodes and changed labels.
func (NodeAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel | framework.UpdateNodeTaint}}
}

type preFilterState struct {
	required nodeaffinity.RequiredNodeAffinity
}

func (s *preFilterState) Clone() framework.StateData { return s }

func requiredTerms(pod *corev1.Pod) []corev1.NodeSelectorTerm {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
}

func hasRequired(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
}

// PreFilter parses the selector and affinity; when every term names its
// nodes with metadata.name In, only those nodes are filtered.
func (NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	if !hasRequired(pod) && len(pod.Spec.NodeSelector) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(preFilterKey, &preFilterState{required: nodeaffinity.GetRequiredNodeAffinity(pod)})
	terms := requiredTerms(pod)
	if len(terms) == 0 {
		return nil, nil
	}
	var names sets.Set[string]
	for _, t := range terms {
		var termNames sets.Set[string]
		for _, r := range t.MatchFields {
			if r.Key == metav1.ObjectNameField && r.Operator == corev1.NodeSelectorOpIn {
				s := sets.New(r.Values...)
				if termNames == nil {
					termNames = s
				} else {
					termNames = termNames.Intersection(s)
				}
			}
		}
		if termNames == nil {
			return nil, nil // this term allows every node; terms are ORed
		}
		names = names.Union(termNames)
	}
	if len(names) == 0 {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonConflict)
	}
	return &framework.PreFilterResult{NodeNames: names}, nil
}

// PreFilterExtensions: adding or removing pods changes nothing.
func (NodeAffinity) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter rejects nodes the pod's nodeSelector or required affinity does
// not match.
func (NodeAffinity) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	var required nodeaffinity.RequiredNodeAffinity
	if d, err := state.Read(preFilterKey); err == nil {
		required = d.(*preFilterState).required
	} else {
		required = nodeaffinity.GetRequiredNodeAffinity(pod)
	}
	if ok, _ := required.Match(nodeInfo.Node()); !ok {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonPod)
	}
	return nil
}

type preScoreState struct {
	preferred *nodeaffinity.PreferredSchedulingTerms
}

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore parses the preferred terms; without any, Score is skipped.
func (NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return framework.AsStatus(err)
	}
	state.Write(preScoreKey, &preScoreState{preferred: terms})
	return nil
}

// Score sums the weights of the preferred terms the node matches.
func (NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	d, err := state.Read(preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	return d.(*preScoreState).preferred.Score(nodeInfo.Node()), nil
}

// ScoreExtensions returns the normalization.
func (p NodeAffinity) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore scales scores to [0, 100].
func (NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	return helper.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
}
