package nodeaffinity

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func required(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func nameIn(names ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: names}}}
}

func TestFilter(t *testing.T) {
	node := testutil.Node("n1", "1", "1Gi", 10, "disk", "ssd", "zone", "z1")
	for _, tc := range []struct {
		name     string
		selector map[string]string
		affinity *corev1.Affinity
		want     framework.Code
	}{
		{name: "nothing required", want: framework.Skip},
		{name: "selector matches", selector: map[string]string{"disk": "ssd"}, want: framework.Success},
		{name: "selector does not match", selector: map[string]string{"disk": "hdd"}, want: framework.UnschedulableAndUnresolvable},
		{name: "affinity In", affinity: required(expr("zone", corev1.NodeSelectorOpIn, "z1", "z2")), want: framework.Success},
		{name: "affinity NotIn", affinity: required(expr("zone", corev1.NodeSelectorOpNotIn, "z1")), want: framework.UnschedulableAndUnresolvable},
		{name: "terms are ORed", affinity: required(expr("zone", corev1.NodeSelectorOpIn, "z9"), expr("disk", corev1.NodeSelectorOpExists)), want: framework.Success},
		{name: "selector and affinity are ANDed", selector: map[string]string{"disk": "hdd"},
			affinity: required(expr("zone", corev1.NodeSelectorOpIn, "z1")), want: framework.UnschedulableAndUnresolvable},
		{name: "metadata.name field", affinity: required(nameIn("n1")), want: framework.Success},
		{name: "metadata.name field of another node", affinity: required(nameIn("n2")), want: framework.UnschedulableAndUnresolvable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.Pod("p", "", "")
			pod.Spec.NodeSelector, pod.Spec.Affinity = tc.selector, tc.affinity
			pl, state := New(), framework.NewCycleState()
			infos := testutil.NodeInfos([]*corev1.Node{node}, nil)
			if _, st := pl.PreFilter(context.Background(), state, pod, infos); st.IsSkip() {
				if tc.want != framework.Skip {
					t.Fatal("PreFilter skipped")
				}
				return
			}
			st := pl.Filter(context.Background(), state, pod, infos[0])
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v", st.Code(), tc.want)
			}
			if tc.want != framework.Success && st.Message() != ErrReasonPod {
				t.Errorf("message %q", st.Message())
			}
		})
	}
}

func TestPreFilterNodeNames(t *testing.T) {
	for _, tc := range []struct {
		name     string
		affinity *corev1.Affinity
		want     []string // nil: all nodes
		code     framework.Code
	}{
		{"no name fields", required(expr("zone", corev1.NodeSelectorOpIn, "z1")), nil, framework.Success},
		{"names", required(nameIn("a", "b")), []string{"a", "b"}, framework.Success},
		{"terms union", required(nameIn("a"), nameIn("c")), []string{"a", "c"}, framework.Success},
		{"a term without names allows all", required(nameIn("a"), expr("zone", corev1.NodeSelectorOpExists)), nil, framework.Success},
		{"conflicting names", required(corev1.NodeSelectorTerm{MatchFields: append(nameIn("a").MatchFields, nameIn("b").MatchFields...)}), nil, framework.UnschedulableAndUnresolvable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.Pod("p", "", "")
			pod.Spec.Affinity = tc.affinity
			res, st := New().PreFilter(context.Background(), framework.NewCycleState(), pod, nil)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v (%s)", st.Code(), tc.code, st.Message())
			}
			if tc.want == nil {
				if !res.AllNodes() {
					t.Errorf("result %v, want all nodes", res.NodeNames)
				}
				return
			}
			if res.AllNodes() || res.NodeNames.Len() != len(tc.want) || !res.NodeNames.HasAll(tc.want...) {
				t.Errorf("result %v, want %v", res, tc.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	nodes := []*corev1.Node{
		testutil.Node("n0", "1", "1Gi", 10),
		testutil.Node("n1", "1", "1Gi", 10, "zone", "z1"),
		testutil.Node("n2", "1", "1Gi", 10, "zone", "z1", "disk", "ssd"),
	}
	pod := testutil.Pod("p", "", "")
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
		{Weight: 10, Preference: expr("zone", corev1.NodeSelectorOpIn, "z1")},
		{Weight: 30, Preference: expr("disk", corev1.NodeSelectorOpIn, "ssd")},
	}}}
	infos := testutil.NodeInfos(nodes, nil)
	pl, state := New(), framework.NewCycleState()
	if st := pl.PreScore(context.Background(), state, pod, infos); !st.IsSuccess() {
		t.Fatal(st.AsError())
	}
	var scores []framework.NodeScore
	for _, ni := range infos {
		s, _ := pl.Score(context.Background(), state, pod, ni)
		scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
	}
	pl.NormalizeScore(context.Background(), state, pod, scores)
	for i, want := range []int64{0, 25, 100} {
		if scores[i].Score != want {
			t.Errorf("%s: score %d, want %d", scores[i].Name, scores[i].Score, want)
		}
	}
	if st := pl.PreScore(context.Background(), state, testutil.Pod("q", "", ""), infos); !st.IsSkip() {
		t.Errorf("PreScore of a pod without preferences: %v, want Skip", st.Code())
	}
}
