package defaultbinder

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    bool
		success bool
	}{
		{"binds", false, true},
		{"binding refused", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.Pod("p", "", "")
			client := fake.NewClientset(pod)
			var got *corev1.Binding
			client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "binding" {
					return false, nil, nil
				}
				got = a.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
				if tc.fail {
					return true, nil, context.DeadlineExceeded
				}
				return true, got, nil
			})
			st := New(&testutil.Handle{Client: client}).Bind(context.Background(), framework.NewCycleState(), pod, "n1")
			if st.IsSuccess() != tc.success {
				t.Fatalf("Bind: %v", st.AsError())
			}
			if got == nil || got.Name != "p" || got.Namespace != "default" || got.UID != pod.UID || got.Target.Kind != "Node" || got.Target.Name != "n1" {
				t.Errorf("binding %+v", got)
			}
		})
	}
}
