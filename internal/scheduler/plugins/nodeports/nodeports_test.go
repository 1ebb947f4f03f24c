package nodeports

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func withPort(pod *corev1.Pod, ip string, proto corev1.Protocol, port int32) *corev1.Pod {
	pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, HostIP: ip, Protocol: proto, HostPort: port})
	return pod
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing *corev1.Pod
		pod      *corev1.Pod
		want     framework.Code
	}{
		{"no host ports", withPort(testutil.Pod("e", "", ""), "", "", 80), testutil.Pod("p", "", ""), framework.Skip},
		{"free port", withPort(testutil.Pod("e", "", ""), "", "", 80), withPort(testutil.Pod("p", "", ""), "", "", 81), framework.Success},
		{"same port", withPort(testutil.Pod("e", "", ""), "", "", 80), withPort(testutil.Pod("p", "", ""), "", "", 80), framework.Unschedulable},
		{"other protocol", withPort(testutil.Pod("e", "", ""), "", "", 80), withPort(testutil.Pod("p", "", ""), "", corev1.ProtocolUDP, 80), framework.Success},
		{"other IPs", withPort(testutil.Pod("e", "", ""), "10.0.0.1", "", 80), withPort(testutil.Pod("p", "", ""), "10.0.0.2", "", 80), framework.Success},
		{"wildcard against an IP", withPort(testutil.Pod("e", "", ""), "10.0.0.1", "", 80), withPort(testutil.Pod("p", "", ""), "0.0.0.0", "", 80), framework.Unschedulable},
		{"IP against the wildcard", withPort(testutil.Pod("e", "", ""), "", "", 80), withPort(testutil.Pod("p", "", ""), "10.0.0.2", "", 80), framework.Unschedulable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			infos := testutil.NodeInfos([]*corev1.Node{testutil.Node("n", "1", "1Gi", 10)}, []*corev1.Pod{testutil.OnNode(tc.existing, "n")})
			pl, state := New(), framework.NewCycleState()
			_, st := pl.PreFilter(context.Background(), state, tc.pod, infos)
			if st.IsSkip() {
				if tc.want != framework.Skip {
					t.Fatalf("PreFilter skipped")
				}
				return
			}
			st = pl.Filter(context.Background(), state, tc.pod, infos[0])
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v", st.Code(), tc.want)
			}
			if tc.want == framework.Unschedulable && st.Message() != ErrReason {
				t.Errorf("message %q", st.Message())
			}
		})
	}
}
