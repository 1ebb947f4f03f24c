package disruption

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	fakescale "k8s.io/client-go/scale/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

const ns = "ns"

var (
	now    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	labels = map[string]string{"app": "web"}
	widget = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
)

type fixture struct {
	client   *fake.Clientset
	scales   *fakescale.FakeScaleClient
	c        *Controller
	recorder *record.FakeRecorder
}

// newFixture builds a controller whose informer caches hold objs, with a
// Widget kind (example.com/v1) whose scale subresource answers from
// widgetScales.
func newFixture(t *testing.T, widgetScales map[string]int32, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(widget, meta.RESTScopeNamespace)
	mapper.Add(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), meta.RESTScopeNamespace)
	mapper.Add(widget.GroupVersion().WithKind("Gadget"), meta.RESTScopeNamespace) // no scale subresource
	scales := &fakescale.FakeScaleClient{}
	scales.AddReactor("get", "widgets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		name := a.(clienttesting.GetAction).GetName()
		n, ok := widgetScales[name]
		if !ok {
			return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "widgets"}, name)
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(name)},
			Spec: autoscalingv1.ScaleSpec{Replicas: n}}, nil
	})
	// The workloads' scales are not read through the scale client, but a
	// controller that is gone is looked for there too.
	scales.AddReactor("get", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), a.(clienttesting.GetAction).GetName())
	})
	client.Resources = []*metav1.APIResourceList{{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
		{Name: "widgets", Kind: "Widget", Namespaced: true}, {Name: "widgets/scale", Kind: "Scale", Group: "autoscaling", Version: "v1"},
		{Name: "gadgets", Kind: "Gadget", Namespaced: true},
	}}, {GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true}, {Name: "replicasets/scale", Kind: "Scale", Group: "autoscaling", Version: "v1"},
	}}}
	c, err := New(Config{Client: client, Informers: factory, Mapper: mapper, Scales: scales, Discovery: client.Discovery(),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	c.recorder = rec
	t.Cleanup(func() { c.queue.ShutDown(); c.recheck.ShutDown(); c.stale.ShutDown() })
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetStore().Add(o)
		case *policyv1.PodDisruptionBudget:
			err = factory.Policy().V1().PodDisruptionBudgets().Informer().GetStore().Add(o)
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetStore().Add(o)
		case *appsv1.Deployment:
			err = factory.Apps().V1().Deployments().Informer().GetStore().Add(o)
		case *appsv1.StatefulSet:
			err = factory.Apps().V1().StatefulSets().Informer().GetStore().Add(o)
		case *corev1.ReplicationController:
			err = factory.Core().V1().ReplicationControllers().Informer().GetStore().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &fixture{client: client, scales: scales, c: c, recorder: rec}
}

// written returns the PodDisruptionBudget status writes.
func (f *fixture) written() []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" && a.GetResource().Resource == "poddisruptionbudgets" {
			out = append(out, a.(clienttesting.UpdateAction).GetObject().(*policyv1.PodDisruptionBudget))
		}
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func ownedBy(kind, apiVersion, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(name), Controller: &yes}}
}

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func unready(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }

func deleting(p *corev1.Pod) { t := metav1.NewTime(now); p.DeletionTimestamp = &t }

func owner(kind, apiVersion, name string) podOpt {
	return func(p *corev1.Pod) { p.OwnerReferences = ownedBy(kind, apiVersion, name) }
}

func rs(name string, replicas int32, refs ...metav1.OwnerReference) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(name), OwnerReferences: refs},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
}

func pdb(mutate func(*policyv1.PodDisruptionBudget)) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "budget", Namespace: ns, Generation: 2},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	mutate(p)
	return p
}

func minAvailable(v intstr.IntOrString) func(*policyv1.PodDisruptionBudget) {
	return func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = &v }
}

func maxUnavailable(v intstr.IntOrString) func(*policyv1.PodDisruptionBudget) {
	return func(p *policyv1.PodDisruptionBudget) { p.Spec.MaxUnavailable = &v }
}

func TestStatus(t *testing.T) {
	three := int32(3)
	four := int32(4)
	type want struct {
		expected, healthy, desired, allowed int32
		reason                              string
		disrupted                           []string
	}
	tests := []struct {
		name      string
		pdb       *policyv1.PodDisruptionBudget
		objs      []runtime.Object
		want      want
		wantEvent string
	}{
		{
			name: "minAvailable int with room",
			pdb:  pdb(minAvailable(intstr.FromInt32(2))),
			objs: []runtime.Object{pod("a"), pod("b"), pod("c")},
			want: want{expected: 3, healthy: 3, desired: 2, allowed: 1, reason: policyv1.SufficientPodsReason},
		},
		{
			name: "minAvailable int equal to the pods",
			pdb:  pdb(minAvailable(intstr.FromInt32(3))),
			objs: []runtime.Object{pod("a"), pod("b"), pod("c")},
			want: want{expected: 3, healthy: 3, desired: 3, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name: "unready and terminating pods are not healthy",
			pdb:  pdb(minAvailable(intstr.FromInt32(1))),
			objs: []runtime.Object{pod("a"), pod("b", unready), pod("c", deleting), pod("other", func(p *corev1.Pod) { p.Labels = nil })},
			want: want{expected: 3, healthy: 1, desired: 1, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name:      "no pods",
			pdb:       pdb(minAvailable(intstr.FromInt32(0))),
			want:      want{reason: policyv1.InsufficientPodsReason},
			wantEvent: "Normal NoPods No matching pods found",
		},
		{
			name: "empty selector selects every pod",
			pdb: pdb(func(p *policyv1.PodDisruptionBudget) {
				p.Spec.Selector = &metav1.LabelSelector{}
				p.Spec.MinAvailable = &intstr.IntOrString{IntVal: 1}
			}),
			objs: []runtime.Object{pod("a"), pod("b", func(p *corev1.Pod) { p.Labels = map[string]string{"x": "y"} })},
			want: want{expected: 2, healthy: 2, desired: 1, allowed: 1, reason: policyv1.SufficientPodsReason},
		},
		{
			name: "nil selector selects none",
			pdb: pdb(func(p *policyv1.PodDisruptionBudget) {
				p.Spec.Selector = nil
				p.Spec.MinAvailable = &intstr.IntOrString{IntVal: 1}
			}),
			objs:      []runtime.Object{pod("a")},
			want:      want{desired: 1, reason: policyv1.InsufficientPodsReason},
			wantEvent: "Normal NoPods No matching pods found",
		},
		{
			name: "minAvailable percentage of a ReplicaSet",
			pdb:  pdb(minAvailable(intstr.FromString("50%"))),
			objs: []runtime.Object{rs("web", 4), pod("a", owner("ReplicaSet", "apps/v1", "web")),
				pod("b", owner("ReplicaSet", "apps/v1", "web")), pod("c", owner("ReplicaSet", "apps/v1", "web"))},
			want: want{expected: 4, healthy: 3, desired: 2, allowed: 1, reason: policyv1.SufficientPodsReason},
		},
		{
			name: "minAvailable percentage rounds up",
			pdb:  pdb(minAvailable(intstr.FromString("30%"))),
			objs: []runtime.Object{rs("web", 4), pod("a", owner("ReplicaSet", "apps/v1", "web")), pod("b", owner("ReplicaSet", "apps/v1", "web"))},
			want: want{expected: 4, healthy: 2, desired: 2, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name: "maxUnavailable of a Deployment",
			pdb:  pdb(maxUnavailable(intstr.FromInt32(1))),
			objs: []runtime.Object{
				&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "dep", Namespace: ns, UID: "dep"}, Spec: appsv1.DeploymentSpec{Replicas: &three}},
				rs("dep-1", 3, ownedBy("Deployment", "apps/v1", "dep")...),
				pod("a", owner("ReplicaSet", "apps/v1", "dep-1")), pod("b", owner("ReplicaSet", "apps/v1", "dep-1")),
				pod("c", owner("ReplicaSet", "apps/v1", "dep-1")),
			},
			want: want{expected: 3, healthy: 3, desired: 2, allowed: 1, reason: policyv1.SufficientPodsReason},
		},
		{
			name: "maxUnavailable percentage of a StatefulSet",
			pdb:  pdb(maxUnavailable(intstr.FromString("25%"))),
			objs: []runtime.Object{
				&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, UID: "db"}, Spec: appsv1.StatefulSetSpec{Replicas: &four}},
				pod("db-0", owner("StatefulSet", "apps/v1", "db")), pod("db-1", owner("StatefulSet", "apps/v1", "db")),
				pod("db-2", owner("StatefulSet", "apps/v1", "db")), pod("db-3", owner("StatefulSet", "apps/v1", "db")),
			},
			want: want{expected: 4, healthy: 4, desired: 3, allowed: 1, reason: policyv1.SufficientPodsReason},
		},
		{
			name: "maxUnavailable of a ReplicationController",
			pdb:  pdb(maxUnavailable(intstr.FromInt32(2))),
			objs: []runtime.Object{
				&corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: ns, UID: "rc"}, Spec: corev1.ReplicationControllerSpec{Replicas: &three}},
				pod("a", owner("ReplicationController", "v1", "rc")), pod("b", owner("ReplicationController", "v1", "rc"), unready),
			},
			want: want{expected: 3, healthy: 1, desired: 1, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name: "maxUnavailable of a custom controller through its scale",
			pdb:  pdb(maxUnavailable(intstr.FromString("50%"))),
			objs: []runtime.Object{pod("a", owner("Widget", "example.com/v1", "w")), pod("b", owner("Widget", "example.com/v1", "w"))},
			want: want{expected: 6, healthy: 2, desired: 3, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name: "two controllers add up",
			pdb:  pdb(maxUnavailable(intstr.FromInt32(1))),
			objs: []runtime.Object{rs("web", 2), pod("a", owner("ReplicaSet", "apps/v1", "web")), pod("b", owner("Widget", "example.com/v1", "w"))},
			want: want{expected: 8, healthy: 2, desired: 7, allowed: 0, reason: policyv1.InsufficientPodsReason},
		},
		{
			name:      "unmanaged pods with a percentage",
			pdb:       pdb(maxUnavailable(intstr.FromString("50%"))),
			objs:      []runtime.Object{rs("web", 2), pod("a", owner("ReplicaSet", "apps/v1", "web")), pod("b", owner("ReplicaSet", "apps/v1", "web")), pod("lone")},
			want:      want{expected: 2, healthy: 3, desired: 1, allowed: 2, reason: policyv1.SufficientPodsReason},
			wantEvent: "Warning UnmanagedPods Pods selected by this PodDisruptionBudget",
		},
		{
			name:      "controller gone: fail safe",
			pdb:       pdb(maxUnavailable(intstr.FromInt32(1))),
			objs:      []runtime.Object{pod("a", owner("ReplicaSet", "apps/v1", "gone"))},
			want:      want{reason: policyv1.SyncFailedReason},
			wantEvent: `Warning CalculateExpectedPodCountFailed Failed to calculate the number of expected pods: found no controllers for pod "a"`,
		},
		{
			name:      "controller without scale: fail safe",
			pdb:       pdb(maxUnavailable(intstr.FromInt32(1))),
			objs:      []runtime.Object{pod("a", owner("Widget", "example.com/v1", "no-such"))},
			want:      want{reason: policyv1.SyncFailedReason},
			wantEvent: "Warning CalculateExpectedPodCountFailed",
		},
		{
			name:      "controller kind without scale: fail safe",
			pdb:       pdb(minAvailable(intstr.FromString("50%"))),
			objs:      []runtime.Object{pod("a", owner("Gadget", "example.com/v1", "g"))},
			want:      want{reason: policyv1.SyncFailedReason},
			wantEvent: "Warning CalculateExpectedPodCountFailed Failed to calculate the number of expected pods: gadgets.example.com does not implement the scale subresource",
		},
		{
			name: "recent disruptions are not healthy; stale and finished ones are dropped",
			pdb: pdb(func(p *policyv1.PodDisruptionBudget) {
				p.Spec.MinAvailable = &intstr.IntOrString{IntVal: 1}
				p.Status.DisruptedPods = map[string]metav1.Time{
					"a":    metav1.NewTime(now.Add(-time.Minute)),     // recent: kept
					"b":    metav1.NewTime(now.Add(-3 * time.Minute)), // expired: dropped, counted
					"c":    metav1.NewTime(now.Add(-time.Minute)),     // deleting now: dropped
					"gone": metav1.NewTime(now.Add(-time.Minute)),     // no such pod: dropped
				}
			}),
			objs:      []runtime.Object{pod("a"), pod("b"), pod("c", deleting), pod("d")},
			want:      want{expected: 4, healthy: 2, desired: 1, allowed: 1, reason: policyv1.SufficientPodsReason, disrupted: []string{"a"}},
			wantEvent: "Warning NotDeleted Pod was expected by PDB ns/budget to be deleted but it wasn't",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]int32{"w": 6}, append([]runtime.Object{tt.pdb}, tt.objs...)...)
			_ = f.c.sync(context.Background(), ns+"/budget")
			w := f.written()
			if len(w) != 1 {
				t.Fatalf("%d status writes, want 1", len(w))
			}
			st := w[0].Status
			cond := meta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			if cond == nil || cond.Reason != tt.want.reason {
				t.Fatalf("condition %+v, want reason %s", cond, tt.want.reason)
			}
			if (cond.Status == metav1.ConditionTrue) != (tt.want.reason == policyv1.SufficientPodsReason) {
				t.Errorf("condition status %s with reason %s", cond.Status, cond.Reason)
			}
			if tt.want.reason == policyv1.SyncFailedReason {
				if st.DisruptionsAllowed != 0 || cond.Message == "" {
					t.Errorf("fail-safe status %+v", st)
				}
			} else {
				got := want{expected: st.ExpectedPods, healthy: st.CurrentHealthy, desired: st.DesiredHealthy,
					allowed: st.DisruptionsAllowed, reason: cond.Reason}
				for name := range st.DisruptedPods {
					got.disrupted = append(got.disrupted, name)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("status %+v, want %+v", got, tt.want)
				}
				if st.ObservedGeneration != 2 || cond.ObservedGeneration != 2 {
					t.Errorf("observedGeneration %d, condition's %d, want 2", st.ObservedGeneration, cond.ObservedGeneration)
				}
			}
			events := f.events()
			if tt.wantEvent != "" {
				found := false
				for _, e := range events {
					found = found || len(e) >= len(tt.wantEvent) && e[:len(tt.wantEvent)] == tt.wantEvent
				}
				if !found {
					t.Errorf("events %q, want one starting %q", events, tt.wantEvent)
				}
			}
		})
	}
}

// TestUpToDateNotWritten: a budget whose status is current is not written.
func TestUpToDateNotWritten(t *testing.T) {
	p := pdb(minAvailable(intstr.FromInt32(1)))
	f := newFixture(t, nil, p, pod("a"), pod("b"))
	if err := f.c.sync(context.Background(), ns+"/budget"); err != nil {
		t.Fatal(err)
	}
	w := f.written()
	if len(w) != 1 {
		t.Fatalf("%d writes, want 1", len(w))
	}
	f = newFixture(t, nil, w[0], pod("a"), pod("b"))
	if err := f.c.sync(context.Background(), ns+"/budget"); err != nil {
		t.Fatal(err)
	}
	if w := f.written(); len(w) != 0 {
		t.Errorf("current status written again: %+v", w[0].Status)
	}
}

// TestRecheckWhenDisruptionExpires: a kept disruptedPods entry makes the
// budget come back when it expires.
func TestRecheckWhenDisruptionExpires(t *testing.T) {
	p := pdb(func(p *policyv1.PodDisruptionBudget) {
		p.Spec.MinAvailable = &intstr.IntOrString{IntVal: 1}
		p.Status.DisruptedPods = map[string]metav1.Time{"a": metav1.NewTime(now.Add(-DefaultDeletionTimeout + 50*time.Millisecond))}
	})
	f := newFixture(t, nil, p, pod("a"), pod("b"))
	if err := f.c.sync(context.Background(), ns+"/budget"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		key, _ := f.c.recheck.Get()
		got <- key
	}()
	select {
	case key := <-got:
		if key != ns+"/budget" {
			t.Errorf("rechecked %q", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("budget not rechecked when its disruption entry expired")
	}
}

func TestStaleDisruptionCondition(t *testing.T) {
	cond := func(reason string, age time.Duration) podOpt {
		return func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
				Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(now.Add(-age))})
		}
	}
	tests := []struct {
		name      string
		pod       *corev1.Pod
		wantStale bool
		wantAfter time.Duration
		wantReset bool
	}{
		{name: "no condition", pod: pod("a")},
		{name: "fresh eviction", pod: pod("a", cond("EvictionByEvictionAPI", time.Minute)), wantStale: true, wantAfter: time.Minute},
		{name: "stale eviction", pod: pod("a", cond("EvictionByEvictionAPI", 3*time.Minute)), wantStale: true, wantReset: true},
		{name: "set by the node", pod: pod("a", cond(corev1.PodReasonTerminationByKubelet, time.Hour))},
		{name: "being deleted", pod: pod("a", cond("EvictionByEvictionAPI", time.Hour), deleting)},
		{name: "finished", pod: pod("a", cond("EvictionByEvictionAPI", time.Hour), func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, tt.pod)
			stale, after := f.c.staleDisruptionCondition(tt.pod)
			if stale != tt.wantStale || after != tt.wantAfter {
				t.Errorf("stale %v after %v, want %v after %v", stale, after, tt.wantStale, tt.wantAfter)
			}
			if err := f.c.syncStalePod(context.Background(), ns+"/a"); err != nil {
				t.Fatal(err)
			}
			var reset *corev1.Pod
			for _, a := range f.client.Actions() {
				if a.GetVerb() == "update" && a.GetSubresource() == "status" {
					reset = a.(clienttesting.UpdateAction).GetObject().(*corev1.Pod)
				}
			}
			if (reset != nil) != tt.wantReset {
				t.Fatalf("reset %v, want %v", reset != nil, tt.wantReset)
			}
			if reset != nil {
				c := podCondition(reset, corev1.DisruptionTarget)
				if c == nil || c.Status != corev1.ConditionFalse || !podReady(reset) {
					t.Errorf("conditions after reset: %+v", reset.Status.Conditions)
				}
			}
		})
	}
}

// TestPodChangeQueuesEveryBudget: a pod change queues each budget over it,
// with a Warning event when there are several.
func TestPodChangeQueuesEveryBudget(t *testing.T) {
	second := pdb(minAvailable(intstr.FromInt32(1)))
	second.Name = "second"
	f := newFixture(t, nil, pdb(minAvailable(intstr.FromInt32(1))), second)
	f.c.podChanged(pod("a"), true)
	if n := f.c.queue.Len(); n != 2 {
		t.Errorf("%d budgets queued, want 2", n)
	}
	if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning MultiplePodDisruptionBudgets") {
		t.Errorf("events %q", ev)
	}
	f.c.podChanged(pod("b", func(p *corev1.Pod) { p.Labels = nil }), true)
	if n := f.c.queue.Len(); n != 2 {
		t.Errorf("%d budgets queued after an unselected pod changed, want 2", n)
	}
}

// TestUnservedWorkloadsNotWatched: workloads the server does not serve get
// no informer (one would never sync, and the controller never start).
func TestUnservedWorkloadsNotWatched(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Served: []schema.GroupVersionResource{
		appsv1.SchemeGroupVersion.WithResource("replicasets"), appsv1.SchemeGroupVersion.WithResource("deployments"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.rcLister != nil || c.ssLister != nil || c.rsLister == nil || c.dLister == nil {
		t.Errorf("listers rc=%v ss=%v rs=%v d=%v", c.rcLister != nil, c.ssLister != nil, c.rsLister != nil, c.dLister != nil)
	}
	if n := len(c.synced); n != 4 {
		t.Errorf("%d informers waited for, want pods, budgets, replicasets, deployments", n)
	}
	cs, err := c.replicationController(context.Background(), &ownedBy("ReplicationController", "v1", "rc")[0], ns)
	if cs != nil || err != nil {
		t.Errorf("replicationController finder without informer: %v, %v", cs, err)
	}
}
