// Package nodeports is the NodePorts filter: a pod's host ports must be
// free on the node.
package nodeports

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "NodePorts"

// ErrReason is upstream's reason for a port in use.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

const preFilterKey framework.StateKey = "PreFilter" + Name

// NodePorts is the plugin.
type NodePorts struct{}

var (
	_ framework.PreFilterPlugin   = NodePorts{}
	_ framework.FilterPlugin      = NodePorts{}
	_ framework.EnqueueExtensions = NodePorts{}
)

// New returns the plugin.
func New() NodePorts { return NodePorts{} }

// Name returns the plugin's name.
func (NodePorts) Name() string { return Name }

// EventsToRegister: pods leaving free ports, new nodes.
func (NodePorts) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.Pod, ActionType: framework.Delete},
		{Resource: framework.Node, ActionType: framework.Add},
	}
}

type preFilterState []corev1.ContainerPort

func (s preFilterState) Clone() framework.StateData { return s }

// HostPorts lists the pod's container ports with a host port.
func HostPorts(pod *corev1.Pod) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				out = append(out, p)
			}
		}
	}
	return out
}

// PreFilter collects the host ports; without any, Filter is skipped.
func (NodePorts) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	ports := HostPorts(pod)
	if len(ports) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(preFilterKey, preFilterState(ports))
	return nil, nil
}

// PreFilterExtensions: the node info's ports are up to date.
func (NodePorts) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter rejects a node where one of the ports is taken.
func (NodePorts) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	var ports []corev1.ContainerPort
	if d, err := state.Read(preFilterKey); err == nil {
		ports = d.(preFilterState)
	} else {
		ports = HostPorts(pod)
	}
	for _, p := range ports {
		if nodeInfo.UsedPorts.CheckConflict(p.HostIP, string(p.Protocol), p.HostPort) {
			return framework.NewStatus(framework.Unschedulable, ErrReason)
		}
	}
	return nil
}
