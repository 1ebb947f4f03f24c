package replicaset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "extra": "x"}, Annotations: map[string]string{"a": "b"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
			},
		},
	}
}

// podOpt changes a test pod.
type podOpt func(*corev1.Pod)

func onNode(n string) podOpt          { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func readySince(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)})
	}
}
func created(t time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}
func labelsOf(l map[string]string) podOpt {
	return func(p *corev1.Pod) { p.Labels = l }
}
func orphan() podOpt { return func(p *corev1.Pod) { p.OwnerReferences = nil } }
func terminating() podOpt {
	return func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.NewTime(testNow)) }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

// running is a scheduled, Running, Ready pod.
func running(since time.Time) []podOpt {
	return []podOpt{onNode("n1"), phase(corev1.PodRunning), readySince(since)}
}

func newPod(rs *appsv1.ReplicaSet, name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: rs.Namespace, UID: types.UID("uid-" + name),
			Labels:            map[string]string{"app": rs.Name, "extra": "x"},
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)},
			CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour)),
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// fixture is a controller over a fake clientset whose informer caches are
// filled by hand.
type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	c        *Controller
	recorder *record.FakeRecorder
	factory  informers.SharedInformerFactory
	named    atomic.Int32
}

func newFixture(t *testing.T, rs *appsv1.ReplicaSet, pods ...*corev1.Pod) *fixture {
	t.Helper()
	objs := []runtime.Object{rs}
	for _, p := range pods {
		objs = append(objs, p)
	}
	f := &fixture{t: t, client: fake.NewClientset(objs...), recorder: record.NewFakeRecorder(1000)}
	// The fake tracker does not generate names.
	f.client.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p := a.(clienttesting.CreateAction).GetObject().(*corev1.Pod)
		if p.Name == "" {
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, f.named.Add(1))
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(f.client, 0)
	c, err := New(f.client, factory, f.recorder)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return testNow }
	if err := factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(rs); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := factory.Core().V1().Pods().Informer().GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f.c, f.factory = c, factory
	return f
}

// actions returns "verb resource[/subresource] name" of the client's
// writes.
func (f *fixture) actions() []string {
	var out []string
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "create":
			if a.GetResource().Resource == "pods" {
				out = append(out, "create pods")
			}
		case "delete":
			out = append(out, "delete pods "+a.(clienttesting.DeleteAction).GetName())
		case "patch":
			out = append(out, "patch pods "+a.(clienttesting.PatchAction).GetName())
		case "update":
			out = append(out, "update "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

func (f *fixture) status(name string) appsv1.ReplicaSetStatus {
	rs, err := f.client.AppsV1().ReplicaSets("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs.Status
}

func count(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestSyncReplicaSet(t *testing.T) {
	ready := testNow.Add(-time.Hour)
	for _, tc := range []struct {
		name        string
		replicas    int32
		minReady    int32
		burst       int
		pods        func(rs *appsv1.ReplicaSet) []*corev1.Pod
		wantCreates int
		wantDeleted []string
		wantPatched []string
		wantStatus  appsv1.ReplicaSetStatus
	}{{
		name: "creates the missing pods", replicas: 3,
		pods:        func(rs *appsv1.ReplicaSet) []*corev1.Pod { return []*corev1.Pod{newPod(rs, "p1", running(ready)...)} },
		wantCreates: 2,
		wantStatus:  appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 1},
	}, {
		name: "burst is bounded", replicas: 30, burst: 20,
		pods:        func(*appsv1.ReplicaSet) []*corev1.Pod { return nil },
		wantCreates: 20,
		wantStatus:  appsv1.ReplicaSetStatus{ObservedGeneration: 1},
	}, {
		name: "deletes unscheduled, then pending, then not ready, then newest", replicas: 2,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{
				newPod(rs, "ready-old", append(running(ready), created(testNow.Add(-100*time.Hour)))...),
				newPod(rs, "unscheduled"),
				newPod(rs, "ready-recent", running(testNow.Add(-time.Second))...),
				newPod(rs, "pending", onNode("n1")),
				newPod(rs, "notready", onNode("n1"), phase(corev1.PodRunning)),
				newPod(rs, "ready-older", append(running(ready), created(testNow.Add(-200*time.Hour)))...),
			}
		},
		wantDeleted: []string{"notready", "pending", "ready-recent", "unscheduled"},
		wantStatus:  appsv1.ReplicaSetStatus{Replicas: 6, FullyLabeledReplicas: 6, ReadyReplicas: 3, AvailableReplicas: 3, ObservedGeneration: 1},
	}, {
		name: "restarts break ties between pods ready as long", replicas: 1,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{
				newPod(rs, "calm", running(ready)...),
				newPod(rs, "crashy", append(running(ready), restarts(5))...),
			}
		},
		wantDeleted: []string{"crashy"},
		wantStatus:  appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, ObservedGeneration: 1},
	}, {
		name: "adopts a matching orphan instead of creating", replicas: 1,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{newPod(rs, "stray", append(running(ready), orphan())...)}
		},
		wantPatched: []string{"stray"},
		wantStatus:  appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 1},
	}, {
		name: "releases an owned pod it no longer selects and replaces it", replicas: 1,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{newPod(rs, "relabeled", append(running(ready), labelsOf(map[string]string{"app": "other"}))...)}
		},
		wantPatched: []string{"relabeled"},
		wantCreates: 1,
		wantStatus:  appsv1.ReplicaSetStatus{ObservedGeneration: 1},
	}, {
		name: "ignores pods of other controllers and terminal pods", replicas: 1,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			other := newRS("other", 1)
			stranger := newPod(rs, "stranger", running(ready)...)
			stranger.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(other, controllerKind)}
			return []*corev1.Pod{stranger, newPod(rs, "done", phase(corev1.PodSucceeded)), newPod(rs, "failed", phase(corev1.PodFailed))}
		},
		wantCreates: 1,
		wantStatus:  appsv1.ReplicaSetStatus{ObservedGeneration: 1},
	}, {
		name: "counts terminating pods apart and replaces them", replicas: 1,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{newPod(rs, "going", append(running(ready), terminating())...)}
		},
		wantCreates: 1,
		wantStatus:  appsv1.ReplicaSetStatus{ObservedGeneration: 1, TerminatingReplicas: new(int32(1))},
	}, {
		name: "availability waits for minReadySeconds", replicas: 3, minReady: 10,
		pods: func(rs *appsv1.ReplicaSet) []*corev1.Pod {
			return []*corev1.Pod{
				newPod(rs, "long", running(testNow.Add(-time.Minute))...),
				newPod(rs, "just", running(testNow.Add(-5*time.Second))...),
				newPod(rs, "partial", append(running(ready), labelsOf(map[string]string{"app": "rs"}))...),
			}
		},
		wantStatus: appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 2, ObservedGeneration: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRS("rs", tc.replicas)
			rs.Spec.MinReadySeconds = tc.minReady
			f := newFixture(t, rs, tc.pods(rs)...)
			if tc.burst > 0 {
				f.c.burst = tc.burst
			}
			if err := f.c.sync(context.Background(), "ns/rs"); err != nil {
				t.Fatalf("sync: %v", err)
			}
			acts := f.actions()
			if got := count(acts, "create pods"); got != tc.wantCreates {
				t.Errorf("created %d pods, want %d (actions %v)", got, tc.wantCreates, acts)
			}
			var deleted []string
			for _, a := range acts {
				if name, ok := strings.CutPrefix(a, "delete pods "); ok {
					deleted = append(deleted, name)
				}
			}
			if strings.Join(sorted(deleted), ",") != strings.Join(tc.wantDeleted, ",") {
				t.Errorf("deleted %v, want %v", sorted(deleted), tc.wantDeleted)
			}
			for _, name := range tc.wantPatched {
				if count(acts, "patch pods "+name) != 1 {
					t.Errorf("pod %s was not patched once: %v", name, acts)
				}
			}
			st := f.status("rs")
			st.Conditions = nil
			if !apiequality.Semantic.DeepEqual(st, withTerminating(tc.wantStatus)) {
				t.Errorf("status %+v\nwant   %+v", st, withTerminating(tc.wantStatus))
			}
		})
	}
}

func withTerminating(st appsv1.ReplicaSetStatus) appsv1.ReplicaSetStatus {
	if st.TerminatingReplicas == nil {
		st.TerminatingReplicas = new(int32(0))
	}
	return st
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestCreatedPodsFollowTheTemplate(t *testing.T) {
	rs := newRS("web", 2)
	f := newFixture(t, rs)
	if err := f.c.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	pods, err := f.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if p.GenerateName != "web-" || ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s: generateName %q, controller %+v", p.Name, p.GenerateName, ref)
		}
		if p.Labels["extra"] != "x" || p.Annotations["a"] != "b" || p.Spec.Containers[0].Image != "img" {
			t.Errorf("pod %s does not carry the template: %+v", p.Name, p.ObjectMeta)
		}
	}
	if n := len(f.recorder.Events); n != 2 {
		t.Errorf("%d events, want 2 SuccessfulCreate", n)
	}
	if e := <-f.recorder.Events; !strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: web-") {
		t.Errorf("event %q", e)
	}
}

// A sync whose creates are not yet seen by the informer does not create
// again; once they are seen (or expected no more), it does.
func TestExpectationsPreventDuplicateCreates(t *testing.T) {
	rs := newRS("rs", 3)
	f := newFixture(t, rs)
	ctx := context.Background()
	if err := f.c.sync(ctx, "ns/rs"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.sync(ctx, "ns/rs"); err != nil {
		t.Fatal(err)
	}
	if n := count(f.actions(), "create pods"); n != 3 {
		t.Fatalf("created %d pods over two syncs with a stale cache, want 3", n)
	}
	// The informer sees two of them: still one outstanding.
	pods, _ := f.client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items[:2] {
		f.c.addPod(&p)
	}
	if f.c.exp.satisfied("ns/rs") {
		t.Fatal("expectations satisfied with a create unseen")
	}
	f.c.addPod(&pods.Items[2])
	if !f.c.exp.satisfied("ns/rs") {
		t.Fatal("expectations not satisfied after every create was seen")
	}
	// Expired expectations let a sync go ahead.
	f.c.exp.expectCreations("ns/rs", 1)
	f.c.exp.now = func() time.Time { return time.Now().Add(ExpectationsTimeout + time.Second) }
	if !f.c.exp.satisfied("ns/rs") {
		t.Fatal("expired expectations still block")
	}
}

func TestExpectedDeletionsCountOnce(t *testing.T) {
	e := newExpectations()
	e.expectDeletions("k", []string{"ns/a", "ns/b"})
	e.deletionObserved("k", "ns/a")
	e.deletionObserved("k", "ns/a") // deletionTimestamp, then gone
	if e.satisfied("k") {
		t.Fatal("satisfied with ns/b outstanding")
	}
	e.deletionObserved("k", "ns/b")
	if !e.satisfied("k") {
		t.Fatal("not satisfied after both deletions")
	}
}

func TestCreateFailureSetsReplicaFailure(t *testing.T) {
	rs := newRS("rs", 4)
	f := newFixture(t, rs)
	var calls atomic.Int32
	quota := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("exceeded quota"))
	fail := true
	f.client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		calls.Add(1)
		if fail {
			return true, nil, quota
		}
		return false, nil, nil
	})
	ctx := context.Background()
	if err := f.c.sync(ctx, "ns/rs"); err == nil {
		t.Fatal("sync succeeded with every create failing")
	}
	// Slow start: the first batch of one failed, nothing more was tried.
	if n := calls.Load(); n != 1 {
		t.Errorf("%d create calls, want 1 (slow start stops at the first failed batch)", n)
	}
	if !f.c.exp.satisfied("ns/rs") {
		t.Error("creates never attempted are still expected")
	}
	cond := GetCondition(f.status("rs"), appsv1.ReplicaSetReplicaFailure)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "FailedCreate" || !strings.Contains(cond.Message, "exceeded quota") {
		t.Fatalf("ReplicaFailure condition %+v", cond)
	}
	if e := <-f.recorder.Events; !strings.HasPrefix(e, "Warning FailedCreate Error creating: ") {
		t.Errorf("event %q", e)
	}
	// Once creates work, the condition goes.
	fail = false
	cur, _ := f.client.AppsV1().ReplicaSets("ns").Get(ctx, "rs", metav1.GetOptions{})
	if err := f.factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Update(cur); err != nil {
		t.Fatal(err)
	}
	if err := f.c.sync(ctx, "ns/rs"); err != nil {
		t.Fatal(err)
	}
	if cond := GetCondition(f.status("rs"), appsv1.ReplicaSetReplicaFailure); cond != nil {
		t.Errorf("ReplicaFailure still set: %+v", cond)
	}
}

func TestSlowStartBatch(t *testing.T) {
	for _, tc := range []struct {
		count, failAt int // failAt: the call (1-based) that fails first; 0 none
		wantOK        int
		wantCalls     int
	}{
		{count: 10, wantOK: 10, wantCalls: 10},
		{count: 10, failAt: 1, wantOK: 0, wantCalls: 1},
		{count: 10, failAt: 2, wantOK: 1, wantCalls: 3},  // batches 1, 2
		{count: 10, failAt: 4, wantOK: 3, wantCalls: 7},  // 1, 2, 4
		{count: 10, failAt: 8, wantOK: 7, wantCalls: 10}, // 1, 2, 4, 3
		{count: 0, wantOK: 0, wantCalls: 0},
	} {
		var calls atomic.Int32
		ok, err := slowStartBatch(tc.count, 1, func() error {
			n := calls.Add(1)
			if tc.failAt > 0 && int(n) >= tc.failAt {
				return errors.New("boom")
			}
			return nil
		})
		// Every call from failAt on fails, so the counts are exact even
		// though the calls of a batch run in any order.
		if (err != nil) != (tc.failAt > 0) || int(calls.Load()) != tc.wantCalls || ok != tc.wantOK {
			t.Errorf("count %d failAt %d: ok=%d calls=%d err=%v, want ok=%d calls=%d", tc.count, tc.failAt, ok, calls.Load(), err, tc.wantOK, tc.wantCalls)
		}
	}
}

func TestDeletedReplicaSetForgetsExpectations(t *testing.T) {
	rs := newRS("rs", 1)
	f := newFixture(t, rs)
	f.c.exp.expectCreations("ns/rs", 5)
	f.c.deleteRS(rs)
	if !f.c.exp.satisfied("ns/rs") {
		t.Error("expectations kept for a deleted ReplicaSet")
	}
	if f.c.queue.Len() != 1 {
		t.Errorf("queue length %d, want the deleted ReplicaSet queued", f.c.queue.Len())
	}
}
