package defaultpreemption

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/plugins/noderesources"
	"github.com/havre/havre/internal/scheduler/testutil"
)

func TestPostFilter(t *testing.T) {
	never := corev1.PreemptNever
	for _, tc := range []struct {
		name      string
		existing  []*corev1.Pod
		pod       *corev1.Pod
		statuses  map[string]*framework.Status
		wantNode  string
		wantMsg   string
		victims   []string
		survivors []string
	}{
		{
			name: "evicts the lowest priority pod that frees enough",
			existing: []*corev1.Pod{
				testutil.WithPriority(testutil.OnNode(testutil.Pod("low", "1", ""), "n0"), 1),
				testutil.WithPriority(testutil.OnNode(testutil.Pod("mid", "1", ""), "n0"), 5),
			},
			pod:       testutil.WithPriority(testutil.Pod("p", "1", ""), 10),
			statuses:  map[string]*framework.Status{"n0": framework.NewStatus(framework.Unschedulable, "Insufficient cpu")},
			wantNode:  "n0",
			victims:   []string{"low"},
			survivors: []string{"mid"},
		},
		{
			name: "preemptionPolicy Never",
			existing: []*corev1.Pod{
				testutil.WithPriority(testutil.OnNode(testutil.Pod("low", "2", ""), "n0"), 1),
			},
			pod: func() *corev1.Pod {
				p := testutil.WithPriority(testutil.Pod("p", "1", ""), 10)
				p.Spec.PreemptionPolicy = &never
				return p
			}(),
			statuses:  map[string]*framework.Status{"n0": framework.NewStatus(framework.Unschedulable, "Insufficient cpu")},
			wantMsg:   "preemption: not eligible due to preemptionPolicy=Never.",
			survivors: []string{"low"},
		},
		{
			name: "no lower-priority pods",
			existing: []*corev1.Pod{
				testutil.WithPriority(testutil.OnNode(testutil.Pod("same", "2", ""), "n0"), 10),
			},
			pod:       testutil.WithPriority(testutil.Pod("p", "1", ""), 10),
			statuses:  map[string]*framework.Status{"n0": framework.NewStatus(framework.Unschedulable, "Insufficient cpu")},
			wantMsg:   "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
			survivors: []string{"same"},
		},
		{
			name: "unresolvable nodes are not tried",
			existing: []*corev1.Pod{
				testutil.WithPriority(testutil.OnNode(testutil.Pod("low", "2", ""), "n0"), 1),
			},
			pod:       testutil.WithPriority(testutil.Pod("p", "1", ""), 10),
			statuses:  map[string]*framework.Status{"n0": framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector")},
			wantMsg:   "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
			survivors: []string{"low"},
		},
		{
			name: "evicting every lower-priority pod is not enough",
			existing: []*corev1.Pod{
				testutil.WithPriority(testutil.OnNode(testutil.Pod("low", "500m", ""), "n0"), 1),
				testutil.WithPriority(testutil.OnNode(testutil.Pod("high", "1500m", ""), "n0"), 100),
			},
			pod:       testutil.WithPriority(testutil.Pod("p", "1", ""), 10),
			statuses:  map[string]*framework.Status{"n0": framework.NewStatus(framework.Unschedulable, "Insufficient cpu")},
			wantMsg:   "preemption: 0/1 nodes are available: 1 Insufficient cpu.",
			survivors: []string{"low", "high"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, p := range tc.existing {
				objs = append(objs, p)
			}
			client := fake.NewClientset(objs...)
			infos := testutil.NodeInfos([]*corev1.Node{testutil.Node("n0", "2", "4Gi", 10)}, tc.existing)
			fit, _ := noderesources.NewFit(nil)
			h := &testutil.Handle{Lister: infos, Client: client, Recorder: events.NewFakeRecorder(10),
				Filters: []framework.FilterPlugin{fit}}
			pl := New(h, DefaultArgs())
			state := framework.NewCycleState()
			fit.PreFilter(context.Background(), state, tc.pod, infos)
			m := framework.NewNodeToStatus()
			m.Statuses = tc.statuses
			res, st := pl.PostFilter(context.Background(), state, tc.pod, m)
			if tc.wantNode != "" {
				if !st.IsSuccess() || res == nil || res.NominatedNodeName != tc.wantNode {
					t.Fatalf("got %v %v, want nominated %s", res, st.AsError(), tc.wantNode)
				}
			} else if st.Message() != tc.wantMsg || st.Code() != framework.Unschedulable {
				t.Fatalf("got %v %q, want Unschedulable %q", st.Code(), st.Message(), tc.wantMsg)
			}
			for _, name := range tc.victims {
				if _, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("victim %s was not deleted: %v", name, err)
				}
			}
			for _, name := range tc.survivors {
				if _, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{}); err != nil {
					t.Errorf("pod %s should remain: %v", name, err)
				}
			}
		})
	}
}

func TestPickOne(t *testing.T) {
	p := func(name string, prio int32) *corev1.Pod {
		return testutil.WithPriority(testutil.Pod(name, "", ""), prio)
	}
	for _, tc := range []struct {
		name string
		cs   []candidate
		want string
	}{
		{"fewest PDB violations", []candidate{{node: "a", victims: []*corev1.Pod{p("x", 1)}, pdbViolations: 1}, {node: "b", victims: []*corev1.Pod{p("y", 5)}}}, "b"},
		{"lowest highest priority", []candidate{{node: "a", victims: []*corev1.Pod{p("x", 5)}}, {node: "b", victims: []*corev1.Pod{p("y", 1), p("z", 1)}}}, "b"},
		{"lowest priority sum", []candidate{{node: "a", victims: []*corev1.Pod{p("x", 5), p("w", 5)}}, {node: "b", victims: []*corev1.Pod{p("y", 5), p("z", 1)}}}, "b"},
		{"fewest victims", []candidate{{node: "a", victims: []*corev1.Pod{p("x", 5), p("w", 0)}}, {node: "b", victims: []*corev1.Pod{p("y", 5)}}}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickOne(tc.cs).node; got != tc.want {
				t.Errorf("picked %s, want %s", got, tc.want)
			}
		})
	}
}
