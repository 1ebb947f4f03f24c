package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validNode() *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24",
			Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
		},
	}
	NodeStrategy{}.Default(n)
	return n
}

func TestNode(t *testing.T) {
	s := NodeStrategy{}
	n := validNode()
	if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != "10.244.1.0/24" || n.Status.Allocatable.Cpu().String() != "4" {
		t.Errorf("defaults: %+v", n)
	}
	checkErrors(t, s.Validate(ctx, n))

	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Node)
		want   []want
	}{
		{"bad CIDR", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0/33"} }, []want{{"spec.podCIDRs[0]", field.ErrorTypeInvalid}}},
		{"two IPv4 CIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0/24", "10.244.2.0/24"} },
			[]want{{"spec.podCIDRs", field.ErrorTypeInvalid}}},
		{"bad taint effect", func(n *corev1.Node) { n.Spec.Taints[0].Effect = "Evict" }, []want{{"spec.taints[0].effect", field.ErrorTypeNotSupported}}},
		{"no taint effect", func(n *corev1.Node) { n.Spec.Taints[0].Effect = "" }, []want{{"spec.taints[0].effect", field.ErrorTypeRequired}}},
		{"duplicate taint", func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, n.Spec.Taints[0]) },
			[]want{{"spec.taints[1]", field.ErrorTypeDuplicate}}},
		{"bad taint key", func(n *corev1.Node) { n.Spec.Taints[0].Key = "a b" }, []want{{"spec.taints[0].key", field.ErrorTypeInvalid}}},
		{"negative capacity", func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("-1") },
			[]want{{"status.capacity[cpu]", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := validNode()
			tc.mutate(node)
			checkErrors(t, s.Validate(ctx, node), tc.want...)
		})
	}

	upd := validNode()
	upd.Spec.PodCIDR, upd.Spec.PodCIDRs = "", []string{"10.244.9.0/24"}
	checkErrors(t, s.ValidateUpdate(ctx, upd, n), want{"spec.podCIDRs", field.ErrorTypeForbidden})
	unset := validNode()
	unset.Spec.PodCIDR, unset.Spec.PodCIDRs = "", nil
	checkErrors(t, s.ValidateUpdate(ctx, n, unset))

	if got := s.SelectableFields(n); len(got) != 1 || got["spec.unschedulable"] != "false" {
		t.Errorf("fields = %v", got)
	}
}
