package volumerestrictions

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func claim(name string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes}}
}

func podWith(name string, claims ...string) *corev1.Pod {
	p := testutil.Pod(name, "", "")
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v-" + c,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func TestReadWriteOncePod(t *testing.T) {
	rwop := claim("rwop", corev1.ReadWriteOncePod)
	rwo := claim("rwo", corev1.ReadWriteOnce)
	otherNS := podWith("elsewhere", "rwop")
	otherNS.Namespace = "other"
	for _, tc := range []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		// preFilter is PreFilter's code; want Filter's.
		preFilter framework.Code
		preMsg    string
		want      framework.Code
	}{
		{name: "no claims", pod: testutil.Pod("p", "", ""), preFilter: framework.Skip},
		{name: "ReadWriteOnce claim in use", existing: []*corev1.Pod{testutil.OnNode(podWith("e", "rwo"), "n1")},
			pod: podWith("p", "rwo"), preFilter: framework.Skip},
		{name: "missing claim", pod: podWith("p", "gone"), preFilter: framework.UnschedulableAndUnresolvable,
			preMsg: `persistentvolumeclaim "gone" not found`},
		{name: "ReadWriteOncePod claim free", existing: []*corev1.Pod{testutil.OnNode(podWith("e", "rwo"), "n1")},
			pod: podWith("p", "rwop"), want: framework.Success},
		{name: "ReadWriteOncePod claim in use", existing: []*corev1.Pod{testutil.OnNode(podWith("e", "rwop"), "n2")},
			pod: podWith("p", "rwop"), want: framework.Unschedulable},
		{name: "same name in another namespace", existing: []*corev1.Pod{testutil.OnNode(otherNS, "n2")},
			pod: podWith("p", "rwop"), want: framework.Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			factory := informers.NewSharedInformerFactory(client, 0)
			store := factory.Core().V1().PersistentVolumeClaims().Informer().GetStore()
			for _, c := range []*corev1.PersistentVolumeClaim{rwop, rwo} {
				if err := store.Add(c); err != nil {
					t.Fatal(err)
				}
			}
			pl := New(&testutil.Handle{Client: client, Informers: factory})
			infos := testutil.NodeInfos([]*corev1.Node{testutil.Node("n1", "1", "1Gi", 10), testutil.Node("n2", "1", "1Gi", 10)}, tc.existing)
			state := framework.NewCycleState()
			_, st := pl.PreFilter(context.Background(), state, tc.pod, infos)
			if st.Code() != tc.preFilter || tc.preMsg != "" && st.Message() != tc.preMsg {
				t.Fatalf("PreFilter: %v %q, want %v %q", st.Code(), st.Message(), tc.preFilter, tc.preMsg)
			}
			if !st.IsSuccess() {
				return
			}
			for _, ni := range infos {
				st := pl.Filter(context.Background(), state, tc.pod, ni)
				if st.Code() != tc.want {
					t.Errorf("Filter on %s: %v %q, want %v", ni.Node().Name, st.Code(), st.Message(), tc.want)
				}
				if tc.want == framework.Unschedulable && st.Message() != ErrReasonReadWriteOncePodConflict {
					t.Errorf("Filter message %q", st.Message())
				}
			}
			// Preemption removing the pods that use the claim frees it.
			if tc.want == framework.Unschedulable {
				for _, ni := range infos {
					for _, pi := range ni.Pods {
						if st := pl.RemovePod(context.Background(), state, tc.pod, pi, ni); !st.IsSuccess() {
							t.Fatal(st.Message())
						}
					}
				}
				if st := pl.Filter(context.Background(), state, tc.pod, infos[0]); !st.IsSuccess() {
					t.Errorf("Filter once the users are removed: %q", st.Message())
				}
				// A cloned state is independent.
				clone := state.Clone()
				if st := pl.AddPod(context.Background(), clone, tc.pod, framework.NewPodInfo(tc.existing[0]), infos[0]); !st.IsSuccess() {
					t.Fatal(st.Message())
				}
				if pl.Filter(context.Background(), clone, tc.pod, infos[0]).IsSuccess() || !pl.Filter(context.Background(), state, tc.pod, infos[0]).IsSuccess() {
					t.Error("AddPod on a cloned state: want the clone rejected and the original not")
				}
			}
		})
	}
}
