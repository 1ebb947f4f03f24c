package garbagecollector

import (
	"reflect"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// recordingQueue records what the graph queues.
type recordingQueue struct{ added, rateLimited []types.UID }

func (q *recordingQueue) Add(uid types.UID)            { q.added = append(q.added, uid) }
func (q *recordingQueue) AddRateLimited(uid types.UID) { q.rateLimited = append(q.rateLimited, uid) }
func (q *recordingQueue) reset()                       { q.added, q.rateLimited = nil, nil }

// testScopes knows the kinds the tests use.
func testScopes(apiVersion, kind string) (namespaced, ok bool) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap", "apps/v1/Deployment", "apps/v1/ReplicaSet", "v1/Pod":
		return true, true
	case "v1/Namespace", "scheduling.k8s.io/v1/PriorityClass":
		return false, true
	}
	return false, false
}

func newTestGraph() (*graph, *recordingQueue, *recordingQueue) {
	del, orph := &recordingQueue{}, &recordingQueue{}
	return newGraph(testScopes, newAbsentCache(16), del, orph), del, orph
}

func cmID(ns, name string, uid types.UID) objectReference {
	return objectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name, UID: uid}
}

func ownerRef(id objectReference, block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: id.APIVersion, Kind: id.Kind, Name: id.Name, UID: id.UID}
	if block {
		r.BlockOwnerDeletion = ptr.To(true)
	}
	return r
}

func obj(id objectReference, owners ...metav1.OwnerReference) *observedObject {
	return &observedObject{identity: id, owners: owners}
}

func deleting(o *observedObject, finalizers ...string) *observedObject {
	c := *o
	c.deletionTimestamp = true
	c.finalizers = finalizers
	return &c
}

var (
	owner   = cmID("ns", "owner", "owner-uid")
	dep     = cmID("ns", "dep", "dep-uid")
	dep2    = cmID("ns", "dep2", "dep2-uid")
	grand   = cmID("ns", "grand", "grand-uid")
	other   = cmID("other", "owner", "owner-uid") // owner's UID, another namespace
	cluster = objectReference{APIVersion: "scheduling.k8s.io/v1", Kind: "PriorityClass", Name: "pc", UID: "pc-uid"}
)

// nodeState is what a test checks of a node.
type nodeState struct {
	identity           objectReference
	virtual            bool
	deletingDependents bool
	dependents         []types.UID
}

func stateOf(n *node) nodeState {
	s := nodeState{identity: n.identity, virtual: n.virtual, deletingDependents: n.deletingDependents}
	for _, d := range sortedNodes(n.dependents) {
		s.dependents = append(s.dependents, d.identity.UID)
	}
	return s
}

func TestGraph(t *testing.T) {
	tests := []struct {
		name string
		// setup runs first; its queueing is not checked.
		setup func(g *graph)
		// step is what is checked.
		step func(g *graph)

		toDelete, toDeleteRateLimited, toOrphan []types.UID
		nodes                                   map[types.UID]*nodeState // nil: node absent
		absent                                  []objectReference
	}{
		{
			name:     "a dependent of an unseen owner creates a virtual owner and has it looked up",
			step:     func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, false))) },
			toDelete: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, virtual: true, dependents: []types.UID{dep.UID}},
				dep.UID:   {identity: dep},
			},
		},
		{
			name: "the virtual owner of a cluster-scoped kind has no namespace",
			step: func(g *graph) {
				g.observe(nil, obj(dep, metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: "ns", UID: "ns-uid"}))
			},
			toDelete: []types.UID{"ns-uid"},
			nodes: map[types.UID]*nodeState{
				"ns-uid": {identity: objectReference{APIVersion: "v1", Kind: "Namespace", Name: "ns", UID: "ns-uid"},
					virtual: true, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name:  "observing the owner makes the virtual node real",
			setup: func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, false))) },
			step:  func(g *graph) { g.observe(nil, obj(owner)) },
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name:     "an owner observed in another namespace than its dependents name it has them looked at",
			setup:    func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, false))) },
			step:     func(g *graph) { g.observe(nil, obj(other)) },
			toDelete: []types.UID{dep.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: other, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name:     "a dependent of an observed owner in another namespace is looked at",
			setup:    func(g *graph) { g.observe(nil, obj(other)) },
			step:     func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, false))) },
			toDelete: []types.UID{dep.UID},
		},
		{
			name:  "a dependent of an observed owner is linked and nothing is queued",
			setup: func(g *graph) { g.observe(nil, obj(owner)) },
			step:  func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, true))) },
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name: "deleting an owner queues its dependents and remembers it absent",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, false)))
				g.observe(nil, obj(dep2, ownerRef(owner, false)))
			},
			step:     func(g *graph) { g.observeDeletion(owner) },
			toDelete: []types.UID{dep.UID, dep2.UID},
			nodes:    map[types.UID]*nodeState{owner.UID: nil},
			absent:   []objectReference{owner},
		},
		{
			name: "deleting a dependent queues its owner when it waits for its dependents",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
				g.observe(obj(owner), deleting(obj(owner), metav1.FinalizerDeleteDependents))
			},
			step:     func(g *graph) { g.observeDeletion(dep) },
			toDelete: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, deletingDependents: true},
				dep.UID:   nil,
			},
		},
		{
			name: "deleting a dependent of an owner not deleting dependents queues nothing",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
			},
			step: func(g *graph) { g.observeDeletion(dep) },
		},
		{
			name: "foreground deletion queues the dependents and the owner",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
				g.observe(nil, obj(dep2, ownerRef(owner, false)))
			},
			step:     func(g *graph) { g.observe(obj(owner), deleting(obj(owner), metav1.FinalizerDeleteDependents)) },
			toDelete: []types.UID{dep.UID, dep2.UID, owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, deletingDependents: true, dependents: []types.UID{dep.UID, dep2.UID}},
			},
		},
		{
			name: "an object first seen deleting in the foreground is queued (restart)",
			step: func(g *graph) {
				g.observe(nil, deleting(obj(owner), metav1.FinalizerDeleteDependents))
			},
			toDelete: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, deletingDependents: true},
			},
		},
		{
			name:  "an update that keeps the foreground finalizer queues nothing again",
			setup: func(g *graph) { g.observe(nil, deleting(obj(owner), metav1.FinalizerDeleteDependents)) },
			step: func(g *graph) {
				g.observe(deleting(obj(owner), metav1.FinalizerDeleteDependents), deleting(obj(owner), metav1.FinalizerDeleteDependents, "x"))
			},
		},
		{
			name:  "losing the foreground finalizer ends deletingDependents",
			setup: func(g *graph) { g.observe(nil, deleting(obj(owner), metav1.FinalizerDeleteDependents, "x")) },
			step: func(g *graph) {
				g.observe(deleting(obj(owner), metav1.FinalizerDeleteDependents, "x"), deleting(obj(owner), "x"))
			},
			nodes: map[types.UID]*nodeState{owner.UID: {identity: owner}},
		},
		{
			name: "orphan deletion queues the owner for orphaning only",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
			},
			step:     func(g *graph) { g.observe(obj(owner), deleting(obj(owner), metav1.FinalizerOrphanDependents)) },
			toOrphan: []types.UID{owner.UID},
		},
		{
			name: "removing a blocking reference queues the owner",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
			},
			step:     func(g *graph) { g.observe(obj(dep, ownerRef(owner, true)), obj(dep)) },
			toDelete: []types.UID{owner.UID},
			nodes:    map[types.UID]*nodeState{owner.UID: {identity: owner}},
		},
		{
			name: "unblocking a reference queues the owner",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
			},
			step:     func(g *graph) { g.observe(obj(dep, ownerRef(owner, true)), obj(dep, ownerRef(owner, false))) },
			toDelete: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name: "removing a non-blocking reference queues nothing",
			setup: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, false)))
			},
			step:  func(g *graph) { g.observe(obj(dep, ownerRef(owner, false)), obj(dep)) },
			nodes: map[types.UID]*nodeState{owner.UID: {identity: owner}},
		},
		{
			name:  "a virtual owner left without dependents is dropped",
			setup: func(g *graph) { g.observe(nil, obj(dep, ownerRef(owner, false))) },
			step:  func(g *graph) { g.observeDeletion(dep) },
			nodes: map[types.UID]*nodeState{owner.UID: nil, dep.UID: nil},
		},
		{
			name: "a virtual owner found absent is dropped and its dependents queued",
			setup: func(g *graph) {
				g.observe(nil, obj(dep, ownerRef(owner, false)))
				g.observe(nil, obj(dep2, ownerRef(owner, false)))
			},
			step:     func(g *graph) { g.virtualDelete(owner) },
			toDelete: []types.UID{dep.UID, dep2.UID},
			nodes:    map[types.UID]*nodeState{owner.UID: nil},
			absent:   []objectReference{owner},
		},
		{
			name: "a virtual owner named from two namespaces is looked up in the other one",
			setup: func(g *graph) {
				g.observe(nil, obj(dep, ownerRef(owner, false)))
				g.observe(nil, obj(cmID("other", "dep", "dep-other-uid"), ownerRef(owner, false)))
			},
			step:                func(g *graph) { g.virtualDelete(owner) },
			toDelete:            []types.UID{dep.UID},
			toDeleteRateLimited: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: other, virtual: true, dependents: []types.UID{"dep-other-uid", dep.UID}},
			},
			absent: []objectReference{owner},
		},
		{
			name:  "an absent lookup by other coordinates keeps an observed node",
			setup: func(g *graph) { g.observe(nil, obj(other)); g.observe(nil, obj(dep, ownerRef(owner, false))) },
			step:  func(g *graph) { g.virtualDelete(owner) },
			// dep names the owner in its own namespace, where it is not.
			toDelete: []types.UID{dep.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: other, dependents: []types.UID{dep.UID}},
			},
		},
		{
			name:  "an observed node found absent by its own identity is removed",
			setup: func(g *graph) { g.observe(nil, obj(owner)); g.observe(nil, obj(dep, ownerRef(owner, false))) },
			step:  func(g *graph) { g.virtualDelete(owner) },
			// dep names the owner in its own namespace, where it is not.
			toDelete: []types.UID{dep.UID},
			nodes:    map[types.UID]*nodeState{owner.UID: nil},
		},
		{
			name:     "a cluster-scoped dependent of a namespaced owner gets a virtual owner without namespace",
			step:     func(g *graph) { g.observe(nil, obj(cluster, ownerRef(owner, false))) },
			toDelete: []types.UID{owner.UID},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: cmID("", "owner", owner.UID), virtual: true, dependents: []types.UID{cluster.UID}},
			},
		},
		{
			name: "a chain links every level",
			step: func(g *graph) {
				g.observe(nil, obj(owner))
				g.observe(nil, obj(dep, ownerRef(owner, true)))
				g.observe(nil, obj(grand, ownerRef(dep, true)))
			},
			nodes: map[types.UID]*nodeState{
				owner.UID: {identity: owner, dependents: []types.UID{dep.UID}},
				dep.UID:   {identity: dep, dependents: []types.UID{grand.UID}},
				grand.UID: {identity: grand},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, del, orph := newTestGraph()
			if tc.setup != nil {
				tc.setup(g)
			}
			del.reset()
			orph.reset()
			tc.step(g)
			if !slices.Equal(del.added, tc.toDelete) {
				t.Errorf("queued for deletion %v, want %v", del.added, tc.toDelete)
			}
			if !slices.Equal(del.rateLimited, tc.toDeleteRateLimited) {
				t.Errorf("queued for deletion (rate limited) %v, want %v", del.rateLimited, tc.toDeleteRateLimited)
			}
			if !slices.Equal(orph.added, tc.toOrphan) {
				t.Errorf("queued for orphaning %v, want %v", orph.added, tc.toOrphan)
			}
			for uid, want := range tc.nodes {
				n, ok := g.nodes[uid]
				switch {
				case want == nil && ok:
					t.Errorf("node %s is in the graph: %+v", uid, stateOf(n))
				case want != nil && !ok:
					t.Errorf("node %s is not in the graph", uid)
				case want != nil:
					if got := stateOf(n); !reflect.DeepEqual(got, *want) {
						t.Errorf("node %s:\n got %+v\nwant %+v", uid, got, *want)
					}
				}
			}
			for _, a := range tc.absent {
				if !g.absent.has(a) {
					t.Errorf("%s is not remembered absent", a)
				}
			}
		})
	}
}

func TestReferencesDiffs(t *testing.T) {
	a := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "a", UID: "a"}
	aBlock := a
	aBlock.BlockOwnerDeletion = ptr.To(true)
	b := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "b", UID: "b"}
	c := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "c"}
	tests := []struct {
		name           string
		old, new       []metav1.OwnerReference
		added, removed []metav1.OwnerReference
		changed        []ownerRefPair
	}{
		{name: "none"},
		{name: "same", old: []metav1.OwnerReference{a, b}, new: []metav1.OwnerReference{b, a}},
		{name: "added", old: []metav1.OwnerReference{a}, new: []metav1.OwnerReference{a, b}, added: []metav1.OwnerReference{b}},
		{name: "removed", old: []metav1.OwnerReference{a, b}, new: []metav1.OwnerReference{b}, removed: []metav1.OwnerReference{a}},
		{name: "changed", old: []metav1.OwnerReference{a}, new: []metav1.OwnerReference{aBlock},
			changed: []ownerRefPair{{old: a, new: aBlock}}},
		{name: "all", old: []metav1.OwnerReference{aBlock, b}, new: []metav1.OwnerReference{a, c},
			added: []metav1.OwnerReference{c}, removed: []metav1.OwnerReference{b}, changed: []ownerRefPair{{old: aBlock, new: a}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			added, removed, changed := referencesDiffs(tc.old, tc.new)
			if !reflect.DeepEqual(added, tc.added) || !reflect.DeepEqual(removed, tc.removed) || !reflect.DeepEqual(changed, tc.changed) {
				t.Errorf("got added %v removed %v changed %v\nwant added %v removed %v changed %v",
					added, removed, changed, tc.added, tc.removed, tc.changed)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	a := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "a", UID: "a"}
	b := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "b", UID: "b"}
	c := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "c"}
	refs := func(r ...metav1.OwnerReference) []metav1.OwnerReference { return r }
	plain := &metav1.ObjectMeta{}
	withFinalizer := func(f string) metav1.Object { return &metav1.ObjectMeta{Finalizers: []string{"x", f}} }
	leaf := []dependentSnapshot(nil)
	parent := []dependentSnapshot{{identity: grand}}
	parentOfDeleting := []dependentSnapshot{{identity: dep}, {identity: grand, deletingDependents: true}}

	tests := []struct {
		name                     string
		latest                   metav1.Object
		solid, dangling, waiting []metav1.OwnerReference
		dependents               []dependentSnapshot
		want                     plan
	}{
		{name: "an existing owner keeps the object", latest: plain, solid: refs(a),
			want: plan{kind: keep}},
		{name: "existing owners keep the object", latest: plain, solid: refs(a, b),
			want: plan{kind: keep}},
		{name: "an existing owner keeps the object, without the missing ones", latest: plain, solid: refs(a), dangling: refs(b, c),
			want: plan{kind: removeReferences, remove: []types.UID{"b", "c"}}},
		{name: "an existing owner keeps the object, without the ones waiting for it", latest: plain, solid: refs(a), dangling: refs(b), waiting: refs(c),
			want: plan{kind: removeReferences, remove: []types.UID{"b", "c"}}},
		{name: "no owner left: background", latest: plain, dangling: refs(a, b), dependents: parent,
			want: plan{kind: deleteObject, policy: metav1.DeletePropagationBackground}},
		{name: "no owner left, orphan finalizer already there: orphan", latest: withFinalizer(metav1.FinalizerOrphanDependents), dangling: refs(a),
			want: plan{kind: deleteObject, policy: metav1.DeletePropagationOrphan}},
		{name: "no owner left, foreground finalizer already there: foreground", latest: withFinalizer(metav1.FinalizerDeleteDependents), dangling: refs(a),
			want: plan{kind: deleteObject, policy: metav1.DeletePropagationForeground}},
		{name: "a leaf whose owner waits for it: background", latest: plain, waiting: refs(a), dependents: leaf,
			want: plan{kind: deleteObject, policy: metav1.DeletePropagationBackground}},
		{name: "a parent whose owner waits for it: foreground", latest: plain, waiting: refs(a), dangling: refs(b), dependents: parent,
			want: plan{kind: deleteObject, policy: metav1.DeletePropagationForeground}},
		{name: "a parent of a dependent deleting its own: unblock, then foreground", latest: plain, waiting: refs(a), dependents: parentOfDeleting,
			want: plan{kind: deleteObject, unblockFirst: true, policy: metav1.DeletePropagationForeground}},
		{name: "an owner waiting does not override an existing one", latest: plain, solid: refs(a), waiting: refs(b), dependents: parent,
			want: plan{kind: removeReferences, remove: []types.UID{"b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.latest, tc.solid, tc.dangling, tc.waiting, tc.dependents)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
