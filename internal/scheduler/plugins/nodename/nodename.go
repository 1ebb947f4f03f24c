// Package nodename is the NodeName filter: a pod naming a node fits only
// there.
package nodename

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "NodeName"

// ErrReason is upstream's reason for a node other than the requested one.
const ErrReason = "node(s) didn't match the requested node name"

// NodeName is the plugin.
type NodeName struct{}

var (
	_ framework.FilterPlugin      = NodeName{}
	_ framework.EnqueueExtensions = NodeName{}
)

// New returns the plugin.
func New() NodeName { return NodeName{} }

// Name returns the plugin's name.
func (NodeName) Name() string { return Name }

// EventsToRegister: a new node may be the named one.
func (NodeName) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add}}
}

// Filter rejects nodes other than the pod's spec.nodeName.
func (NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if !Fits(pod, nodeInfo) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
	}
	return nil
}

// Fits reports whether the pod names no node or this one.
func Fits(pod *corev1.Pod, nodeInfo *framework.NodeInfo) bool {
	return pod.Spec.NodeName == "" || pod.Spec.NodeName == nodeInfo.Node().Name
}
