// Package garbagecollector is the garbage collector: it deletes objects
// whose owners (metadata.ownerReferences) are gone, and carries out the
// propagation policies a DELETE asked for, as kube-controller-manager's
// garbage collector does:
//
//   - background (the default): once every owner of an object is gone, the
//     object is deleted; an object that keeps some owners only loses its
//     references to the missing ones;
//   - foreground: an owner marked for deletion with the foregroundDeletion
//     finalizer has its dependents deleted first (in the foreground when they
//     have dependents of their own, so the deletion goes depth-first), and
//     loses the finalizer once no dependent with blockOwnerDeletion remains;
//   - orphan: an owner marked for deletion with the orphan finalizer has its
//     references removed from all its dependents, then loses the finalizer.
//
// It watches the metadata (PartialObjectMetadata) of every resource it is
// given with informers over client-go's metadata client, keeps a graph of
// owner UID to dependents, and acts from rate-limited work queues. Before
// it deletes or changes anything it looks the object and its owners up
// again by name through the API and compares UIDs, so that a lagging
// informer never makes it act on a stale view.
//
// It is a client of the API only and must stay one: it never touches the
// store, never reads or keeps whole objects (only their metadata), never
// deletes an object without owner references, or one with an owner that
// exists and is not itself being deleted in the foreground, and never
// deletes or patches without a precondition on the UID it decided about.
package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/lru"
)

// ignoredResources are never watched, as in kube-controller-manager's
// defaults: events are numerous, short-lived and never owners, and the two
// event resources serve the same objects.
var ignoredResources = map[schema.GroupResource]bool{
	{Group: "", Resource: "events"}:              true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

const (
	// absentCacheSize is how many owners known to be absent are
	// remembered, to spare lookups when many dependents share an owner.
	absentCacheSize = 500
	// patchAttempts bounds the read-patch retries of one change when the
	// object changes under it.
	patchAttempts = 5
)

// Controller is the garbage collector.
type Controller struct {
	client    metadata.Interface
	mapper    *extensibleMapper
	graph     *graph
	absent    *absentCache
	informers []cache.Controller

	attemptToDelete workqueue.TypedRateLimitingInterface[types.UID]
	attemptToOrphan workqueue.TypedRateLimitingInterface[types.UID]

	// custom are the informers of custom resources (SetCustomResources).
	customMu sync.Mutex
	custom   map[schema.GroupVersionResource]*customInformer
}

// New returns a garbage collector that watches the given resources (each
// must support list, watch and delete; events are skipped) and
// maps owner references' apiVersion and kind to resources with mapper (for
// example a meta.DefaultRESTMapper built from the served resources, or a
// discovery-backed restmapper).
func New(client metadata.Interface, resources []schema.GroupVersionResource, mapper meta.RESTMapper) (*Controller, error) {
	c := &Controller{
		client: client,
		mapper: &extensibleMapper{RESTMapper: mapper},
		custom: map[schema.GroupVersionResource]*customInformer{},
		absent: newAbsentCache(absentCacheSize),
		attemptToDelete: workqueue.NewTypedRateLimitingQueueWithConfig(newRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbage_collector_attempt_to_delete"}),
		attemptToOrphan: workqueue.NewTypedRateLimitingQueueWithConfig(newRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbage_collector_attempt_to_orphan"}),
	}
	c.graph = newGraph(c.kindNamespaced, c.absent, c.attemptToDelete, c.attemptToOrphan)
	seen := map[schema.GroupVersionResource]bool{}
	for _, gvr := range resources {
		if ignoredResources[gvr.GroupResource()] || seen[gvr] {
			continue
		}
		seen[gvr] = true
		gvk, err := mapper.KindFor(gvr)
		if err != nil {
			return nil, fmt.Errorf("garbage collector: no kind for %s: %w", gvr, err)
		}
		c.informers = append(c.informers, newMetadataInformer(client, gvr, c.handler(gvk)))
	}
	return c, nil
}

// newMetadataInformer returns an informer of the metadata of every object of
// gvr, as metadatainformer builds it but without the machinery for sharing
// it among several handlers (three goroutines per resource), and with slim
// as its transform.
func newMetadataInformer(client metadata.Interface, gvr schema.GroupVersionResource, handler cache.ResourceEventHandler) cache.Controller {
	res := client.Resource(gvr)
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, opts)
		},
	}, client)
	_, inf := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &metav1.PartialObjectMetadata{},
		Handler:       handler,
		Transform:     slim,
	})
	return inf
}

// newRateLimiter retries a failing item after 5ms, doubling up to 5
// minutes (an owner that exists but is never observed, for instance of a
// resource that is not watched, is looked up that often).
func newRateLimiter() workqueue.TypedRateLimiter[types.UID] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](5*time.Millisecond, 5*time.Minute)
}

// syncPollInterval is how often Run checks whether an informer has synced.
const syncPollInterval = 5 * time.Millisecond

// Run starts the informers, waits for them to sync, then runs workers
// workers per queue until ctx is done.
//
// The informers are started one after the other, each once the previous
// one has synced, so that a server that has just become ready does not
// serve a burst of lists and watches at once ahead of its first clients.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.attemptToDelete.ShutDown()
	defer c.attemptToOrphan.ShutDown()
	for _, inf := range c.informers {
		go inf.RunWithContext(ctx)
		err := wait.PollUntilContextCancel(ctx, syncPollInterval, true, func(context.Context) (bool, error) {
			return inf.HasSynced(), nil
		})
		if err != nil {
			return
		}
	}
	slog.Debug("garbage collector synced", "resources", len(c.informers), "objects", c.graph.len())
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.deleteWorker, time.Second)
		go wait.UntilWithContext(ctx, c.orphanWorker, time.Second)
	}
	<-ctx.Done()
}

// HasSynced reports whether every informer has listed its resource.
func (c *Controller) HasSynced() bool {
	for _, inf := range c.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return c.customSynced()
}

// handler feeds one resource's informer events into the graph.
func (c *Controller) handler(gvk schema.GroupVersionKind) cache.ResourceEventHandler {
	apiVersion, kind := gvk.GroupVersion().String(), gvk.Kind
	observed := func(obj any) *observedObject {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return nil
		}
		return &observedObject{
			identity: objectReference{
				APIVersion: apiVersion, Kind: kind,
				Namespace: m.Namespace, Name: m.Name, UID: m.UID,
			},
			owners:            m.OwnerReferences,
			deletionTimestamp: m.DeletionTimestamp != nil,
			finalizers:        m.Finalizers,
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o := observed(obj); o != nil {
				c.graph.observe(nil, o)
			}
		},
		UpdateFunc: func(old, obj any) {
			if o := observed(obj); o != nil {
				c.graph.observe(observed(old), o)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o := observed(obj); o != nil {
				c.graph.observeDeletion(o.identity)
			}
		},
	}
}

// slim keeps only the metadata the collector reads, so that the informers'
// caches stay small (no labels, annotations or managedFields).
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp,
		Finalizers:        m.Finalizers,
		OwnerReferences:   m.OwnerReferences,
	}}, nil
}

func (c *Controller) deleteWorker(ctx context.Context) {
	for c.processNext(ctx, c.attemptToDelete, c.attemptToDeleteItem) {
	}
}

func (c *Controller) orphanWorker(ctx context.Context) {
	for c.processNext(ctx, c.attemptToOrphan, c.attemptToOrphanItem) {
	}
}

// processNext handles one item of queue; it returns false once the queue is
// shut down.
func (c *Controller) processNext(ctx context.Context, queue workqueue.TypedRateLimitingInterface[types.UID],
	sync func(context.Context, types.UID) (requeue bool, err error)) bool {
	uid, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(uid)
	requeue, err := sync(ctx, uid)
	var unknown *unknownKindError
	switch {
	case errors.As(err, &unknown):
		// A reference to a kind the server does not serve: retried
		// (with backoff) in case it is served later, quietly.
		slog.Debug("garbage collector: retrying", "uid", uid, "err", err)
		queue.AddRateLimited(uid)
	case err != nil:
		if ctx.Err() == nil {
			slog.Warn("garbage collector: retrying", "uid", uid, "err", err)
		}
		queue.AddRateLimited(uid)
	case requeue:
		queue.AddRateLimited(uid)
	default:
		queue.Forget(uid)
	}
	return true
}

// errNamespacedOwnerOfClusterScoped marks a cluster-scoped object that names
// a namespaced owner: an invalid reference that no retry resolves. Such an
// object is left alone.
var errNamespacedOwnerOfClusterScoped = errors.New("cluster-scoped object with a namespaced owner")

// attemptToDeleteItem looks at one node: a virtual owner (does it exist?),
// an owner being deleted in the foreground (are its dependents gone?), or a
// dependent (are its owners gone?). requeue asks for another look later
// (the node was not observed by an informer yet).
func (c *Controller) attemptToDeleteItem(ctx context.Context, uid types.UID) (requeue bool, err error) {
	item, ok := c.graph.snapshot(uid)
	if !ok {
		return false, nil
	}
	if item.beingDeleted && !item.deletingDependents {
		return false, nil // someone else's deletion: nothing to do
	}
	latest, err := c.getObject(ctx, item.identity)
	if apierrors.IsNotFound(err) {
		c.graph.virtualDelete(item.identity)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if latest.UID != item.identity.UID {
		c.graph.virtualDelete(item.identity)
		return false, nil
	}
	if item.deletingDependents {
		return false, c.processDeletingDependents(ctx, item)
	}
	refs := latest.OwnerReferences
	if len(refs) == 0 {
		return item.virtual, nil
	}
	solid, dangling, waiting, err := c.classifyReferences(ctx, item.identity, refs)
	if errors.Is(err, errNamespacedOwnerOfClusterScoped) {
		slog.Warn("garbage collector: ignoring a cluster-scoped object with a namespaced owner", "object", item.identity.String())
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p := decide(latest, solid, dangling, waiting, item.dependents)
	if err := c.carryOut(ctx, item.identity, latest, p); err != nil {
		return false, err
	}
	return item.virtual, nil
}

// planKind is what decide chose to do with a dependent.
type planKind int

const (
	keep             planKind = iota // an owner exists: leave the object
	removeReferences                 // drop the references to missing owners
	deleteObject                     // delete the object
)

type plan struct {
	kind planKind
	// remove are the owners whose references are dropped (removeReferences).
	remove []types.UID
	// unblockFirst makes the object's own references non-blocking before
	// it is deleted, to break a foreground deletion cycle (deleteObject).
	unblockFirst bool
	policy       metav1.DeletionPropagation
}

// decide chooses what to do with a dependent given its current metadata,
// its owner references sorted into solid (the owner exists and is not
// deleting its dependents), dangling (the owner is absent) and waiting (the
// owner is being deleted in the foreground), and its own dependents. These
// are upstream's rules.
func decide(latest metav1.Object, solid, dangling, waiting []metav1.OwnerReference, dependents []dependentSnapshot) plan {
	switch {
	case len(solid) > 0:
		if len(dangling) == 0 && len(waiting) == 0 {
			return plan{kind: keep}
		}
		// The references to owners waiting for their dependents are
		// dropped too, or those owners would wait forever.
		var uids []types.UID
		for _, ref := range append(append([]metav1.OwnerReference(nil), dangling...), waiting...) {
			uids = append(uids, ref.UID)
		}
		return plan{kind: removeReferences, remove: uids}
	case len(waiting) > 0 && len(dependents) > 0:
		// An owner waits for this object to go, and it has dependents of
		// its own: delete it in the foreground so that they go first. If
		// one of them waits for its own dependents too, there may be a
		// cycle: stop blocking the owners first.
		unblock := false
		for _, dep := range dependents {
			if dep.deletingDependents {
				unblock = true
				break
			}
		}
		return plan{kind: deleteObject, unblockFirst: unblock, policy: metav1.DeletePropagationForeground}
	default:
		// No owner is left (or the waiting ones only wait for this leaf):
		// delete it, honouring a policy it was already deleted with.
		policy := metav1.DeletePropagationBackground
		switch {
		case hasString(latest.GetFinalizers(), metav1.FinalizerOrphanDependents):
			policy = metav1.DeletePropagationOrphan
		case hasString(latest.GetFinalizers(), metav1.FinalizerDeleteDependents):
			policy = metav1.DeletePropagationForeground
		}
		return plan{kind: deleteObject, policy: policy}
	}
}

// carryOut applies a plan to the object identity, whose current metadata is
// latest.
func (c *Controller) carryOut(ctx context.Context, identity objectReference, latest *metav1.PartialObjectMetadata, p plan) error {
	switch p.kind {
	case removeReferences:
		slog.Debug("garbage collector: removing references to missing owners", "object", identity.String(), "owners", p.remove)
		return c.patchLive(ctx, identity, latest, removeOwnerReferencesPatch(p.remove))
	case deleteObject:
		if p.unblockFirst {
			if err := c.patchLive(ctx, identity, latest, unblockOwnerReferencesPatch); err != nil {
				return err
			}
		}
		slog.Debug("garbage collector: deleting", "object", identity.String(), "propagationPolicy", p.policy)
		return c.deleteObject(ctx, identity, p.policy)
	}
	return nil
}

// processDeletingDependents handles an owner being deleted in the
// foreground: once no dependent blocks it, its finalizer goes; until then
// its blocking dependents are looked at.
func (c *Controller) processDeletingDependents(ctx context.Context, item snapshot) error {
	var blocking []dependentSnapshot
	for _, dep := range item.dependents {
		if dep.blocking {
			blocking = append(blocking, dep)
		}
	}
	if len(blocking) == 0 {
		slog.Debug("garbage collector: dependents are gone; removing the foregroundDeletion finalizer", "object", item.identity.String())
		return c.removeFinalizer(ctx, item.identity, metav1.FinalizerDeleteDependents)
	}
	for _, dep := range blocking {
		if !dep.deletingDependents {
			c.attemptToDelete.Add(dep.identity.UID)
		}
	}
	return nil
}

// attemptToOrphanItem handles an owner being deleted with the orphan
// policy: its dependents lose their references to it, then it loses the
// orphan finalizer.
func (c *Controller) attemptToOrphanItem(ctx context.Context, uid types.UID) (bool, error) {
	owner, ok := c.graph.snapshot(uid)
	if !ok {
		return false, nil
	}
	for _, dep := range owner.dependents {
		if err := c.patchLive(ctx, dep.identity, nil, removeOwnerReferencesPatch([]types.UID{uid})); err != nil {
			return false, fmt.Errorf("orphaning %s: %w", dep.identity, err)
		}
	}
	slog.Debug("garbage collector: dependents orphaned; removing the orphan finalizer", "object", owner.identity.String())
	if err := c.removeFinalizer(ctx, owner.identity, metav1.FinalizerOrphanDependents); err != nil {
		return false, err
	}
	if owner.deletingDependents {
		// Also deleted in the foreground: with no dependents left, that
		// finalizer can go too.
		c.attemptToDelete.Add(uid)
	}
	return false, nil
}

// classifyReferences sorts an object's owner references into solid,
// dangling and waiting (see decide), looking each owner up.
func (c *Controller) classifyReferences(ctx context.Context, item objectReference, refs []metav1.OwnerReference) (
	solid, dangling, waiting []metav1.OwnerReference, err error) {
	for _, ref := range refs {
		isDangling, owner, err := c.isDangling(ctx, ref, item)
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case isDangling:
			dangling = append(dangling, ref)
		case owner.DeletionTimestamp != nil && hasString(owner.Finalizers, metav1.FinalizerDeleteDependents):
			waiting = append(waiting, ref)
		default:
			solid = append(solid, ref)
		}
	}
	return solid, dangling, waiting, nil
}

// isDangling reports whether the owner ref names is absent for item: no
// object of that kind and name in item's namespace (or cluster-wide for a
// cluster-scoped kind), or one with another UID. It asks the API, not the
// informers, which may lag.
func (c *Controller) isDangling(ctx context.Context, ref metav1.OwnerReference, item objectReference) (
	bool, *metav1.PartialObjectMetadata, error) {
	gvr, namespaced, err := c.mapping(ref.APIVersion, ref.Kind)
	if err != nil {
		return false, nil, err
	}
	ns := ""
	if namespaced {
		if item.Namespace == "" {
			// Checked first: such a reference is invalid, whatever is
			// known of the owner.
			return false, nil, errNamespacedOwnerOfClusterScoped
		}
		ns = item.Namespace
	}
	if c.absent.has(coordinates(ref, ns)) {
		return true, nil, nil
	}
	owner, err := c.client.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.absent.add(coordinates(ref, ns))
		return true, nil, nil
	case err != nil:
		return false, nil, err
	case owner.UID != ref.UID:
		c.absent.add(coordinates(ref, ns))
		return true, nil, nil
	}
	return false, owner, nil
}

// unknownKindError is a reference to a kind the mapper does not know.
type unknownKindError struct {
	apiVersion, kind string
	err              error
}

func (e *unknownKindError) Error() string {
	return fmt.Sprintf("no resource for %s %s: %v", e.apiVersion, e.kind, e.err)
}

func (e *unknownKindError) Unwrap() error { return e.err }

// mapping returns the resource serving apiVersion/kind and its scope.
func (c *Controller) mapping(apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, &unknownKindError{apiVersion, kind, err}
	}
	m, err := c.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, &unknownKindError{apiVersion, kind, err}
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// kindNamespaced reports the scope of a kind, if known.
func (c *Controller) kindNamespaced(apiVersion, kind string) (namespaced, ok bool) {
	_, namespaced, err := c.mapping(apiVersion, kind)
	return namespaced, err == nil
}

// resource returns the client for identity's resource and namespace.
func (c *Controller) resource(identity objectReference) (metadata.ResourceInterface, error) {
	gvr, namespaced, err := c.mapping(identity.APIVersion, identity.Kind)
	if err != nil {
		return nil, err
	}
	if !namespaced {
		return c.client.Resource(gvr), nil
	}
	if identity.Namespace == "" {
		// A namespaced kind named by a cluster-scoped object: there is
		// no such object.
		return nil, apierrors.NewNotFound(gvr.GroupResource(), identity.Name)
	}
	return c.client.Resource(gvr).Namespace(identity.Namespace), nil
}

// getObject reads identity's current metadata by name.
func (c *Controller) getObject(ctx context.Context, identity objectReference) (*metav1.PartialObjectMetadata, error) {
	res, err := c.resource(identity)
	if err != nil {
		return nil, err
	}
	return res.Get(ctx, identity.Name, metav1.GetOptions{})
}

// deleteObject deletes identity, on the condition that its UID is still
// identity's.
func (c *Controller) deleteObject(ctx context.Context, identity objectReference, policy metav1.DeletionPropagation) error {
	res, err := c.resource(identity)
	if err != nil {
		return err
	}
	uid := identity.UID
	err = res.Delete(ctx, identity.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &policy,
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		// The UID differs: the object identity named is gone.
		c.graph.virtualDelete(identity)
		return nil
	}
	return err
}

// removeFinalizer removes finalizer f from identity (which the server then
// deletes if no other finalizer is left).
func (c *Controller) removeFinalizer(ctx context.Context, identity objectReference, f string) error {
	return c.patchLive(ctx, identity, nil, func(obj *metav1.PartialObjectMetadata) []jsonPatchOp {
		var ops []jsonPatchOp
		for i := len(obj.Finalizers) - 1; i >= 0; i-- {
			if obj.Finalizers[i] == f {
				path := "/metadata/finalizers/" + strconv.Itoa(i)
				ops = append(ops, jsonPatchOp{Op: "test", Path: path, Value: f}, jsonPatchOp{Op: "remove", Path: path})
			}
		}
		return ops
	})
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// removeOwnerReferencesPatch builds the operations that drop the
// references to the owners with the given UIDs.
func removeOwnerReferencesPatch(uids []types.UID) func(*metav1.PartialObjectMetadata) []jsonPatchOp {
	return func(obj *metav1.PartialObjectMetadata) []jsonPatchOp {
		var ops []jsonPatchOp
		// From the end, so that each index is still right when applied.
		for i := len(obj.OwnerReferences) - 1; i >= 0; i-- {
			ref := obj.OwnerReferences[i]
			for _, uid := range uids {
				if ref.UID == uid {
					path := "/metadata/ownerReferences/" + strconv.Itoa(i)
					ops = append(ops, jsonPatchOp{Op: "test", Path: path + "/uid", Value: string(uid)},
						jsonPatchOp{Op: "remove", Path: path})
					break
				}
			}
		}
		return ops
	}
}

// unblockOwnerReferencesPatch builds the operations that clear
// blockOwnerDeletion on every reference that sets it.
func unblockOwnerReferencesPatch(obj *metav1.PartialObjectMetadata) []jsonPatchOp {
	var ops []jsonPatchOp
	for i, ref := range obj.OwnerReferences {
		if blocks(ref) {
			path := "/metadata/ownerReferences/" + strconv.Itoa(i)
			ops = append(ops, jsonPatchOp{Op: "test", Path: path + "/uid", Value: string(ref.UID)},
				jsonPatchOp{Op: "replace", Path: path + "/blockOwnerDeletion", Value: false})
		}
	}
	return ops
}

// patchLive applies the JSON patch build computes from identity's current
// metadata (latest, or read afresh). Every operation is guarded by a test
// of what it changes, and the whole by a test of the UID, so a patch never
// applies to an object that changed meanwhile: it is rebuilt from a fresh
// read instead. A missing object or one with another UID is not an error.
func (c *Controller) patchLive(ctx context.Context, identity objectReference, latest *metav1.PartialObjectMetadata,
	build func(*metav1.PartialObjectMetadata) []jsonPatchOp) error {
	res, err := c.resource(identity)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	obj := latest
	for attempt := 1; ; attempt++ {
		if obj == nil {
			obj, err = res.Get(ctx, identity.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		if obj.UID != identity.UID {
			return nil
		}
		ops := build(obj)
		if len(ops) == 0 {
			return nil
		}
		ops = append([]jsonPatchOp{{Op: "test", Path: "/metadata/uid", Value: string(identity.UID)}}, ops...)
		data, err := json.Marshal(ops)
		if err != nil {
			return err
		}
		_, err = res.Patch(ctx, identity.Name, types.JSONPatchType, data, metav1.PatchOptions{})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return nil
		case (apierrors.IsConflict(err) || apierrors.IsInvalid(err)) && attempt < patchAttempts:
			obj = nil // changed meanwhile (a test failed): read again
		default:
			return err
		}
	}
}

// absentCache remembers owners that a lookup found absent. UIDs are never
// reused, so an absent owner stays absent.
type absentCache struct{ c *lru.Cache }

func newAbsentCache(size int) *absentCache { return &absentCache{c: lru.New(size)} }

func (a *absentCache) add(r objectReference) { a.c.Add(r, struct{}{}) }

func (a *absentCache) has(r objectReference) bool {
	_, ok := a.c.Get(r)
	return ok
}
