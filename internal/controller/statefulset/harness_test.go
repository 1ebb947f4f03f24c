package statefulset

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// harness runs the controller's sync against a fake clientset. Before each
// sync the listers are refilled from the clientset, so that every sync sees
// what the previous ones wrote (as informers eventually would).
type harness struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	c       *Controller
	uid     atomic.Int64
	clock   time.Time
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(objs...), clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	// What the API server does on create: uid, creation time, and the
	// pending phase of a new pod.
	h.client.PrependReactor("create", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		obj := action.(k8stesting.CreateAction).GetObject()
		acc, err := metaOf(obj)
		if err != nil {
			return false, nil, nil
		}
		if acc.GetUID() == "" {
			acc.SetUID(types.UID(fmt.Sprintf("uid-%d", h.uid.Add(1))))
		}
		acc.SetCreationTimestamp(metav1.NewTime(h.clock))
		if pod, ok := obj.(*corev1.Pod); ok && pod.Status.Phase == "" {
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

func metaOf(obj runtime.Object) (metav1.Object, error) {
	if o, ok := obj.(metav1.Object); ok {
		return o, nil
	}
	return nil, fmt.Errorf("%T has no metadata", obj)
}

// refresh refills every lister from the clientset.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	fill := func(inf cache.SharedIndexInformer, list runtime.Object, err error) {
		h.t.Helper()
		if err != nil {
			h.t.Fatal(err)
		}
		var items []any
		switch l := list.(type) {
		case *corev1.PodList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *corev1.PersistentVolumeClaimList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *appsv1.StatefulSetList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *appsv1.ControllerRevisionList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		}
		if err := inf.GetIndexer().Replace(items, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	pods, err := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	fill(h.factory.Core().V1().Pods().Informer(), pods, err)
	claims, err := h.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	fill(h.factory.Core().V1().PersistentVolumeClaims().Informer(), claims, err)
	sets, err := h.client.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	fill(h.factory.Apps().V1().StatefulSets().Informer(), sets, err)
	revs, err := h.client.AppsV1().ControllerRevisions("").List(ctx, metav1.ListOptions{})
	fill(h.factory.Apps().V1().ControllerRevisions().Informer(), revs, err)
}

// sync refreshes the listers and syncs the set once.
func (h *harness) sync(set string) error {
	h.t.Helper()
	h.refresh()
	return h.c.sync(context.Background(), "default/"+set)
}

func (h *harness) mustSync(set string) {
	h.t.Helper()
	if err := h.sync(set); err != nil {
		h.t.Fatalf("sync %s: %v", set, err)
	}
}

// syncUntilStable syncs until a sync writes nothing (at most n times).
func (h *harness) syncUntilStable(set string, n int) {
	h.t.Helper()
	for range n {
		before := len(h.client.Actions())
		h.mustSync(set)
		if writes(h.client.Actions()[before:]) == 0 {
			return
		}
	}
	h.t.Fatalf("statefulset %s still changing after %d syncs", set, n)
}

func writes(actions []k8stesting.Action) int {
	n := 0
	for _, a := range actions {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			n++
		}
	}
	return n
}

func (h *harness) set(name string) *appsv1.StatefulSet {
	h.t.Helper()
	s, err := h.client.AppsV1().StatefulSets("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// updateSet changes a set as a user would, bumping its generation.
func (h *harness) updateSet(name string, change func(*appsv1.StatefulSet)) {
	h.t.Helper()
	s := h.set(name)
	change(s)
	s.Generation++
	if _, err := h.client.AppsV1().StatefulSets("default").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// podNames returns the names of the pods in default, sorted.
func (h *harness) podNames() []string {
	h.t.Helper()
	var names []string
	for _, p := range h.pods() {
		names = append(names, p.Name)
	}
	return names
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

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) claim(name string) *corev1.PersistentVolumeClaim {
	h.t.Helper()
	c, err := h.client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
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

// ready plays the kubelet: the pods run and are ready.
func (h *harness) ready(names ...string) {
	h.t.Helper()
	for _, n := range names {
		p := h.pod(n)
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(h.clock)}}
		if _, err := h.client.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
	}
}

// readyAll makes every pod ready.
func (h *harness) readyAll() {
	h.t.Helper()
	h.ready(h.podNames()...)
}

// allReady reports whether every pod runs and is ready.
func (h *harness) allReady() bool {
	h.t.Helper()
	for _, p := range h.pods() {
		if !isRunningAndReady(&p) {
			return false
		}
	}
	return true
}

// newSet returns a defaulted set of n replicas labelled app=name.
func newSet(name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("set-" + name), Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			ServiceName:         name,
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(0))},
			},
			RevisionHistoryLimit: new(int32(10)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "img:1"}},
				},
			},
		},
	}
}

// withClaims adds a volume claim template named data.
func withClaims(s *appsv1.StatefulSet) *appsv1.StatefulSet {
	s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	return s
}
