package daemonset

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// harness runs the controller's sync against a fake clientset; the
// listers are refilled from it before each sync.
type harness struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	c       *Controller
	seq     atomic.Int64
	clock   time.Time
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(objs...), clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	// What the API server does on create: a generated name, uid, creation
	// time, and the pending phase of a new pod.
	h.client.PrependReactor("create", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		acc, ok := action.(k8stesting.CreateAction).GetObject().(metav1.Object)
		if !ok {
			return false, nil, nil
		}
		n := h.seq.Add(1)
		if acc.GetName() == "" && acc.GetGenerateName() != "" {
			acc.SetName(fmt.Sprintf("%s%05d", acc.GetGenerateName(), n))
		}
		if acc.GetUID() == "" {
			acc.SetUID(types.UID(fmt.Sprintf("uid-%d", n)))
		}
		// Later objects are younger.
		acc.SetCreationTimestamp(metav1.NewTime(h.clock.Add(time.Duration(n) * time.Millisecond)))
		if pod, ok := acc.(*corev1.Pod); ok && pod.Status.Phase == "" {
			pod.Status.Phase = corev1.PodPending
		}
		return false, nil, nil
	})
	h.factory = informers.NewSharedInformerFactory(h.client, 0)
	c, err := New(h.client, h.factory)
	if err != nil {
		t.Fatal(err)
	}
	c.recorder = record.NewFakeRecorder(1000)
	c.now = func() time.Time { return h.clock }
	h.c = c
	return h
}

// refresh refills every lister from the clientset.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	replace := func(inf cache.SharedIndexInformer, items []any, err error) {
		h.t.Helper()
		if err != nil {
			h.t.Fatal(err)
		}
		if err := inf.GetIndexer().Replace(items, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	pods, err := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	replace(h.factory.Core().V1().Pods().Informer(), ptrs(pods.Items), err)
	nodes, err := h.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	replace(h.factory.Core().V1().Nodes().Informer(), ptrs(nodes.Items), err)
	sets, err := h.client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	replace(h.factory.Apps().V1().DaemonSets().Informer(), ptrs(sets.Items), err)
	revs, err := h.client.AppsV1().ControllerRevisions("").List(ctx, metav1.ListOptions{})
	replace(h.factory.Apps().V1().ControllerRevisions().Informer(), ptrs(revs.Items), err)
}

func ptrs[T any](items []T) []any {
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// sync refreshes the listers and syncs the set, counting every write as
// observed (the informers would deliver them).
func (h *harness) sync(name string) error {
	h.t.Helper()
	h.refresh()
	h.c.expectations.forget("default/" + name)
	return h.c.sync(context.Background(), "default/"+name)
}

func (h *harness) mustSync(name string) {
	h.t.Helper()
	if err := h.sync(name); err != nil {
		h.t.Fatalf("sync %s: %v", name, err)
	}
}

func (h *harness) ds(name string) *appsv1.DaemonSet {
	h.t.Helper()
	ds, err := h.client.AppsV1().DaemonSets("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

// updateDS changes a set as a user would, bumping its generation.
func (h *harness) updateDS(name string, change func(*appsv1.DaemonSet)) {
	h.t.Helper()
	ds := h.ds(name)
	change(ds)
	ds.Generation++
	if _, err := h.client.AppsV1().DaemonSets("default").Update(context.Background(), ds, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) pods() []corev1.Pod {
	h.t.Helper()
	l, err := h.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// podsByNode maps target nodes to pod names.
func (h *harness) podsByNode() map[string][]string {
	h.t.Helper()
	out := map[string][]string{}
	for _, p := range h.pods() {
		node, err := targetNode(&p)
		if err != nil {
			h.t.Fatal(err)
		}
		out[node] = append(out[node], p.Name)
	}
	return out
}

// kubelet plays the scheduler and kubelets: pods are bound to the node
// their affinity names, run and are ready. It returns how many pods it
// changed.
func (h *harness) kubelet() int {
	h.t.Helper()
	changed := 0
	for _, p := range h.pods() {
		if p.Status.Phase == corev1.PodRunning && podReady(&p) {
			continue
		}
		node, err := targetNode(&p)
		if err != nil {
			h.t.Fatal(err)
		}
		p.Spec.NodeName = node
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(h.clock)}}
		if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		changed++
	}
	return changed
}

func (h *harness) revisions() []appsv1.ControllerRevision {
	h.t.Helper()
	l, err := h.client.AppsV1().ControllerRevisions("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Revision < l.Items[j].Revision })
	return l.Items
}

func node(name string, change ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("node-" + name), Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for _, f := range change {
		f(n)
	}
	return n
}

func tainted(key string, effect corev1.TaintEffect) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect})
	}
}

func labelled(k, v string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Labels[k] = v }
}

// newDS returns a defaulted daemon set labelled app=name.
func newDS(name string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("ds-" + name), Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0)),
				},
			},
			RevisionHistoryLimit: new(int32(10)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}},
			},
		},
	}
}
