// Package testutil builds nodes, pods and a plugin Handle over a fixed set
// of node infos for the scheduler's unit tests.
package testutil

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Node returns a node with the given allocatable CPU, memory and pods,
// and labels (key, value pairs), including its hostname label.
func Node(name, cpu, memory string, pods int64, labels ...string) *corev1.Node {
	l := map[string]string{corev1.LabelHostname: name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	alloc := corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}
	if cpu != "" {
		alloc[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		alloc[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Status: corev1.NodeStatus{Capacity: alloc, Allocatable: alloc}}
}

// Pod returns a pod in namespace "default" with one container requesting
// cpu and memory (empty: none), and labels (key, value pairs).
func Pod(name, cpu, memory string, labels ...string) *corev1.Pod {
	var l map[string]string
	if len(labels) > 0 {
		l = map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
	}
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		req[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: l},
		Spec: corev1.PodSpec{SchedulerName: corev1.DefaultSchedulerName,
			Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: req}}}},
	}
}

// OnNode returns pod assigned to node.
func OnNode(pod *corev1.Pod, node string) *corev1.Pod {
	pod.Spec.NodeName = node
	return pod
}

// WithPriority sets the pod's priority.
func WithPriority(pod *corev1.Pod, p int32) *corev1.Pod {
	pod.Spec.Priority = &p
	return pod
}

// NodeInfos builds node infos of nodes with the pods assigned to them.
func NodeInfos(nodes []*corev1.Node, pods []*corev1.Pod) []*framework.NodeInfo {
	var out []*framework.NodeInfo
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		for _, p := range pods {
			if p.Spec.NodeName == n.Name {
				ni.AddPod(p)
			}
		}
		out = append(out, ni)
	}
	return out
}

// Lister serves fixed node infos.
type Lister []*framework.NodeInfo

// NodeInfos returns the lister.
func (l Lister) NodeInfos() framework.NodeInfoLister { return l }

// List lists the node infos.
func (l Lister) List() []*framework.NodeInfo { return l }

// HavePodsWithAffinityList lists nodes with pods with affinity terms.
func (l Lister) HavePodsWithAffinityList() []*framework.NodeInfo {
	var out []*framework.NodeInfo
	for _, n := range l {
		if len(n.PodsWithAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// HavePodsWithRequiredAntiAffinityList lists nodes with pods with
// required anti-affinity terms.
func (l Lister) HavePodsWithRequiredAntiAffinityList() []*framework.NodeInfo {
	var out []*framework.NodeInfo
	for _, n := range l {
		if len(n.PodsWithRequiredAntiAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// Get returns a node info by name.
func (l Lister) Get(name string) (*framework.NodeInfo, error) {
	for _, n := range l {
		if n.Node().Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("node %q not found", name)
}

// Handle is a framework.Handle over a Lister; Filters run the given
// plugins.
type Handle struct {
	Lister    Lister
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  events.EventRecorder
	Filters   []framework.FilterPlugin
	PreFilter []framework.PreFilterPlugin
	Nominated map[string][]*framework.PodInfo
}

var _ framework.Handle = (*Handle)(nil)

// SnapshotSharedLister returns the lister.
func (h *Handle) SnapshotSharedLister() framework.SharedLister { return h.Lister }

// ClientSet returns the client.
func (h *Handle) ClientSet() kubernetes.Interface { return h.Client }

// SharedInformerFactory returns the informers, possibly nil.
func (h *Handle) SharedInformerFactory() informers.SharedInformerFactory { return h.Informers }

// EventRecorder returns the recorder.
func (h *Handle) EventRecorder() events.EventRecorder { return h.Recorder }

// Parallelizer runs inline.
func (h *Handle) Parallelizer() framework.Parallelizer { return framework.NewParallelizer(1) }

// NominatedPodsForNode returns the nominated pods.
func (h *Handle) NominatedPodsForNode(name string) []*framework.PodInfo { return h.Nominated[name] }

// RunFilterPluginsWithNominatedPods runs the Filters.
func (h *Handle) RunFilterPluginsWithNominatedPods(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	for _, f := range h.Filters {
		if state.SkipFilterPlugins.Has(f.Name()) {
			continue
		}
		if st := f.Filter(ctx, state, pod, ni); !st.IsSuccess() {
			return st.WithPlugin(f.Name())
		}
	}
	return nil
}

// RunPreFilterExtensionAddPod runs the PreFilters' AddPod.
func (h *Handle) RunPreFilterExtensionAddPod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, pi *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	for _, p := range h.PreFilter {
		if ext := p.PreFilterExtensions(); ext != nil {
			if st := ext.AddPod(ctx, state, pod, pi, ni); !st.IsSuccess() {
				return st
			}
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod runs the PreFilters' RemovePod.
func (h *Handle) RunPreFilterExtensionRemovePod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, pi *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	for _, p := range h.PreFilter {
		if ext := p.PreFilterExtensions(); ext != nil {
			if st := ext.RemovePod(ctx, state, pod, pi, ni); !st.IsSuccess() {
				return st
			}
		}
	}
	return nil
}
