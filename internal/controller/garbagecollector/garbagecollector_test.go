package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

var (
	configMaps      = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	namespaces      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	priorityClasses = schema.GroupVersionResource{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"}
	events          = schema.GroupVersionResource{Version: "v1", Resource: "events"}
)

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	add := func(gvr schema.GroupVersionResource, kind, singular string, scope meta.RESTScope) {
		m.AddSpecific(gvr.GroupVersion().WithKind(kind), gvr, gvr.GroupVersion().WithResource(singular), scope)
	}
	add(configMaps, "ConfigMap", "configmap", meta.RESTScopeNamespace)
	add(namespaces, "Namespace", "namespace", meta.RESTScopeRoot)
	add(priorityClasses, "PriorityClass", "priorityclass", meta.RESTScopeRoot)
	add(events, "Event", "event", meta.RESTScopeNamespace)
	return m
}

// pom is an object's metadata as the metadata client serves it.
func pom(id objectReference, mods ...func(*metav1.PartialObjectMetadata)) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: id.APIVersion, Kind: id.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name, UID: id.UID, ResourceVersion: "1"},
	}
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func owners(refs ...metav1.OwnerReference) func(*metav1.PartialObjectMetadata) {
	return func(m *metav1.PartialObjectMetadata) { m.OwnerReferences = refs }
}

func beingDeleted(finalizers ...string) func(*metav1.PartialObjectMetadata) {
	return func(m *metav1.PartialObjectMetadata) {
		now := metav1.Now()
		m.DeletionTimestamp = &now
		m.Finalizers = finalizers
	}
}

func observedFrom(m *metav1.PartialObjectMetadata) *observedObject {
	return &observedObject{
		identity: objectReference{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID},
		owners:   m.OwnerReferences, deletionTimestamp: m.DeletionTimestamp != nil, finalizers: m.Finalizers,
	}
}

// describe renders the writes the collector made.
func describe(actions []clienttesting.Action) []string {
	var out []string
	for _, a := range actions {
		where := a.GetNamespace() + "/"
		switch a := a.(type) {
		case clienttesting.DeleteActionImpl:
			uid := ""
			if p := a.DeleteOptions.Preconditions; p != nil && p.UID != nil {
				uid = string(*p.UID)
			}
			out = append(out, fmt.Sprintf("delete %s %s%s uid=%s %s", a.Resource.Resource, where, a.Name, uid, *a.DeleteOptions.PropagationPolicy))
		case clienttesting.PatchActionImpl:
			out = append(out, fmt.Sprintf("patch %s %s%s %s %s", a.Resource.Resource, where, a.Name, a.PatchType, a.Patch))
		}
	}
	return out
}

func drain(q interface {
	Len() int
	Get() (types.UID, bool)
	Done(types.UID)
}) []types.UID {
	var out []types.UID
	for q.Len() > 0 {
		uid, _ := q.Get()
		q.Done(uid)
		out = append(out, uid)
	}
	slices.Sort(out)
	return out
}

func TestAttemptToDelete(t *testing.T) {
	ns := cmID("", "ns", "ns-uid")
	ns.APIVersion, ns.Kind = "v1", "Namespace"
	ghost := cmID("ns", "ghost", "ghost-uid")
	const (
		uidTest = `{"op":"test","path":"/metadata/uid","value":"%s"}`
	)
	tests := []struct {
		name string
		// objects exist in the API and were observed, except unobserved.
		objects    []*metav1.PartialObjectMetadata
		unobserved []*metav1.PartialObjectMetadata
		item       types.UID
		orphan     bool // process item from the orphan queue

		writes []string
		queued []types.UID
		// gets is how many lookups are made; nil: not checked.
		gets *int
		// after is what configmaps in ns look like afterwards: "NAME
		// refs" (owner UIDs) or "NAME finalizers", comma-separated.
		after   map[string]string
		requeue bool
	}{
		{
			name:    "a dependent whose owner never existed is deleted in the background",
			objects: []*metav1.PartialObjectMetadata{pom(dep, owners(ownerRef(ghost, true)))},
			item:    dep.UID,
			writes:  []string{"delete configmaps ns/dep uid=dep-uid Background"},
			gets:    ptr.To(2),
		},
		{
			name: "a dependent whose owner's name has another UID is deleted",
			objects: []*metav1.PartialObjectMetadata{
				pom(cmID("ns", "owner", "another-uid")),
				pom(dep, owners(ownerRef(owner, false))),
			},
			item:   dep.UID,
			writes: []string{"delete configmaps ns/dep uid=dep-uid Background"},
			gets:   ptr.To(2),
		},
		{
			name: "a dependent of an owner in another namespace is deleted",
			objects: []*metav1.PartialObjectMetadata{
				pom(other),
				pom(dep, owners(ownerRef(owner, false))),
			},
			item:   dep.UID,
			writes: []string{"delete configmaps ns/dep uid=dep-uid Background"},
			gets:   ptr.To(2),
		},
		{
			name: "a dependent of an existing owner stays",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner),
				pom(dep, owners(ownerRef(owner, false))),
			},
			item: dep.UID,
			gets: ptr.To(2),
		},
		{
			name: "a dependent of an owner being orphaned stays",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerOrphanDependents)),
				pom(dep, owners(ownerRef(owner, false))),
			},
			item: dep.UID,
			gets: ptr.To(2),
		},
		{
			name: "a dependent of an existing and a missing owner loses the missing one",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner),
				pom(dep, owners(ownerRef(ghost, false), ownerRef(owner, true), ownerRef(cmID("ns", "g2", "g2-uid"), false))),
			},
			item: dep.UID,
			writes: []string{`patch configmaps ns/dep application/json-patch+json [` + fmt.Sprintf(uidTest, "dep-uid") +
				`,{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"g2-uid"},{"op":"remove","path":"/metadata/ownerReferences/2"}` +
				`,{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"ghost-uid"},{"op":"remove","path":"/metadata/ownerReferences/0"}]`},
			after: map[string]string{"dep refs": "owner-uid"},
		},
		{
			name: "a leaf dependent of an owner deleting its dependents is deleted in the background",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerDeleteDependents)),
				pom(dep, owners(ownerRef(owner, true))),
			},
			item:   dep.UID,
			writes: []string{"delete configmaps ns/dep uid=dep-uid Background"},
		},
		{
			name: "a dependent with dependents of an owner deleting its dependents is deleted in the foreground",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerDeleteDependents)),
				pom(dep, owners(ownerRef(owner, true))),
				pom(grand, owners(ownerRef(dep, true))),
			},
			item:   dep.UID,
			writes: []string{"delete configmaps ns/dep uid=dep-uid Foreground"},
		},
		{
			name: "a possible foreground cycle is broken by unblocking the owners first",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerDeleteDependents)),
				pom(dep, owners(ownerRef(owner, true))),
				pom(grand, owners(ownerRef(dep, true)), beingDeleted(metav1.FinalizerDeleteDependents)),
			},
			item: dep.UID,
			writes: []string{
				`patch configmaps ns/dep application/json-patch+json [` + fmt.Sprintf(uidTest, "dep-uid") +
					`,{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"owner-uid"},{"op":"replace","path":"/metadata/ownerReferences/0/blockOwnerDeletion","value":false}]`,
				"delete configmaps ns/dep uid=dep-uid Foreground",
			},
		},
		{
			name: "an owner deleting its dependents waits for a blocking one, and queues it",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerDeleteDependents)),
				pom(dep, owners(ownerRef(owner, true))),
				pom(dep2, owners(ownerRef(owner, false))),
			},
			item:   owner.UID,
			queued: []types.UID{dep.UID},
			gets:   ptr.To(1),
		},
		{
			name: "an owner deleting its dependents loses the finalizer when none blocks it",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted("a", metav1.FinalizerDeleteDependents, "b")),
				pom(dep2, owners(ownerRef(owner, false))),
			},
			item: owner.UID,
			writes: []string{`patch configmaps ns/owner application/json-patch+json [` + fmt.Sprintf(uidTest, "owner-uid") +
				`,{"op":"test","path":"/metadata/finalizers/1","value":"foregroundDeletion"},{"op":"remove","path":"/metadata/finalizers/1"}]`},
			after: map[string]string{"owner finalizers": "a,b"},
		},
		{
			name:    "an object being deleted otherwise is left alone, unread",
			objects: []*metav1.PartialObjectMetadata{pom(dep, owners(ownerRef(ghost, true)), beingDeleted("x"))},
			item:    dep.UID,
			gets:    ptr.To(0),
		},
		{
			name:    "an object without owners is left alone",
			objects: []*metav1.PartialObjectMetadata{pom(dep)},
			item:    dep.UID,
			gets:    ptr.To(1),
		},
		{
			name: "a cluster-scoped object with a namespaced owner is left alone",
			objects: []*metav1.PartialObjectMetadata{
				pom(cmID("", "owner", "owner-uid")),
				pom(cluster, owners(ownerRef(ghost, true))),
			},
			item: cluster.UID,
			gets: ptr.To(1),
		},
		{
			name:    "a cluster-scoped object with an absent cluster-scoped owner is deleted",
			objects: []*metav1.PartialObjectMetadata{pom(cluster, owners(ownerRef(ns, true)))},
			item:    cluster.UID,
			writes:  []string{"delete priorityclasses /pc uid=pc-uid Background"},
		},
		{
			name:    "a virtual owner found absent has its dependents queued",
			objects: []*metav1.PartialObjectMetadata{pom(dep, owners(ownerRef(ghost, true)))},
			item:    ghost.UID,
			queued:  []types.UID{dep.UID},
			gets:    ptr.To(1),
		},
		{
			name:       "a virtual owner that exists is looked at again later",
			objects:    []*metav1.PartialObjectMetadata{pom(dep, owners(ownerRef(owner, true)))},
			unobserved: []*metav1.PartialObjectMetadata{pom(owner)},
			item:       owner.UID,
			gets:       ptr.To(1),
			requeue:    true,
		},
		{
			name: "an item no longer in the graph is dropped",
			item: "nothing",
			gets: ptr.To(0),
		},
		{
			name: "orphaning removes the references, then the finalizer",
			objects: []*metav1.PartialObjectMetadata{
				pom(owner, beingDeleted(metav1.FinalizerOrphanDependents)),
				pom(dep, owners(ownerRef(owner, true))),
				pom(dep2, owners(ownerRef(ghost, false), ownerRef(owner, false))),
			},
			item:   owner.UID,
			orphan: true,
			writes: []string{
				`patch configmaps ns/dep application/json-patch+json [` + fmt.Sprintf(uidTest, "dep-uid") +
					`,{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"owner-uid"},{"op":"remove","path":"/metadata/ownerReferences/0"}]`,
				`patch configmaps ns/dep2 application/json-patch+json [` + fmt.Sprintf(uidTest, "dep2-uid") +
					`,{"op":"test","path":"/metadata/ownerReferences/1/uid","value":"owner-uid"},{"op":"remove","path":"/metadata/ownerReferences/1"}]`,
				`patch configmaps ns/owner application/json-patch+json [` + fmt.Sprintf(uidTest, "owner-uid") +
					`,{"op":"test","path":"/metadata/finalizers/0","value":"orphan"},{"op":"remove","path":"/metadata/finalizers/0"}]`,
			},
			after: map[string]string{"dep refs": "", "dep2 refs": "ghost-uid", "owner finalizers": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			metav1.AddMetaToScheme(scheme)
			var objs []runtime.Object
			for _, o := range append(append([]*metav1.PartialObjectMetadata(nil), tc.objects...), tc.unobserved...) {
				objs = append(objs, o.DeepCopy())
			}
			client := metadatafake.NewSimpleMetadataClient(scheme, objs...)
			c, err := New(client, []schema.GroupVersionResource{configMaps, priorityClasses, namespaces, events}, testMapper())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.informers) != 3 {
				t.Errorf("%d informers, want 3 (events are ignored)", len(c.informers))
			}
			for _, o := range tc.objects {
				c.graph.observe(nil, observedFrom(o))
			}
			drain(c.attemptToDelete)
			drain(c.attemptToOrphan)
			client.ClearActions()

			process := c.attemptToDeleteItem
			if tc.orphan {
				process = c.attemptToOrphanItem
			}
			requeue, err := process(context.Background(), tc.item)
			if err != nil {
				t.Fatal(err)
			}
			if requeue != tc.requeue {
				t.Errorf("requeue = %v, want %v", requeue, tc.requeue)
			}
			actions := client.Actions()
			if got := describe(actions); !slices.Equal(got, tc.writes) {
				t.Errorf("writes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.writes, "\n     "))
			}
			if tc.gets != nil {
				gets := 0
				for _, a := range actions {
					if a.GetVerb() == "get" {
						gets++
					}
				}
				if gets != *tc.gets {
					t.Errorf("%d lookups, want %d", gets, *tc.gets)
				}
			}
			if got := drain(c.attemptToDelete); !slices.Equal(got, tc.queued) {
				t.Errorf("queued %v, want %v", got, tc.queued)
			}
			for what, want := range tc.after {
				name, field, _ := strings.Cut(what, " ")
				m, err := client.Resource(configMaps).Namespace("ns").Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				if field == "refs" {
					for _, r := range m.OwnerReferences {
						got = append(got, string(r.UID))
					}
				} else {
					got = m.Finalizers
				}
				if g := strings.Join(got, ","); g != want {
					t.Errorf("%s afterwards: %q, want %q", what, g, want)
				}
			}
		})
	}
}

// TestHandler checks that informer events reach the graph, tombstones
// included, and that slim keeps what the graph needs only.
func TestHandler(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	c, err := New(metadatafake.NewSimpleMetadataClient(scheme), []schema.GroupVersionResource{configMaps}, testMapper())
	if err != nil {
		t.Fatal(err)
	}
	h := c.handler(configMaps.GroupVersion().WithKind("ConfigMap"))
	full := pom(dep, owners(ownerRef(owner, true)), beingDeleted("f"))
	full.Labels = map[string]string{"a": "b"}
	full.Annotations = map[string]string{"big": strings.Repeat("x", 1000)}
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m"}}
	slimmed, _ := slim(full)
	s := slimmed.(*metav1.PartialObjectMetadata)
	if s.Labels != nil || s.Annotations != nil || s.ManagedFields != nil || s.UID != dep.UID ||
		s.DeletionTimestamp == nil || !reflect.DeepEqual(s.Finalizers, []string{"f"}) || len(s.OwnerReferences) != 1 {
		t.Errorf("slim kept %+v", s.ObjectMeta)
	}

	h.OnAdd(s, false)
	if got, ok := c.graph.snapshot(dep.UID); !ok || got.identity != dep || !got.beingDeleted {
		t.Fatalf("after add: %+v, %v", got, ok)
	}
	if _, ok := c.graph.snapshot(owner.UID); !ok {
		t.Fatal("no virtual owner after add")
	}
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/dep", Obj: s})
	if _, ok := c.graph.snapshot(dep.UID); ok {
		t.Error("dependent still in the graph after a tombstone")
	}
	if n := c.graph.len(); n != 0 {
		t.Errorf("%d nodes left, want 0", n)
	}
}

// TestPatchLiveRetries checks that a patch whose tests fail (the object
// changed meanwhile) is rebuilt from a fresh read, a bounded number of
// times.
func TestPatchLiveRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		wantErr  bool
	}{
		{name: "succeeds after changes", failures: 2},
		{name: "gives up", failures: patchAttempts, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			metav1.AddMetaToScheme(scheme)
			client := metadatafake.NewSimpleMetadataClient(scheme, pom(owner, beingDeleted(metav1.FinalizerDeleteDependents)))
			failed := 0
			client.PrependReactor("patch", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
				if failed < tc.failures {
					failed++
					return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, owner.Name, nil)
				}
				return false, nil, nil
			})
			c, err := New(client, []schema.GroupVersionResource{configMaps}, testMapper())
			if err != nil {
				t.Fatal(err)
			}
			err = c.removeFinalizer(context.Background(), owner, metav1.FinalizerDeleteDependents)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			gets, patches := 0, 0
			for _, a := range client.Actions() {
				switch a.GetVerb() {
				case "get":
					gets++
				case "patch":
					patches++
				}
			}
			want := min(tc.failures+1, patchAttempts)
			if gets != want || patches != want {
				t.Errorf("%d reads and %d patches, want %d of each", gets, patches, want)
			}
		})
	}
}

// TestUnknownKind checks that a reference to a kind the mapper does not
// know neither deletes the dependent nor counts as absent: it is retried.
func TestUnknownKind(t *testing.T) {
	widget := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "widget-uid"}
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	d := pom(dep, owners(widget))
	client := metadatafake.NewSimpleMetadataClient(scheme, d)
	c, err := New(client, []schema.GroupVersionResource{configMaps}, testMapper())
	if err != nil {
		t.Fatal(err)
	}
	c.graph.observe(nil, observedFrom(d))
	for _, uid := range []types.UID{widget.UID, dep.UID} {
		_, err := c.attemptToDeleteItem(context.Background(), uid)
		var unknown *unknownKindError
		if !errors.As(err, &unknown) {
			t.Errorf("processing %s: got %v, want an unknown kind error", uid, err)
		}
	}
	if got := describe(client.Actions()); len(got) != 0 {
		t.Errorf("writes %v, want none", got)
	}
	if _, ok := c.graph.snapshot(widget.UID); !ok {
		t.Error("the virtual owner of an unknown kind was dropped")
	}
}
