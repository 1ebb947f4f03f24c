// Package defaultbinder is the DefaultBinder plugin: it binds a pod to
// its node through the pods/binding subresource.
package defaultbinder

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "DefaultBinder"

// DefaultBinder is the plugin.
type DefaultBinder struct {
	handle framework.Handle
}

var _ framework.BindPlugin = (*DefaultBinder)(nil)

// New returns the plugin.
func New(h framework.Handle) *DefaultBinder { return &DefaultBinder{handle: h} }

// Name returns the plugin's name.
func (*DefaultBinder) Name() string { return Name }

// Bind posts a Binding of the pod (UID-checked) to the node.
func (b *DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	if err := b.handle.ClientSet().CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return framework.AsStatus(err)
	}
	return nil
}
