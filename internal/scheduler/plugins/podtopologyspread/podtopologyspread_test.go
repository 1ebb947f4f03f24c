package podtopologyspread

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func spread(pod *corev1.Pod, key string, skew int32, when corev1.UnsatisfiableConstraintAction) *corev1.Pod {
	pod.Spec.TopologySpreadConstraints = append(pod.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}})
	return pod
}

func webPods(counts map[string]int) []*corev1.Pod {
	var out []*corev1.Pod
	for node, n := range counts {
		for i := 0; i < n; i++ {
			out = append(out, testutil.OnNode(testutil.Pod(fmt.Sprintf("%s-%d", node, i), "", "", "app", "web"), node))
		}
	}
	return out
}

func TestFilter(t *testing.T) {
	nodes := []*corev1.Node{
		testutil.Node("a1", "1", "1Gi", 10, "zone", "a"),
		testutil.Node("a2", "1", "1Gi", 10, "zone", "a"),
		testutil.Node("b1", "1", "1Gi", 10, "zone", "b"),
		testutil.Node("nolabel", "1", "1Gi", 10),
	}
	for _, tc := range []struct {
		name   string
		counts map[string]int
		pod    *corev1.Pod
		want   []framework.Code
	}{
		{name: "no constraints", pod: testutil.Pod("p", "", "", "app", "web")},
		{name: "zones balanced: any zone", counts: map[string]int{"a1": 1, "b1": 1},
			pod:  spread(testutil.Pod("p", "", "", "app", "web"), "zone", 1, corev1.DoNotSchedule),
			want: []framework.Code{framework.Success, framework.Success, framework.Success, framework.UnschedulableAndUnresolvable}},
		{name: "zone a ahead: only b", counts: map[string]int{"a1": 1, "a2": 1, "b1": 1},
			pod:  spread(testutil.Pod("p", "", "", "app", "web"), "zone", 1, corev1.DoNotSchedule),
			want: []framework.Code{framework.Unschedulable, framework.Unschedulable, framework.Success, framework.UnschedulableAndUnresolvable}},
		{name: "max skew 2 allows a", counts: map[string]int{"a1": 1, "a2": 1, "b1": 1},
			pod:  spread(testutil.Pod("p", "", "", "app", "web"), "zone", 2, corev1.DoNotSchedule),
			want: []framework.Code{framework.Success, framework.Success, framework.Success, framework.UnschedulableAndUnresolvable}},
		{name: "non-matching pod does not add to the skew", counts: map[string]int{"a1": 1, "a2": 1, "b1": 1},
			pod:  spread(testutil.Pod("p", "", "", "app", "other"), "zone", 1, corev1.DoNotSchedule),
			want: []framework.Code{framework.Success, framework.Success, framework.Success, framework.UnschedulableAndUnresolvable}},
		{name: "ScheduleAnyway does not filter", counts: map[string]int{"a1": 5},
			pod: spread(testutil.Pod("p", "", "", "app", "web"), "zone", 1, corev1.ScheduleAnyway)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			infos := testutil.NodeInfos(nodes, webPods(tc.counts))
			pl, state := New(&testutil.Handle{Lister: infos}), framework.NewCycleState()
			_, st := pl.PreFilter(context.Background(), state, tc.pod, infos)
			if tc.want == nil {
				if !st.IsSkip() {
					t.Fatalf("PreFilter: %v, want Skip", st.Code())
				}
				return
			}
			for i, ni := range infos {
				if got := pl.Filter(context.Background(), state, tc.pod, ni).Code(); got != tc.want[i] {
					t.Errorf("%s: %v, want %v", ni.Node().Name, got, tc.want[i])
				}
			}
		})
	}
}

func TestMinDomains(t *testing.T) {
	nodes := []*corev1.Node{testutil.Node("a1", "1", "1Gi", 10, "zone", "a")}
	infos := testutil.NodeInfos(nodes, webPods(map[string]int{"a1": 1}))
	pod := spread(testutil.Pod("p", "", "", "app", "web"), "zone", 1, corev1.DoNotSchedule)
	pod.Spec.TopologySpreadConstraints[0].MinDomains = new(int32(2))
	pl, state := New(&testutil.Handle{Lister: infos}), framework.NewCycleState()
	pl.PreFilter(context.Background(), state, pod, infos)
	// With fewer domains than minDomains the global minimum is 0: 1+1-0 > 1.
	if got := pl.Filter(context.Background(), state, pod, infos[0]).Code(); got != framework.Unschedulable {
		t.Errorf("got %v, want Unschedulable", got)
	}
}

func TestScore(t *testing.T) {
	nodes := []*corev1.Node{
		testutil.Node("n0", "1", "1Gi", 10),
		testutil.Node("n1", "1", "1Gi", 10),
		testutil.Node("n2", "1", "1Gi", 10),
	}
	infos := testutil.NodeInfos(nodes, webPods(map[string]int{"n0": 2, "n1": 1}))
	pod := spread(testutil.Pod("p", "", "", "app", "web"), corev1.LabelHostname, 1, corev1.ScheduleAnyway)
	pl, state := New(&testutil.Handle{Lister: infos}), framework.NewCycleState()
	if st := pl.PreScore(context.Background(), state, pod, infos); !st.IsSuccess() {
		t.Fatal(st.AsError())
	}
	var scores []framework.NodeScore
	for _, ni := range infos {
		s, _ := pl.Score(context.Background(), state, pod, ni)
		scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
	}
	pl.NormalizeScore(context.Background(), state, pod, scores)
	if !(scores[2].Score > scores[1].Score && scores[1].Score > scores[0].Score) || scores[2].Score != framework.MaxNodeScore {
		t.Errorf("scores %v: want the emptiest node highest (100) and the fullest lowest", scores)
	}
}
