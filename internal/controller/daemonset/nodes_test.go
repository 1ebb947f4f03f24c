package daemonset

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeAffinityFor(t *testing.T) {
	zoneTerm := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{
		Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"},
	}}}
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: zoneTerm}}
	for _, tc := range []struct {
		name string
		in   *corev1.Affinity
	}{
		{"none", nil},
		{"pod affinity only", &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}}},
		{"preferred only", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred}}},
		{"required replaced", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution:  &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{zoneTerm}},
			PreferredDuringSchedulingIgnoredDuringExecution: preferred,
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Affinity: nodeAffinityFor(tc.in.DeepCopy(), "n7")}}
			terms := pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			if len(terms) != 1 || len(terms[0].MatchExpressions) != 0 {
				t.Fatalf("terms %+v, want the one metadata.name term", terms)
			}
			if node, err := targetNode(pod); err != nil || node != "n7" {
				t.Errorf("targetNode = %q, %v", node, err)
			}
			if tc.in != nil && tc.in.NodeAffinity != nil && len(tc.in.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 &&
				len(pod.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
				t.Error("preferred terms were dropped")
			}
			if tc.in != nil && tc.in.PodAffinity != nil && pod.Spec.Affinity.PodAffinity == nil {
				t.Error("pod affinity was dropped")
			}
		})
	}
}

func TestTargetNode(t *testing.T) {
	bound := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}}
	if n, err := targetNode(bound); err != nil || n != "n1" {
		t.Errorf("bound pod: %q, %v", n, err)
	}
	ambiguous := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
		}}},
	}}}}
	if _, err := targetNode(ambiguous); err == nil {
		t.Error("two node names accepted")
	}
	if _, err := targetNode(&corev1.Pod{}); err == nil {
		t.Error("a pod without affinity has a target")
	}
}
