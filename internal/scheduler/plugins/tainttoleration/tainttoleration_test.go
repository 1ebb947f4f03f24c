package tainttoleration

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestFilter(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}
	for _, tc := range []struct {
		name        string
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		want        framework.Code
		msg         string
	}{
		{name: "no taints", want: framework.Success},
		{name: "untolerated NoSchedule", taints: []corev1.Taint{taint}, want: framework.UnschedulableAndUnresolvable,
			msg: "node(s) had untolerated taint {dedicated: infra}"},
		{name: "tolerated by key and value", taints: []corev1.Taint{taint},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infra", Effect: corev1.TaintEffectNoSchedule}},
			want:        framework.Success},
		{name: "tolerated by Exists", taints: []corev1.Taint{taint},
			tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, want: framework.Success},
		{name: "wrong value", taints: []corev1.Taint{taint},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db"}},
			want:        framework.UnschedulableAndUnresolvable, msg: "node(s) had untolerated taint {dedicated: infra}"},
		{name: "PreferNoSchedule does not filter",
			taints: []corev1.Taint{{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}, want: framework.Success},
		{name: "NoExecute filters", taints: []corev1.Taint{{Key: "x", Value: "y", Effect: corev1.TaintEffectNoExecute}},
			want: framework.UnschedulableAndUnresolvable, msg: "node(s) had untolerated taint {x: y}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := testutil.Node("n", "1", "1Gi", 10)
			node.Spec.Taints = tc.taints
			pod := testutil.Pod("p", "", "")
			pod.Spec.Tolerations = tc.tolerations
			st := New().Filter(context.Background(), framework.NewCycleState(), pod, testutil.NodeInfos([]*corev1.Node{node}, nil)[0])
			if st.Code() != tc.want || st.Message() != tc.msg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tc.want, tc.msg)
			}
		})
	}
}

func TestScore(t *testing.T) {
	soft := func(k string) corev1.Taint { return corev1.Taint{Key: k, Effect: corev1.TaintEffectPreferNoSchedule} }
	n0 := testutil.Node("n0", "1", "1Gi", 10)
	n1 := testutil.Node("n1", "1", "1Gi", 10)
	n1.Spec.Taints = []corev1.Taint{soft("a")}
	n2 := testutil.Node("n2", "1", "1Gi", 10)
	n2.Spec.Taints = []corev1.Taint{soft("a"), soft("b")}
	infos := testutil.NodeInfos([]*corev1.Node{n0, n1, n2}, nil)
	for _, tc := range []struct {
		name        string
		tolerations []corev1.Toleration
		want        []int64
	}{
		{"fewer untolerated taints score higher", nil, []int64{100, 50, 0}},
		{"tolerating a", []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists}}, []int64{100, 100, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.Pod("p", "", "")
			pod.Spec.Tolerations = tc.tolerations
			pl, state := New(), framework.NewCycleState()
			if st := pl.PreScore(context.Background(), state, pod, infos); !st.IsSuccess() {
				t.Fatal(st.AsError())
			}
			var scores []framework.NodeScore
			for _, ni := range infos {
				s, st := pl.Score(context.Background(), state, pod, ni)
				if !st.IsSuccess() {
					t.Fatal(st.AsError())
				}
				scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
			}
			pl.NormalizeScore(context.Background(), state, pod, scores)
			for i, s := range scores {
				if s.Score != tc.want[i] {
					t.Errorf("%s: score %d, want %d", s.Name, s.Score, tc.want[i])
				}
			}
		})
	}
}
