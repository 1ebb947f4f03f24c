package history

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

var parentKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

func parent() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "set-uid"}}
}

func TestNewControllerRevision(t *testing.T) {
	data := runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace"}}}`)}
	cr := NewControllerRevision(parent(), parentKind, map[string]string{"app": "web"}, data, 3, nil)
	hash := cr.Labels[ControllerRevisionHashLabel]
	if hash == "" || cr.Name != "web-"+hash {
		t.Errorf("name %q, hash label %q", cr.Name, hash)
	}
	if cr.Labels["app"] != "web" || cr.Revision != 3 || cr.Namespace != "ns" {
		t.Errorf("revision %+v", cr.ObjectMeta)
	}
	if ref := metav1.GetControllerOf(cr); ref == nil || ref.UID != "set-uid" || ref.Kind != "StatefulSet" {
		t.Errorf("controller %v", ref)
	}
	// The hash is of the data, and moves with the collision count.
	again := NewControllerRevision(parent(), parentKind, nil, data, 9, nil)
	if again.Name != cr.Name {
		t.Errorf("same data, names %s and %s", cr.Name, again.Name)
	}
	one := int32(1)
	if bumped := NewControllerRevision(parent(), parentKind, nil, data, 3, &one); bumped.Name == cr.Name {
		t.Error("the collision count does not change the name")
	}
	other := NewControllerRevision(parent(), parentKind, nil, runtime.RawExtension{Raw: []byte(`{}`)}, 3, nil)
	if other.Name == cr.Name {
		t.Error("different data, same name")
	}
}

func TestControllerRevisionName(t *testing.T) {
	long := strings.Repeat("x", 300)
	if got := ControllerRevisionName(long, "abc"); len(got) != 223+4 {
		t.Errorf("len %d, want the prefix cut to 223", len(got))
	}
	if got := ControllerRevisionName("web", "abc"); got != "web-abc" {
		t.Errorf("got %s", got)
	}
}

func rev(name string, revision int64, data string, created time.Time) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Revision:   revision,
		Data:       runtime.RawExtension{Raw: []byte(data)},
	}
}

func TestSortEqualNext(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	revs := []*appsv1.ControllerRevision{
		rev("c", 2, `{"a":1}`, t0), rev("b", 1, `{"a":2}`, t0.Add(time.Second)), rev("a", 1, `{"a":1}`, t0.Add(time.Second)), rev("d", 1, `{"a":3}`, t0),
	}
	SortControllerRevisions(revs)
	var order []string
	for _, r := range revs {
		order = append(order, r.Name)
	}
	if got := strings.Join(order, ""); got != "dabc" {
		t.Errorf("order %s, want dabc (revision, then creation, then name)", got)
	}
	if got := NextRevision(revs); got != 3 {
		t.Errorf("next %d", got)
	}
	if got := NextRevision(nil); got != 1 {
		t.Errorf("next of none %d", got)
	}
	eq := FindEqualRevisions(revs, rev("x", 7, `{"a":1}`, t0))
	if len(eq) != 2 || eq[0].Name != "a" || eq[1].Name != "c" {
		t.Errorf("equal revisions %v", eq)
	}
	if !EqualRevision(nil, nil) || EqualRevision(revs[0], nil) {
		t.Error("nil revisions")
	}
}

func TestCreateResolvesCollisions(t *testing.T) {
	p := parent()
	data := runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"x":1}}}`)}
	want := NewControllerRevision(p, parentKind, nil, data, 1, new(int32(0)))
	// Someone else's data under our name.
	squatter := want.DeepCopy()
	squatter.Data = runtime.RawExtension{Raw: []byte(`{"other":true}`)}
	client := fake.NewClientset(squatter)
	factory := informers.NewSharedInformerFactory(client, 0)
	h := New(client, factory.Apps().V1().ControllerRevisions().Lister())

	collisions := int32(0)
	created, err := h.Create(context.Background(), p, want, &collisions)
	if err != nil {
		t.Fatal(err)
	}
	if collisions != 1 || created.Name == want.Name || string(created.Data.Raw) != string(data.Raw) {
		t.Errorf("created %s (collisions %d), want a renamed revision", created.Name, collisions)
	}
	if created.Labels[ControllerRevisionHashLabel] != strings.TrimPrefix(created.Name, "web-") {
		t.Errorf("hash label %q for %s", created.Labels[ControllerRevisionHashLabel], created.Name)
	}
	// Creating the same data again finds it.
	again, err := h.Create(context.Background(), p, want, &collisions)
	if err != nil || again.Name != created.Name || collisions != 1 {
		t.Errorf("second create: %v, %v, collisions %d", again, err, collisions)
	}
	if _, err := h.Create(context.Background(), p, want, nil); err == nil {
		t.Error("a nil collision count was accepted")
	}
}

func TestListOwnedAndOrphans(t *testing.T) {
	p := parent()
	mk := func(name string, owner *metav1.OwnerReference) *appsv1.ControllerRevision {
		r := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}}}
		if owner != nil {
			r.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		return r
	}
	mine := metav1.NewControllerRef(p, parentKind)
	other := metav1.NewControllerRef(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: "other"}}, parentKind)
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Apps().V1().ControllerRevisions()
	for _, r := range []*appsv1.ControllerRevision{mk("mine", mine), mk("orphan", nil), mk("theirs", other)} {
		if err := inf.Informer().GetIndexer().Add(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := New(client, inf.Lister()).List(p, labels.SelectorFromSet(labels.Set{"app": "web"}))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range got {
		names[r.Name] = true
	}
	if len(names) != 2 || !names["mine"] || !names["orphan"] {
		t.Errorf("listed %v, want mine and orphan", names)
	}
}

func TestUpdateRevision(t *testing.T) {
	r := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns"}, Revision: 1}
	client := fake.NewClientset(r)
	h := New(client, informers.NewSharedInformerFactory(client, 0).Apps().V1().ControllerRevisions().Lister())
	out, err := h.UpdateRevision(context.Background(), r, 5)
	if err != nil || out.Revision != 5 {
		t.Fatalf("update: %v, %v", out, err)
	}
	stored, err := client.AppsV1().ControllerRevisions("ns").Get(context.Background(), "web-1", metav1.GetOptions{})
	if err != nil || stored.Revision != 5 {
		t.Fatalf("stored %v, %v", stored, err)
	}
	if err := h.Delete(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(context.Background(), stored); err != nil {
		t.Errorf("deleting a deleted revision: %v", err)
	}
}
