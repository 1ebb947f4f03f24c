package interpodaffinity

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func term(key, app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}, TopologyKey: key}
}

func affinity(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
	return &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
}

func antiAffinity(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
}

func withAffinity(pod *corev1.Pod, a *corev1.Affinity) *corev1.Pod {
	pod.Spec.Affinity = a
	return pod
}

func TestFilter(t *testing.T) {
	nodes := []*corev1.Node{
		testutil.Node("n0", "1", "1Gi", 10, "zone", "z1"),
		testutil.Node("n1", "1", "1Gi", 10, "zone", "z1"),
		testutil.Node("n2", "1", "1Gi", 10, "zone", "z2"),
	}
	const host, zone = corev1.LabelHostname, "zone"
	for _, tc := range []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     []framework.Code
		reason   string
	}{
		{name: "nothing to do", existing: []*corev1.Pod{testutil.OnNode(testutil.Pod("db", "", "", "app", "db"), "n0")},
			pod: testutil.Pod("p", "", ""), want: nil},
		{name: "affinity to a pod's node",
			existing: []*corev1.Pod{testutil.OnNode(testutil.Pod("db", "", "", "app", "db"), "n0")},
			pod:      withAffinity(testutil.Pod("p", "", ""), affinity(term(host, "db"))),
			want:     []framework.Code{framework.Success, framework.UnschedulableAndUnresolvable, framework.UnschedulableAndUnresolvable},
			reason:   ErrReasonAffinityRulesNotMatch},
		{name: "affinity to a pod's zone",
			existing: []*corev1.Pod{testutil.OnNode(testutil.Pod("db", "", "", "app", "db"), "n0")},
			pod:      withAffinity(testutil.Pod("p", "", ""), affinity(term(zone, "db"))),
			want:     []framework.Code{framework.Success, framework.Success, framework.UnschedulableAndUnresolvable},
			reason:   ErrReasonAffinityRulesNotMatch},
		{name: "first pod of a self-affine group goes anywhere",
			pod:  withAffinity(testutil.Pod("p", "", "", "app", "web"), affinity(term(zone, "web"))),
			want: []framework.Code{framework.Success, framework.Success, framework.Success}},
		{name: "anti-affinity keeps off the pod's zone",
			existing: []*corev1.Pod{testutil.OnNode(testutil.Pod("web", "", "", "app", "web"), "n0")},
			pod:      withAffinity(testutil.Pod("p", "", "", "app", "web"), antiAffinity(term(zone, "web"))),
			want:     []framework.Code{framework.Unschedulable, framework.Unschedulable, framework.Success},
			reason:   ErrReasonAntiAffinityRulesNotMatch},
		{name: "existing pods' anti-affinity",
			existing: []*corev1.Pod{testutil.OnNode(withAffinity(testutil.Pod("web", "", "", "app", "web"), antiAffinity(term(host, "cache"))), "n1")},
			pod:      testutil.Pod("p", "", "", "app", "cache"),
			want:     []framework.Code{framework.Success, framework.Unschedulable, framework.Success},
			reason:   ErrReasonExistingAntiAffinityRulesNotMatch},
		{name: "other namespaces do not count",
			existing: []*corev1.Pod{func() *corev1.Pod {
				p := testutil.OnNode(testutil.Pod("db", "", "", "app", "db"), "n0")
				p.Namespace = "other"
				return p
			}()},
			pod:    withAffinity(testutil.Pod("p", "", ""), affinity(term(host, "db"))),
			want:   []framework.Code{framework.UnschedulableAndUnresolvable, framework.UnschedulableAndUnresolvable, framework.UnschedulableAndUnresolvable},
			reason: ErrReasonAffinityRulesNotMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			infos := testutil.NodeInfos(nodes, tc.existing)
			pl := New(&testutil.Handle{Lister: infos})
			state := framework.NewCycleState()
			_, st := pl.PreFilter(context.Background(), state, tc.pod, infos)
			if tc.want == nil {
				if !st.IsSkip() {
					t.Fatalf("PreFilter: %v, want Skip", st.Code())
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st.AsError())
			}
			for i, ni := range infos {
				st := pl.Filter(context.Background(), state, tc.pod, ni)
				if st.Code() != tc.want[i] {
					t.Errorf("%s: %v, want %v", ni.Node().Name, st.Code(), tc.want[i])
				}
				if !st.IsSuccess() && st.Message() != tc.reason {
					t.Errorf("%s: reason %q, want %q", ni.Node().Name, st.Message(), tc.reason)
				}
			}
		})
	}
}

func TestRemovePodLiftsAntiAffinity(t *testing.T) {
	nodes := []*corev1.Node{testutil.Node("n0", "1", "1Gi", 10)}
	web := testutil.OnNode(testutil.Pod("web", "", "", "app", "web"), "n0")
	infos := testutil.NodeInfos(nodes, []*corev1.Pod{web})
	pod := withAffinity(testutil.Pod("p", "", ""), antiAffinity(term(corev1.LabelHostname, "web")))
	pl := New(&testutil.Handle{Lister: infos})
	state := framework.NewCycleState()
	if _, st := pl.PreFilter(context.Background(), state, pod, infos); !st.IsSuccess() {
		t.Fatal(st.AsError())
	}
	if st := pl.Filter(context.Background(), state, pod, infos[0]); st.Code() != framework.Unschedulable {
		t.Fatalf("before removal: %v", st.Code())
	}
	ni := infos[0].Clone()
	if err := ni.RemovePod(web); err != nil {
		t.Fatal(err)
	}
	pl.RemovePod(context.Background(), state, pod, framework.NewPodInfo(web), ni)
	if st := pl.Filter(context.Background(), state, pod, ni); !st.IsSuccess() {
		t.Errorf("after removal: %v", st.Code())
	}
}

func TestScore(t *testing.T) {
	nodes := []*corev1.Node{
		testutil.Node("n0", "1", "1Gi", 10, "zone", "z1"),
		testutil.Node("n1", "1", "1Gi", 10, "zone", "z2"),
		testutil.Node("n2", "1", "1Gi", 10, "zone", "z3"),
	}
	existing := []*corev1.Pod{
		testutil.OnNode(testutil.Pod("db", "", "", "app", "db"), "n0"),
		testutil.OnNode(testutil.Pod("batch", "", "", "app", "batch"), "n2"),
	}
	pod := testutil.Pod("p", "", "")
	pod.Spec.Affinity = &corev1.Affinity{
		PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 10, PodAffinityTerm: term("zone", "db")}}},
		PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 10, PodAffinityTerm: term("zone", "batch")}}},
	}
	infos := testutil.NodeInfos(nodes, existing)
	pl := New(&testutil.Handle{Lister: infos})
	state := framework.NewCycleState()
	if st := pl.PreScore(context.Background(), state, pod, infos); !st.IsSuccess() {
		t.Fatal(st.AsError())
	}
	var scores []framework.NodeScore
	for _, ni := range infos {
		s, _ := pl.Score(context.Background(), state, pod, ni)
		scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
	}
	pl.NormalizeScore(context.Background(), state, pod, scores)
	for i, want := range []int64{100, 50, 0} {
		if scores[i].Score != want {
			t.Errorf("%s: %d, want %d", scores[i].Name, scores[i].Score, want)
		}
	}
}
