// Package tainttoleration is the TaintToleration plugin: pods must
// tolerate a node's NoSchedule and NoExecute taints (Filter), and prefer
// nodes with fewer untolerated PreferNoSchedule taints (Score).
package tainttoleration

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/plugins/helper"
)

// Name is the plugin's name in configurations.
const Name = "TaintToleration"

const preScoreKey framework.StateKey = "PreScore" + Name

// TaintToleration is the plugin.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin      = TaintToleration{}
	_ framework.PreScorePlugin    = TaintToleration{}
	_ framework.ScorePlugin       = TaintToleration{}
	_ framework.EnqueueExtensions = TaintToleration{}
)

// New returns the plugin.
func New() TaintToleration { return TaintToleration{} }

// Name returns the plugin's name.
func (TaintToleration) Name() string { return Name }

// EventsToRegister: new nodes and changed taints.
func (TaintToleration) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeTaint | framework.UpdateNodeLabel}}
}

// Filter rejects a node with a NoSchedule or NoExecute taint the pod does
// not tolerate, naming the first such taint as upstream does.
func (TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	taints := nodeInfo.Node().Spec.Taints
	if len(taints) == 0 {
		return nil
	}
	taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), taints, pod.Spec.Tolerations, helper.DoNotScheduleTaints, false)
	if !untolerated {
		return nil
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable,
		fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value))
}

type preScoreState struct{ tolerations []corev1.Toleration }

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore keeps the pod's tolerations that may apply to PreferNoSchedule.
func (TaintToleration) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	s := &preScoreState{}
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			s.tolerations = append(s.tolerations, t)
		}
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score counts the node's untolerated PreferNoSchedule taints.
func (TaintToleration) Score(_ context.Context, state *framework.CycleState, _ *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	taints := nodeInfo.Node().Spec.Taints
	if len(taints) == 0 {
		return 0, nil
	}
	d, err := state.Read(preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	tolerations := d.(*preScoreState).tolerations
	var n int64
	for i := range taints {
		t := &nodeInfo.Node().Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, t, false) {
			n++
		}
	}
	return n, nil
}

// ScoreExtensions returns the normalization.
func (p TaintToleration) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore: fewer untolerated taints score higher.
func (TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	return helper.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
}
