package nodename

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name, podNode string
		want          framework.Code
	}{
		{"no node name", "", framework.Success},
		{"this node", "n1", framework.Success},
		{"another node", "n2", framework.UnschedulableAndUnresolvable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.Pod("p", "", "")
			pod.Spec.NodeName = tc.podNode
			ni := testutil.NodeInfos([]*corev1.Node{testutil.Node("n1", "1", "1Gi", 10)}, nil)
			st := New().Filter(context.Background(), framework.NewCycleState(), pod, ni[0])
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v", st.Code(), tc.want)
			}
			if tc.want != framework.Success && st.Message() != ErrReason {
				t.Errorf("message %q", st.Message())
			}
		})
	}
}
