// Package nodeunschedulable is the NodeUnschedulable filter: cordoned
// nodes (spec.unschedulable) take only pods tolerating
// node.kubernetes.io/unschedulable:NoSchedule.
package nodeunschedulable

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "NodeUnschedulable"

// ErrReasonUnschedulable is upstream's reason for a cordoned node.
const ErrReasonUnschedulable = "node(s) were unschedulable"

// NodeUnschedulable is the plugin.
type NodeUnschedulable struct{}

var (
	_ framework.FilterPlugin      = NodeUnschedulable{}
	_ framework.EnqueueExtensions = NodeUnschedulable{}
)

// New returns the plugin.
func New() NodeUnschedulable { return NodeUnschedulable{} }

// Name returns the plugin's name.
func (NodeUnschedulable) Name() string { return Name }

// EventsToRegister: a new or uncordoned node.
func (NodeUnschedulable) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeSpecUnschedulable | framework.UpdateNodeTaint}}
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Filter rejects cordoned nodes unless the pod tolerates them.
func (NodeUnschedulable) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if !nodeInfo.Node().Spec.Unschedulable {
		return nil
	}
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].ToleratesTaint(klog.Background(), &unschedulableTaint, false) {
			return nil
		}
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonUnschedulable)
}
