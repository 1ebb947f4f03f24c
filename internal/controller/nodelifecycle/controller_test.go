package nodelifecycle

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness drives a controller without running its loops: informer stores
// are refreshed from the fake client by sync.
type harness struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	clock   *testingclock.FakeClock
	c       *Controller
	ctx     context.Context
}

func newHarness(t *testing.T, objs ...any) *harness {
	t.Helper()
	client := fake.NewClientset()
	h := &harness{t: t, client: client, clock: testingclock.NewFakeClock(t0), ctx: context.Background()}
	h.factory = informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: h.factory, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Node:
			_, err = client.CoreV1().Nodes().Create(h.ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = client.CoreV1().Pods(o.Namespace).Create(h.ctx, o, metav1.CreateOptions{})
		case *coordinationv1.Lease:
			_, err = client.CoordinationV1().Leases(o.Namespace).Create(h.ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("unexpected object %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	h.sync()
	return h
}

// sync copies the fake client's objects into the informer stores.
func (h *harness) sync() {
	h.t.Helper()
	nodes, _ := h.client.CoreV1().Nodes().List(h.ctx, metav1.ListOptions{})
	pods, _ := h.client.CoreV1().Pods("").List(h.ctx, metav1.ListOptions{})
	leases, _ := h.client.CoordinationV1().Leases("").List(h.ctx, metav1.ListOptions{})
	var items []any
	for i := range nodes.Items {
		items = append(items, &nodes.Items[i])
	}
	if err := h.factory.Core().V1().Nodes().Informer().GetStore().Replace(items, ""); err != nil {
		h.t.Fatal(err)
	}
	items = nil
	for i := range pods.Items {
		items = append(items, &pods.Items[i])
	}
	if err := h.factory.Core().V1().Pods().Informer().GetStore().Replace(items, ""); err != nil {
		h.t.Fatal(err)
	}
	items = nil
	for i := range leases.Items {
		items = append(items, &leases.Items[i])
	}
	if err := h.factory.Coordination().V1().Leases().Informer().GetStore().Replace(items, ""); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) node(name string) *corev1.Node {
	h.t.Helper()
	n, err := h.client.CoreV1().Nodes().Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// monitor runs one health pass and one tainting pass, syncing the stores
// after each.
func (h *harness) monitor() {
	h.t.Helper()
	if err := h.c.monitorNodeHealth(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.sync()
	h.c.doNoExecuteTaintingPass(h.ctx)
	h.sync()
}

// heartbeat renews the node's lease at the fake clock's time.
func (h *harness) heartbeat(name string) {
	h.t.Helper()
	l, err := h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	now := metav1.NewMicroTime(h.clock.Now())
	l.Spec.RenewTime = &now
	if _, err := h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(h.ctx, l, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.sync()
}

func readyNode(name string, status corev1.ConditionStatus) *corev1.Node {
	hb := metav1.NewTime(t0)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: hb},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: status, Reason: "KubeletReady", LastHeartbeatTime: hb, LastTransitionTime: hb},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: hb, LastTransitionTime: hb},
		}},
	}
}

func lease(name string) *coordinationv1.Lease {
	now := metav1.NewMicroTime(t0)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, RenewTime: &now},
	}
}

func readyPod(name, node string, tolerations ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
}

func condStatus(n *corev1.Node, t corev1.NodeConditionType) (corev1.ConditionStatus, string) {
	if c := getCondition(&n.Status, t); c != nil {
		return c.Status, c.Reason
	}
	return "", ""
}

func podReadyStatus(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}

func TestSilentNodeBecomesUnknownTaintedAndRecovers(t *testing.T) {
	h := newHarness(t,
		readyNode("alive", corev1.ConditionTrue), lease("alive"),
		readyNode("dead", corev1.ConditionTrue), lease("dead"),
		readyPod("web", "dead"))
	h.monitor()
	if s, _ := condStatus(h.node("dead"), corev1.NodeReady); s != corev1.ConditionTrue {
		t.Fatalf("Ready=%s right away", s)
	}
	// Within the grace period nothing changes.
	h.clock.Step(30 * time.Second)
	h.heartbeat("alive")
	h.monitor()
	if s, _ := condStatus(h.node("dead"), corev1.NodeReady); s != corev1.ConditionTrue {
		t.Fatalf("Ready=%s within the grace period", s)
	}
	// Past it, the silent node is Unknown and its pods not Ready.
	h.clock.Step(15 * time.Second)
	h.heartbeat("alive")
	h.monitor()
	n := h.node("dead")
	for _, ct := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure} {
		if s, r := condStatus(n, ct); s != corev1.ConditionUnknown || r != reasonStatusUnknown {
			t.Errorf("%s=%s (%s), want Unknown (NodeStatusUnknown)", ct, s, r)
		}
	}
	if c := getCondition(&n.Status, corev1.NodeReady); c.Message != messageStatusUnknown || !c.LastHeartbeatTime.Time.Equal(t0) {
		t.Errorf("Ready condition %+v", c)
	}
	for _, ct := range []corev1.NodeConditionType{corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		if s, r := condStatus(n, ct); s != corev1.ConditionUnknown || r != reasonStatusNeverUpdated {
			t.Errorf("%s=%s (%s), want Unknown (NodeStatusNeverUpdated)", ct, s, r)
		}
	}
	if s, _ := condStatus(h.node("alive"), corev1.NodeReady); s != corev1.ConditionTrue {
		t.Errorf("the heartbeating node is %s", s)
	}
	p, _ := h.client.CoreV1().Pods("default").Get(h.ctx, "web", metav1.GetOptions{})
	if s := podReadyStatus(p); s != corev1.ConditionFalse {
		t.Errorf("pod on the silent node Ready=%s, want False", s)
	}
	// The next pass sees Unknown and taints the node NoExecute.
	h.clock.Step(5 * time.Second)
	h.heartbeat("alive")
	h.monitor()
	n = h.node("dead")
	if !hasTaint(n.Spec.Taints, unreachableTaint) {
		t.Fatalf("taints %v, want %s", n.Spec.Taints, unreachableTaint.ToString())
	}
	for _, tt := range n.Spec.Taints {
		if tt.Effect == corev1.TaintEffectNoExecute && tt.TimeAdded == nil {
			t.Errorf("NoExecute taint without timeAdded: %+v", tt)
		}
	}
	if hasTaint(h.node("alive").Spec.Taints, unreachableTaint) {
		t.Error("the healthy node was tainted")
	}
	// NoSchedule: the Unknown Ready condition calls for the unreachable
	// NoSchedule taint.
	if err := h.c.doNoScheduleTaintingPass(h.ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	h.sync()
	if !hasTaint(h.node("dead").Spec.Taints, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}) {
		t.Errorf("taints %v, want unreachable:NoSchedule", h.node("dead").Spec.Taints)
	}

	// The kubelet comes back: Ready again, NoExecute taints removed.
	n = h.node("dead")
	now := metav1.NewTime(h.clock.Now())
	for i := range n.Status.Conditions {
		n.Status.Conditions[i].Status = corev1.ConditionTrue
		n.Status.Conditions[i].LastHeartbeatTime = now
		n.Status.Conditions[i].LastTransitionTime = now
	}
	if _, err := h.client.CoreV1().Nodes().UpdateStatus(h.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.heartbeat("dead")
	h.heartbeat("alive")
	h.monitor()
	if n := h.node("dead"); hasTaint(n.Spec.Taints, unreachableTaint) || hasTaint(n.Spec.Taints, notReadyTaint) {
		t.Errorf("taints of the recovered node: %v", n.Spec.Taints)
	}
}

func TestNotReadyNodeGetsNotReadyTaint(t *testing.T) {
	h := newHarness(t, readyNode("a", corev1.ConditionTrue), lease("a"), readyNode("b", corev1.ConditionFalse), lease("b"))
	h.monitor()
	if n := h.node("b"); !hasTaint(n.Spec.Taints, notReadyTaint) || hasTaint(n.Spec.Taints, unreachableTaint) {
		t.Errorf("taints of the NotReady node: %v", n.Spec.Taints)
	}
	if n := h.node("a"); len(n.Spec.Taints) != 0 {
		t.Errorf("taints of the Ready node: %v", n.Spec.Taints)
	}
}

func TestEveryNodeDownStopsTainting(t *testing.T) {
	h := newHarness(t, readyNode("a", corev1.ConditionTrue), lease("a"), readyNode("b", corev1.ConditionTrue), lease("b"))
	h.monitor()
	h.clock.Step(time.Minute)
	h.monitor()
	h.clock.Step(5 * time.Second)
	h.monitor()
	for _, name := range []string{"a", "b"} {
		n := h.node(name)
		if s, _ := condStatus(n, corev1.NodeReady); s != corev1.ConditionUnknown {
			t.Errorf("%s: Ready=%s, want Unknown", name, s)
		}
		if len(noExecuteTaints(n.Spec.Taints)) != 0 {
			t.Errorf("%s: tainted %v although every node is down (master disruption mode)", name, n.Spec.Taints)
		}
	}
}

func TestZoneTaintingRate(t *testing.T) {
	tests := []struct {
		name      string
		dead      int
		at, after int // tainted nodes at once and 10s later
	}{
		// 2 of 5: a normal zone, tainted at 0.1 node/s (burst 1).
		{name: "normal zone", dead: 2, at: 1, after: 2},
		// 3 of 5 (>= 55%): partially disrupted; a small cluster stops.
		{name: "partial disruption", dead: 3, at: 0, after: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := []any{}
			for i := 0; i < 5; i++ {
				name := fmt.Sprintf("n%d", i)
				objs = append(objs, readyNode(name, corev1.ConditionTrue), lease(name))
			}
			h := newHarness(t, objs...)
			step := func(d time.Duration) {
				h.clock.Step(d)
				for i := tc.dead; i < 5; i++ {
					h.heartbeat(fmt.Sprintf("n%d", i))
				}
				h.monitor()
			}
			tainted := func() int {
				count := 0
				for i := 0; i < 5; i++ {
					if hasTaint(h.node(fmt.Sprintf("n%d", i)).Spec.Taints, unreachableTaint) {
						count++
					}
				}
				return count
			}
			step(0)
			step(time.Minute)
			step(time.Second)
			if got := tainted(); got != tc.at {
				t.Fatalf("%d nodes tainted at once, want %d", got, tc.at)
			}
			step(10 * time.Second)
			if got := tainted(); got != tc.after {
				t.Fatalf("%d nodes tainted 10s later, want %d", got, tc.after)
			}
		})
	}
}

func TestComputeZoneState(t *testing.T) {
	c := &Controller{cfg: Config{UnhealthyZoneThreshold: DefaultUnhealthyZoneThreshold}}
	cond := func(s corev1.ConditionStatus) *corev1.NodeCondition { return &corev1.NodeCondition{Status: s} }
	T, F, U := corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown
	tests := []struct {
		in   []corev1.ConditionStatus
		want zoneState
	}{
		{[]corev1.ConditionStatus{T, T}, stateNormal},
		{[]corev1.ConditionStatus{U}, stateFullDisruption},
		{[]corev1.ConditionStatus{U, F}, stateFullDisruption},
		{[]corev1.ConditionStatus{U, U, T}, stateNormal},
		{[]corev1.ConditionStatus{U, U, U, T}, statePartialDisruption},
		{[]corev1.ConditionStatus{U, U, U, T, T, T}, stateNormal},
	}
	for _, tc := range tests {
		var conds []*corev1.NodeCondition
		for _, s := range tc.in {
			conds = append(conds, cond(s))
		}
		if _, got := c.computeZoneState(conds); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNoScheduleTaints(t *testing.T) {
	ns := func(key string) corev1.Taint { return corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule} }
	tests := []struct {
		name          string
		conds         map[corev1.NodeConditionType]corev1.ConditionStatus
		unschedulable bool
		existing      []corev1.Taint
		want          []corev1.Taint
	}{
		{name: "healthy", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: corev1.ConditionTrue}},
		{name: "not ready", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: corev1.ConditionFalse},
			want: []corev1.Taint{ns(corev1.TaintNodeNotReady)}},
		{name: "unknown", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: corev1.ConditionUnknown},
			want: []corev1.Taint{ns(corev1.TaintNodeUnreachable)}},
		{name: "pressure", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{
			corev1.NodeReady: corev1.ConditionTrue, corev1.NodeMemoryPressure: corev1.ConditionTrue, corev1.NodeDiskPressure: corev1.ConditionTrue,
			corev1.NodePIDPressure: corev1.ConditionTrue, corev1.NodeNetworkUnavailable: corev1.ConditionTrue},
			want: []corev1.Taint{ns(corev1.TaintNodeMemoryPressure), ns(corev1.TaintNodeDiskPressure), ns(corev1.TaintNodePIDPressure), ns(corev1.TaintNodeNetworkUnavailable)}},
		{name: "unschedulable", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: corev1.ConditionTrue},
			unschedulable: true, want: []corev1.Taint{ns(corev1.TaintNodeUnschedulable)}},
		{name: "recovered: stale taints removed, others kept", conds: map[corev1.NodeConditionType]corev1.ConditionStatus{corev1.NodeReady: corev1.ConditionTrue},
			existing: []corev1.Taint{ns(corev1.TaintNodeNotReady), ns(corev1.TaintNodeUnschedulable), ns("example.com/mine"), unreachableTaint},
			want:     []corev1.Taint{ns("example.com/mine"), unreachableTaint}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Unschedulable: tc.unschedulable, Taints: tc.existing}}
			for _, ct := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeNetworkUnavailable} {
				if s, ok := tc.conds[ct]; ok {
					n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: ct, Status: s})
				}
			}
			h := newHarness(t, n)
			if err := h.c.doNoScheduleTaintingPass(h.ctx, "n"); err != nil {
				t.Fatal(err)
			}
			got := h.node("n").Spec.Taints
			if len(got) != len(tc.want) {
				t.Fatalf("taints %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !hasTaint(got, w) {
					t.Errorf("taints %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestMinTolerationTime(t *testing.T) {
	s := func(v int64) *int64 { return &v }
	tests := []struct {
		in   []corev1.Toleration
		want time.Duration
	}{
		{nil, 0},
		{[]corev1.Toleration{{}}, -1},
		{[]corev1.Toleration{{TolerationSeconds: s(30)}, {TolerationSeconds: s(10)}, {}}, 10 * time.Second},
		{[]corev1.Toleration{{TolerationSeconds: s(30)}, {TolerationSeconds: s(-5)}}, 0},
	}
	for _, tc := range tests {
		if got := minTolerationTime(tc.in); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestTaintEviction(t *testing.T) {
	secs := func(v int64) *int64 { return &v }
	unreachableFor := func(s *int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: s}
	}
	node := readyNode("n", corev1.ConditionUnknown)
	added := metav1.NewTime(t0)
	node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	h := newHarness(t, node,
		readyPod("intolerant", "n"),
		readyPod("tolerates-60s", "n", unreachableFor(secs(60))),
		readyPod("tolerates-forever", "n", unreachableFor(nil)),
		readyPod("elsewhere", "other"))
	process := func(name string) {
		t.Helper()
		if err := h.c.processPod(h.ctx, "default/"+name); err != nil {
			t.Fatal(err)
		}
		h.sync()
	}
	gone := func(name string) bool {
		_, err := h.client.CoreV1().Pods("default").Get(h.ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	for _, name := range []string{"intolerant", "tolerates-60s", "tolerates-forever", "elsewhere"} {
		process(name)
	}
	if !gone("intolerant") {
		t.Error("the pod not tolerating the taint was not deleted")
	}
	// The DisruptionTarget condition was written before the deletion.
	var sawCondition bool
	for _, a := range h.client.Actions() {
		up, ok := a.(k8stesting.UpdateAction)
		if !ok || a.GetSubresource() != "status" {
			continue
		}
		if p, ok := up.GetObject().(*corev1.Pod); ok && p.Name == "intolerant" {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == reasonDeletionByTaintManager && c.Message == messageDeletionByTaint {
					sawCondition = true
				}
			}
		}
	}
	if !sawCondition {
		t.Error("no DisruptionTarget condition (DeletionByTaintManager) was written")
	}
	if gone("tolerates-60s") || gone("tolerates-forever") || gone("elsewhere") {
		t.Fatal("a pod tolerating the taint (or on another node) was deleted")
	}
	// After 59s the tolerating pod stays; after 60s it goes.
	h.clock.Step(59 * time.Second)
	process("tolerates-60s")
	if gone("tolerates-60s") {
		t.Fatal("deleted before its tolerationSeconds")
	}
	h.clock.Step(time.Second)
	process("tolerates-60s")
	process("tolerates-forever")
	if !gone("tolerates-60s") {
		t.Error("not deleted after its tolerationSeconds")
	}
	if gone("tolerates-forever") {
		t.Error("a pod tolerating the taint forever was deleted")
	}
}

func TestTaintRemovedCancelsEviction(t *testing.T) {
	secs := int64(60)
	node := readyNode("n", corev1.ConditionUnknown)
	node.Spec.Taints = []corev1.Taint{unreachableTaint}
	h := newHarness(t, node, readyPod("p", "n", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs}))
	if err := h.c.processPod(h.ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.c.evictions["default/p"]; !ok {
		t.Fatal("no eviction scheduled")
	}
	n := h.node("n")
	n.Spec.Taints = nil
	if _, err := h.client.CoreV1().Nodes().Update(h.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sync()
	h.clock.Step(2 * time.Minute)
	if err := h.c.processPod(h.ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.c.evictions["default/p"]; ok {
		t.Error("eviction still scheduled after the taint was removed")
	}
	if _, err := h.client.CoreV1().Pods("default").Get(h.ctx, "p", metav1.GetOptions{}); err != nil {
		t.Errorf("pod deleted although the taint was removed: %v", err)
	}
}
