package nodeunschedulable

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestFilter(t *testing.T) {
	tolerate := []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	for _, tc := range []struct {
		name          string
		unschedulable bool
		tolerations   []corev1.Toleration
		want          framework.Code
	}{
		{"schedulable node", false, nil, framework.Success},
		{"cordoned node", true, nil, framework.UnschedulableAndUnresolvable},
		{"cordoned node, tolerated", true, tolerate, framework.Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := testutil.Node("n", "1", "1Gi", 10)
			node.Spec.Unschedulable = tc.unschedulable
			pod := testutil.Pod("p", "", "")
			pod.Spec.Tolerations = tc.tolerations
			st := New().Filter(context.Background(), framework.NewCycleState(), pod, testutil.NodeInfos([]*corev1.Node{node}, nil)[0])
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v", st.Code(), tc.want)
			}
			if tc.want != framework.Success && st.Message() != ErrReasonUnschedulable {
				t.Errorf("message %q", st.Message())
			}
		})
	}
}
