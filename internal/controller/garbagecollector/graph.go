package garbagecollector

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectReference identifies an object: the coordinates of an owner
// reference plus the namespace ("" for cluster-scoped objects).
type objectReference struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
}

func (r objectReference) String() string {
	if r.Namespace == "" {
		return fmt.Sprintf("%s/%s %s (uid %s)", r.APIVersion, r.Kind, r.Name, r.UID)
	}
	return fmt.Sprintf("%s/%s %s/%s (uid %s)", r.APIVersion, r.Kind, r.Namespace, r.Name, r.UID)
}

// coordinates is the part of an owner reference that identifies the owner.
func coordinates(ref metav1.OwnerReference, namespace string) objectReference {
	return objectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: namespace, Name: ref.Name, UID: ref.UID}
}

// matchesCoordinates reports whether ref names the object identity (the
// namespace is not part of a reference).
func matchesCoordinates(ref metav1.OwnerReference, identity objectReference) bool {
	return ref.UID == identity.UID && ref.Name == identity.Name &&
		ref.Kind == identity.Kind && ref.APIVersion == identity.APIVersion
}

// node is one object in the graph: an object observed through an informer,
// or a "virtual" owner that some dependent names but that has not been
// observed (yet, or ever).
type node struct {
	identity objectReference
	// owners are the object's owner references as last observed.
	owners []metav1.OwnerReference
	// dependents are the nodes whose owner references name this one.
	dependents map[types.UID]*node
	// virtual is true until an informer reports the object.
	virtual bool
	// beingDeleted is true once the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents is true while the object is being deleted in the
	// foreground: it has a deletionTimestamp and the foregroundDeletion
	// finalizer.
	deletingDependents bool
}

// ownerReference returns the node's reference to the owner with uid.
func (n *node) ownerReference(uid types.UID) (metav1.OwnerReference, bool) {
	for _, ref := range n.owners {
		if ref.UID == uid {
			return ref, true
		}
	}
	return metav1.OwnerReference{}, false
}

// uidQueue is the part of a work queue the graph feeds.
type uidQueue interface {
	Add(types.UID)
	AddRateLimited(types.UID)
}

// graph is the dependency graph: every observed object, keyed by UID, with
// links from owners to dependents. It is changed by informer events and
// by virtual deletions (an owner found absent by a live lookup), and it
// feeds the two work queues; it never talks to the API itself.
type graph struct {
	mu    sync.Mutex
	nodes map[types.UID]*node

	// namespaced reports whether a kind is namespaced; ok is false for an
	// unknown kind.
	namespaced func(apiVersion, kind string) (namespaced, ok bool)
	absent     *absentCache

	attemptToDelete uidQueue
	attemptToOrphan uidQueue
}

func newGraph(namespaced func(apiVersion, kind string) (bool, bool), absent *absentCache, toDelete, toOrphan uidQueue) *graph {
	return &graph{
		nodes:           map[types.UID]*node{},
		namespaced:      namespaced,
		absent:          absent,
		attemptToDelete: toDelete,
		attemptToOrphan: toOrphan,
	}
}

// observedObject is what the graph needs to know of an object an informer
// reported.
type observedObject struct {
	identity          objectReference
	owners            []metav1.OwnerReference
	deletionTimestamp bool
	finalizers        []string
}

func (o *observedObject) hasFinalizer(f string) bool {
	return o != nil && hasString(o.finalizers, f)
}

func (o *observedObject) beingDeleted() bool { return o != nil && o.deletionTimestamp }

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// observe records an added or updated object. old is the previous state the
// informer had, or nil.
func (g *graph) observe(old, obj *observedObject) {
	g.mu.Lock()
	defer g.mu.Unlock()
	uid := obj.identity.UID
	existing, found := g.nodes[uid]
	if found && existing.virtual {
		// The owner some dependents named has now been observed.
		if existing.identity != obj.identity {
			// Dependents that named it by other coordinates (another
			// kind or name, or from another namespace) have an owner
			// that does not exist as they name it: have them looked at.
			_, nonmatching := partitionDependents(existing.dependents, obj.identity)
			for _, dep := range nonmatching {
				if obj.identity.Namespace != "" && dep.identity.Namespace != obj.identity.Namespace {
					slog.Warn("garbage collector: owner reference to an object in another namespace; the owner counts as absent",
						"object", dep.identity.String(), "owner", obj.identity.String())
				}
				g.attemptToDelete.Add(dep.identity.UID)
			}
			existing.identity = obj.identity
		}
		existing.virtual = false
	}
	if !found {
		n := &node{
			identity:           obj.identity,
			dependents:         map[types.UID]*node{},
			owners:             obj.owners,
			beingDeleted:       obj.beingDeleted(),
			deletingDependents: obj.beingDeleted() && obj.hasFinalizer(metav1.FinalizerDeleteDependents),
		}
		g.nodes[uid] = n
		g.addDependentToOwners(n, n.owners)
		g.processTransitions(old, obj, n)
		return
	}
	added, removed, changed := referencesDiffs(existing.owners, obj.owners)
	if len(added) != 0 || len(removed) != 0 || len(changed) != 0 {
		// Owners waiting for this dependent to go may not have to any
		// more.
		g.addUnblockedOwnersToDeleteQueue(removed, changed)
		existing.owners = obj.owners
		g.addDependentToOwners(existing, added)
		g.removeDependentFromOwners(existing, removed)
	}
	existing.beingDeleted = obj.beingDeleted()
	existing.deletingDependents = obj.beingDeleted() && obj.hasFinalizer(metav1.FinalizerDeleteDependents)
	g.processTransitions(old, obj, existing)
}

// observeDeletion records that an informer reported obj deleted.
func (g *graph) observeDeletion(identity objectReference) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, found := g.nodes[identity.UID]
	if !found {
		return
	}
	g.removeNode(n, identity)
}

// virtualDelete records that a live lookup found no object with identity:
// its dependents have lost that owner. It returns whether the node was
// removed from the graph.
func (g *graph) virtualDelete(identity objectReference) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, found := g.nodes[identity.UID]
	if !found {
		return false
	}
	if n.virtual {
		matching, nonmatching := partitionDependents(n.dependents, identity)
		if len(nonmatching) > 0 {
			// Some dependents name the owner by other coordinates (or
			// from another namespace): the lookup proved nothing for
			// them. Keep the node, have the dependents it did disprove
			// looked at, and look the owner up again as the others name
			// it.
			if len(matching) > 0 {
				g.absent.add(identity)
				for _, dep := range matching {
					g.attemptToDelete.Add(dep.identity.UID)
				}
			}
			if n.identity == identity {
				if alt, ok := g.alternateIdentity(nonmatching, identity); ok {
					n.identity = alt
					g.attemptToDelete.AddRateLimited(identity.UID)
				}
			}
			return false
		}
	} else if n.identity != identity {
		// The object exists, observed with other coordinates: only the
		// dependents that named it as identity lost their owner.
		matching, _ := partitionDependents(n.dependents, identity)
		if len(matching) > 0 {
			g.absent.add(identity)
			for _, dep := range matching {
				g.attemptToDelete.Add(dep.identity.UID)
			}
		}
		return false
	}
	g.removeNode(n, identity)
	return true
}

// removeNode takes n out of the graph and queues what its absence may
// unblock: its dependents (their owner is gone) and its owners that wait
// for their dependents to go.
func (g *graph) removeNode(n *node, identity objectReference) {
	delete(g.nodes, n.identity.UID)
	g.removeDependentFromOwners(n, n.owners)
	if len(n.dependents) > 0 {
		g.absent.add(identity)
	}
	for _, dep := range sortedNodes(n.dependents) {
		g.attemptToDelete.Add(dep.identity.UID)
	}
	for _, ref := range n.owners {
		if owner, ok := g.nodes[ref.UID]; ok && owner.deletingDependents {
			g.attemptToDelete.Add(owner.identity.UID)
		}
	}
}

// addDependentToOwners links n to the owners that refs name, creating
// virtual nodes (queued for a lookup) for owners not observed yet.
func (g *graph) addDependentToOwners(n *node, refs []metav1.OwnerReference) {
	for _, ref := range refs {
		owner, found := g.nodes[ref.UID]
		if !found {
			owner = &node{
				identity:   coordinates(ref, g.ownerNamespace(ref, n.identity.Namespace)),
				dependents: map[types.UID]*node{},
				virtual:    true,
			}
			g.nodes[ref.UID] = owner
			owner.dependents[n.identity.UID] = n
			// Is the owner there at all? A lookup will tell.
			g.attemptToDelete.Add(ref.UID)
			continue
		}
		owner.dependents[n.identity.UID] = n
		if owner.virtual {
			continue
		}
		// The owner was observed: a namespaced owner may only own objects
		// of its own namespace, and the reference must name it as it is.
		if ns := owner.identity.Namespace; ns != "" && ns != n.identity.Namespace {
			slog.Warn("garbage collector: owner reference to an object in another namespace; the owner counts as absent",
				"object", n.identity.String(), "owner", owner.identity.String())
			g.attemptToDelete.Add(n.identity.UID)
		} else if !matchesCoordinates(ref, owner.identity) {
			g.attemptToDelete.Add(n.identity.UID)
		}
	}
}

// ownerNamespace is the namespace an owner named by ref from an object in
// namespace ns lives in, as far as the reference can tell.
func (g *graph) ownerNamespace(ref metav1.OwnerReference, ns string) string {
	if namespaced, ok := g.namespaced(ref.APIVersion, ref.Kind); ok && !namespaced {
		return ""
	}
	return ns
}

// removeDependentFromOwners unlinks n from the owners refs name. A virtual
// owner left without dependents is dropped: nothing needs it.
func (g *graph) removeDependentFromOwners(n *node, refs []metav1.OwnerReference) {
	for _, ref := range refs {
		owner, ok := g.nodes[ref.UID]
		if !ok {
			continue
		}
		delete(owner.dependents, n.identity.UID)
		if owner.virtual && len(owner.dependents) == 0 {
			delete(g.nodes, ref.UID)
		}
	}
}

// addUnblockedOwnersToDeleteQueue queues the owners that a dependent no
// longer blocks: references with blockOwnerDeletion that were removed or
// stopped blocking.
func (g *graph) addUnblockedOwnersToDeleteQueue(removed []metav1.OwnerReference, changed []ownerRefPair) {
	for _, ref := range removed {
		if blocks(ref) {
			if _, ok := g.nodes[ref.UID]; ok {
				g.attemptToDelete.Add(ref.UID)
			}
		}
	}
	for _, c := range changed {
		if blocks(c.old) && !blocks(c.new) {
			if _, ok := g.nodes[c.new.UID]; ok {
				g.attemptToDelete.Add(c.new.UID)
			}
		}
	}
}

func blocks(ref metav1.OwnerReference) bool {
	return ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
}

// processTransitions queues n when it starts being deleted with a
// propagation policy the collector carries out: orphan (its dependents lose
// their references to it) or foreground (its dependents go first).
func (g *graph) processTransitions(old, obj *observedObject, n *node) {
	if startsWaitingFor(old, obj, metav1.FinalizerOrphanDependents) {
		g.attemptToOrphan.Add(n.identity.UID)
		return
	}
	if startsWaitingFor(old, obj, metav1.FinalizerDeleteDependents) {
		n.deletingDependents = true
		for _, dep := range sortedNodes(n.dependents) {
			g.attemptToDelete.Add(dep.identity.UID)
		}
		g.attemptToDelete.Add(n.identity.UID)
	}
}

// startsWaitingFor reports whether obj is being deleted with finalizer f
// and old was not.
func startsWaitingFor(old, obj *observedObject, f string) bool {
	if !obj.beingDeleted() || !obj.hasFinalizer(f) {
		return false
	}
	return !old.beingDeleted() || !old.hasFinalizer(f)
}

// partitionDependents splits dependents into those whose reference to
// identity.UID names identity and those that name it otherwise (other
// coordinates, or a namespaced identity in another namespace). A dependent
// can be in both lists.
func partitionDependents(dependents map[types.UID]*node, identity objectReference) (matching, nonmatching []*node) {
	for _, dep := range sortedNodes(dependents) {
		match, mismatch := false, false
		if identity.Namespace != "" && identity.Namespace != dep.identity.Namespace {
			mismatch = true
		} else {
			for _, ref := range dep.owners {
				if ref.UID != identity.UID {
					continue
				}
				if matchesCoordinates(ref, identity) {
					match = true
				} else {
					mismatch = true
				}
			}
		}
		if match {
			matching = append(matching, dep)
		}
		if mismatch {
			nonmatching = append(nonmatching, dep)
		}
	}
	return matching, nonmatching
}

// alternateIdentity returns another identity the dependents name the owner
// identity.UID by: the first one after identity in a stable order (wrapping
// around), so that every identity is tried in turn.
func (g *graph) alternateIdentity(dependents []*node, identity objectReference) (objectReference, bool) {
	var candidates []objectReference
	for _, dep := range dependents {
		for _, ref := range dep.owners {
			if ref.UID == identity.UID {
				c := coordinates(ref, g.ownerNamespace(ref, dep.identity.Namespace))
				if c != identity {
					candidates = append(candidates, c)
				}
			}
		}
	}
	if len(candidates) == 0 {
		return objectReference{}, false
	}
	less := func(a, b objectReference) bool {
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.APIVersion != b.APIVersion {
			return a.APIVersion < b.APIVersion
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	}
	sort.Slice(candidates, func(i, j int) bool { return less(candidates[i], candidates[j]) })
	for _, c := range candidates {
		if less(identity, c) {
			return c, true
		}
	}
	return candidates[0], true
}

func sortedNodes(m map[types.UID]*node) []*node {
	out := make([]*node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].identity.UID < out[j].identity.UID })
	return out
}

// ownerRefPair is one owner reference before and after an update.
type ownerRefPair struct{ old, new metav1.OwnerReference }

// referencesDiffs compares two lists of owner references by UID.
func referencesDiffs(old, new []metav1.OwnerReference) (added, removed []metav1.OwnerReference, changed []ownerRefPair) {
	oldByUID := make(map[types.UID]metav1.OwnerReference, len(old))
	for _, ref := range old {
		oldByUID[ref.UID] = ref
	}
	for _, ref := range new {
		if o, ok := oldByUID[ref.UID]; ok {
			if !equalRefs(o, ref) {
				changed = append(changed, ownerRefPair{old: o, new: ref})
			}
			delete(oldByUID, ref.UID)
		} else {
			added = append(added, ref)
		}
	}
	for _, ref := range old {
		if _, ok := oldByUID[ref.UID]; ok {
			removed = append(removed, ref)
		}
	}
	return added, removed, changed
}

func equalRefs(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		equalBoolPtr(a.Controller, b.Controller) && equalBoolPtr(a.BlockOwnerDeletion, b.BlockOwnerDeletion)
}

func equalBoolPtr(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// snapshot is a copy of what a worker needs of a node, taken under the
// graph's lock.
type snapshot struct {
	identity           objectReference
	virtual            bool
	beingDeleted       bool
	deletingDependents bool
	dependents         []dependentSnapshot
}

type dependentSnapshot struct {
	identity           objectReference
	deletingDependents bool
	// blocking is true when the dependent's reference to the node has
	// blockOwnerDeletion set.
	blocking bool
}

// snapshot returns a copy of the node with uid.
func (g *graph) snapshot(uid types.UID) (snapshot, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nodes[uid]
	if !ok {
		return snapshot{}, false
	}
	s := snapshot{
		identity:           n.identity,
		virtual:            n.virtual,
		beingDeleted:       n.beingDeleted,
		deletingDependents: n.deletingDependents,
	}
	for _, dep := range sortedNodes(n.dependents) {
		ref, _ := dep.ownerReference(uid)
		s.dependents = append(s.dependents, dependentSnapshot{
			identity:           dep.identity,
			deletingDependents: dep.deletingDependents,
			blocking:           blocks(ref),
		})
	}
	return s, true
}

// len returns the number of nodes.
func (g *graph) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes)
}
