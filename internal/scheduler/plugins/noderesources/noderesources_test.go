package noderesources

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestFitFilter(t *testing.T) {
	node := testutil.Node("n", "2", "4Gi", 3)
	for _, tc := range []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		code     framework.Code
		reasons  []string
	}{
		{name: "fits", pod: testutil.Pod("p", "1", "1Gi"), code: framework.Success},
		{name: "no requests fit", existing: []*corev1.Pod{testutil.Pod("e", "2", "4Gi")}, pod: testutil.Pod("p", "", ""), code: framework.Success},
		{name: "insufficient cpu", existing: []*corev1.Pod{testutil.Pod("e", "1500m", "")}, pod: testutil.Pod("p", "1", ""),
			code: framework.Unschedulable, reasons: []string{"Insufficient cpu"}},
		{name: "insufficient cpu and memory", existing: []*corev1.Pod{testutil.Pod("e", "1500m", "3Gi")}, pod: testutil.Pod("p", "1", "2Gi"),
			code: framework.Unschedulable, reasons: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "more than the node has", pod: testutil.Pod("p", "3", ""),
			code: framework.UnschedulableAndUnresolvable, reasons: []string{"Insufficient cpu"}},
		{name: "too many pods", existing: []*corev1.Pod{testutil.Pod("a", "", ""), testutil.Pod("b", "", ""), testutil.Pod("c", "", "")},
			pod: testutil.Pod("p", "", ""), code: framework.Unschedulable, reasons: []string{"Too many pods"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.existing {
				testutil.OnNode(p, "n")
			}
			infos := testutil.NodeInfos([]*corev1.Node{node}, tc.existing)
			f, err := NewFit(nil)
			if err != nil {
				t.Fatal(err)
			}
			state := framework.NewCycleState()
			f.PreFilter(context.Background(), state, tc.pod, infos)
			st := f.Filter(context.Background(), state, tc.pod, infos[0])
			if st.Code() != tc.code || !reflect.DeepEqual(st.Reasons(), tc.reasons) {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Reasons(), tc.code, tc.reasons)
			}
		})
	}
}

func TestFitScore(t *testing.T) {
	// n0 is empty, n1 has half its CPU and memory requested.
	nodes := []*corev1.Node{testutil.Node("n0", "4", "8Gi", 10), testutil.Node("n1", "4", "8Gi", 10)}
	existing := []*corev1.Pod{testutil.OnNode(testutil.Pod("e", "2", "4Gi"), "n1")}
	pod := testutil.Pod("p", "1", "2Gi")
	for _, tc := range []struct {
		strategy ScoringStrategyType
		want     []int64
	}{
		{LeastAllocated, []int64{75, 25}},
		{MostAllocated, []int64{25, 75}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			f, err := NewFit(&FitArgs{ScoringStrategy: &ScoringStrategy{Type: tc.strategy}})
			if err != nil {
				t.Fatal(err)
			}
			infos := testutil.NodeInfos(nodes, existing)
			state := framework.NewCycleState()
			f.PreScore(context.Background(), state, pod, infos)
			for i, ni := range infos {
				s, st := f.Score(context.Background(), state, pod, ni)
				if !st.IsSuccess() || s != tc.want[i] {
					t.Errorf("%s: score %d (%v), want %d", ni.Node().Name, s, st.AsError(), tc.want[i])
				}
			}
		})
	}
}

func TestFitArgsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args FitArgs
		ok   bool
	}{
		{"nil strategy", FitArgs{}, true},
		{"least", FitArgs{ScoringStrategy: &ScoringStrategy{Type: LeastAllocated}}, true},
		{"most with weights", FitArgs{ScoringStrategy: &ScoringStrategy{Type: MostAllocated, Resources: []ResourceSpec{{Name: "cpu", Weight: 3}}}}, true},
		{"unknown type", FitArgs{ScoringStrategy: &ScoringStrategy{Type: "Fullest"}}, false},
		{"empty type", FitArgs{ScoringStrategy: &ScoringStrategy{}}, false},
		{"zero weight", FitArgs{ScoringStrategy: &ScoringStrategy{Type: MostAllocated, Resources: []ResourceSpec{{Name: "cpu"}}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.args.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestBalancedAllocation(t *testing.T) {
	nodes := []*corev1.Node{testutil.Node("n0", "4", "8Gi", 10), testutil.Node("n1", "4", "8Gi", 10)}
	// n0 would be at 50% CPU and 50% memory; n1 at 75% CPU and 25% memory.
	existing := []*corev1.Pod{testutil.OnNode(testutil.Pod("e0", "1", "2Gi"), "n0"), testutil.OnNode(testutil.Pod("e1", "2", ""), "n1")}
	pod := testutil.Pod("p", "1", "2Gi")
	existing[1].Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = *resourceQuantity("0")
	infos := testutil.NodeInfos(nodes, existing)
	b, state := NewBalancedAllocation(), framework.NewCycleState()
	b.PreScore(context.Background(), state, pod, infos)
	for i, want := range []int64{100, 75} {
		s, _ := b.Score(context.Background(), state, pod, infos[i])
		if s != want {
			t.Errorf("%s: score %d, want %d", infos[i].Node().Name, s, want)
		}
	}
}
