package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"sigs.k8s.io/yaml"

	"github.com/havre/havre/internal/registry"
)

// resourceHandler serves one resource: its verbs and subresources.
type resourceHandler struct {
	srv  *Server
	res  *registry.Resource
	objs *objects
	// trackGeneration: metadata.generation counts spec changes.
	trackGeneration bool
	// createOnUpdate: PUT of a missing object creates it.
	createOnUpdate bool
	// nameFn validates metadata.name for this resource.
	nameFn metavalidation.ValidateNameFunc
	// hooks holds server behaviour particular to this resource.
	hooks resourceHooks
	// createMu serialises creates when a hook allocates from shared state.
	createMu sync.Mutex
	// events shares decoding and encoding of watched versions.
	events eventCache
	// managers maintain managedFields.
	managers fieldManagers
	// custom is set for custom resources.
	custom *customResource
}

// resourceHooks are the server-side behaviours a few kinds need beyond their
// registry strategy (allocations, graceful deletion, protected objects).
type resourceHooks struct {
	// beforeCreate runs after defaulting and before validation, under
	// createMu when serialiseCreate is set.
	beforeCreate    func(ctx context.Context, obj runtime.Object) error
	serialiseCreate bool
	// beforeUpdate runs on updates, patches and applies of the main
	// resource, after defaulting and before validation.
	beforeUpdate func(ctx context.Context, obj, old runtime.Object) error
	// gracePeriod returns the graceful-deletion period for obj when the
	// client gave none (nil), or adjusts the one it gave.
	gracePeriod func(obj runtime.Object, requested *int64) int64
	// beforeDelete may refuse a delete.
	beforeDelete func(obj runtime.Object) error
	// pendingDelete marks obj as being deleted (e.g. namespace phase).
	pendingDelete func(obj runtime.Object)
	// blocksDeletion reports finalizers kept outside metadata.finalizers.
	blocksDeletion func(obj runtime.Object) bool
	// returnDeleted: DELETE answers with the object, not a Status.
	returnDeleted bool
	// statusWritesMetadata: status writes keep the request's labels,
	// annotations and finalizers (as upstream's CRD status strategy, which
	// its finalizer relies on).
	statusWritesMetadata bool
	// afterWrite runs after every successful write (not dry runs).
	afterWrite func(ctx context.Context)
	// deleteFinalizers are added to every object marked for deletion.
	deleteFinalizers []string
}

func (h *resourceHandler) gr() schema.GroupResource { return h.res.GroupResource() }

func (h *resourceHandler) serve(w http.ResponseWriter, r *http.Request, info requestInfo) {
	if h.res.Namespaced && info.namespace == "" && info.name != "" {
		writeError(w, apierrors.NewNotFound(h.gr(), info.name))
		return
	}
	if !h.res.Namespaced && info.namespace != "" {
		writeError(w, errNotFoundPath())
		return
	}
	if info.subresource != "" {
		h.serveSubresource(w, withWarnings(w, r), info)
		return
	}
	if !h.res.HasVerb(info.verb) {
		writeError(w, apierrors.NewMethodNotSupported(h.gr(), info.verb))
		return
	}
	r = withWarnings(w, r)
	if h.res.Virtual {
		h.serveReview(w, r, info)
		return
	}
	switch info.verb {
	case "get":
		ctx, cancel := requestContext(r)
		defer cancel()
		obj, err := h.objs.get(ctx, info.namespace, info.name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeObject(w, r, http.StatusOK, obj)
	case "list":
		h.serveList(w, r, info)
	case "watch":
		h.serveWatch(w, r, info)
	case "create":
		h.serveCreate(w, r, info)
	case "update":
		h.serveUpdate(w, r, info)
	case "patch":
		h.servePatch(w, r, info)
	case "delete":
		h.serveDelete(w, r, info)
	case "deletecollection":
		h.serveDeleteCollection(w, r, info)
	default:
		writeError(w, apierrors.NewMethodNotSupported(h.gr(), info.verb))
	}
}

// readObject reads a create or update request: its options and its body,
// as an object of the resource's kind in the request's namespace.
func (h *resourceHandler) readObject(w http.ResponseWriter, r *http.Request, info requestInfo) (runtime.Object, writeOptions, error) {
	opts, err := parseWriteOptions(r)
	if err != nil {
		return nil, opts, err
	}
	obj, err := h.decodeBody(w, r, opts.validation)
	if err != nil {
		return nil, opts, err
	}
	return obj, opts, h.checkNamespace(obj, info.namespace)
}

// decodeBody decodes a body of the resource's kind; for custom resources,
// the fields the schema does not know are reported as fieldValidation asks.
func (h *resourceHandler) decodeBody(w http.ResponseWriter, r *http.Request, validation string) (runtime.Object, error) {
	obj, err := decodeBody(w, r, h.res.GroupVersionKind(), h.objs.newObject(), validation)
	if err == nil && h.custom != nil {
		err = h.custom.checkUnknownFields(w, obj, validation)
	}
	return obj, err
}

func (h *resourceHandler) serveCreate(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	obj, opts, err := h.readObject(w, r, info)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := h.create(ctx, obj, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, out)
}

// serveReview answers the create of a Virtual resource: the object is
// validated and answered, never stored.
func (h *resourceHandler) serveReview(w http.ResponseWriter, r *http.Request, info requestInfo) {
	answer := h.srv.cfg.Reviews[h.gr()]
	if info.verb != "create" || answer == nil {
		writeError(w, apierrors.NewMethodNotSupported(h.gr(), info.verb))
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	obj, _, err := h.readObject(w, r, info)
	if err != nil {
		writeError(w, err)
		return
	}
	h.res.Strategy.Default(obj)
	if errs := h.res.Strategy.Validate(ctx, obj); len(errs) > 0 {
		acc, _ := meta.Accessor(obj)
		writeError(w, apierrors.NewInvalid(h.res.GroupVersionKind().GroupKind(), acc.GetName(), errs))
		return
	}
	out, err := answer(ctx, obj)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusCreated, out)
}

// checkNamespace reconciles the namespace in the body with the URL's.
func (h *resourceHandler) checkNamespace(obj runtime.Object, namespace string) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if !h.res.Namespaced {
		acc.SetNamespace("")
		return nil
	}
	switch acc.GetNamespace() {
	case "":
		acc.SetNamespace(namespace)
	case namespace:
	default:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

// create runs the create path shared by POST, PUT-creates and the server's
// own bootstrap objects.
func (h *resourceHandler) create(ctx context.Context, obj runtime.Object, opts writeOptions) (runtime.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if h.res.Namespaced {
		if err := h.srv.namespaceAcceptsContent(ctx, acc.GetNamespace()); err != nil {
			return nil, err
		}
	}
	generated := acc.GetName() == "" && acc.GetGenerateName() != ""
	if generated {
		acc.SetName(acc.GetGenerateName() + utilrand.String(5))
	}
	acc.SetUID(uuid.NewUUID())
	acc.SetCreationTimestamp(now())
	acc.SetResourceVersion("")
	acc.SetDeletionTimestamp(nil)
	acc.SetDeletionGracePeriodSeconds(nil)
	acc.SetSelfLink("")
	acc.SetGeneration(0)
	if h.trackGeneration {
		acc.SetGeneration(1)
	}
	h.res.Strategy.Default(obj)
	h.res.Strategy.PrepareForCreate(ctx, obj)
	if h.hooks.serialiseCreate {
		h.createMu.Lock()
		defer h.createMu.Unlock()
	}
	if h.hooks.beforeCreate != nil {
		if err := h.hooks.beforeCreate(ctx, obj); err != nil {
			return nil, err
		}
	}
	attrs := admissionAttrs{op: admission.Create, obj: obj, namespace: acc.GetNamespace(), name: acc.GetName(),
		options: opts.createOptions(), dryRun: opts.dryRun}
	if err := h.admitMutate(ctx, attrs); err != nil {
		return nil, err
	}
	// What mutating plugins added is defaulted, as upstream's webhooks
	// default the objects they patch.
	h.res.Strategy.Default(obj)
	errs := metavalidation.ValidateObjectMetaAccessor(acc, h.res.Namespaced, h.nameFn, field.NewPath("metadata"))
	errs = append(errs, h.res.Strategy.Validate(ctx, obj)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(h.res.GroupVersionKind().GroupKind(), acc.GetName(), errs)
	}
	attrs.name = acc.GetName()
	if err := h.admitValidate(ctx, attrs); err != nil {
		return nil, err
	}
	obj, err = h.trackManagedFields(h.objs.newObject(), obj, opts, "")
	if err != nil {
		return nil, err
	}
	if acc, err = meta.Accessor(obj); err != nil {
		return nil, err
	}
	if opts.dryRun {
		return obj, nil
	}
	for attempt := 0; ; attempt++ {
		out, err := h.objs.create(ctx, obj)
		if err == nil {
			h.wrote(ctx)
		}
		if generated && apierrors.IsAlreadyExists(err) && attempt < 8 {
			acc.SetName(acc.GetGenerateName() + utilrand.String(5))
			continue
		}
		if generated && apierrors.IsAlreadyExists(err) {
			return nil, apierrors.NewGenerateNameConflict(h.gr(), acc.GetName(), 1)
		}
		return out, err
	}
}

func (h *resourceHandler) serveUpdate(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	obj, opts, err := h.readObject(w, r, info)
	if err != nil {
		writeError(w, err)
		return
	}
	acc, _ := meta.Accessor(obj)
	if acc.GetName() != info.name {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), info.name)))
		return
	}
	out, err := h.update(ctx, info.namespace, info.name, func(runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}, opts)
	if apierrors.IsNotFound(err) && h.createOnUpdate {
		out, err = h.create(ctx, obj, opts)
		if err == nil {
			writeObject(w, r, http.StatusCreated, out)
			return
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}

// update applies an update of the main resource: newObj gives the desired
// object from the current one; status, identity and server-owned metadata
// are kept from the stored object.
func (h *resourceHandler) update(ctx context.Context, namespace, name string,
	newObj func(cur runtime.Object) (runtime.Object, error), opts writeOptions) (runtime.Object, error) {
	return h.writeUpdate(ctx, namespace, name, opts.dryRun, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := newObj(cur)
		if err != nil {
			return nil, err
		}
		if err := h.carryOver(obj, cur); err != nil {
			return nil, err
		}
		if h.res.HasSubresource(registry.Status) {
			copyStatus(obj, cur)
		}
		h.res.Strategy.Default(obj)
		h.res.Strategy.PrepareForUpdate(ctx, obj, cur)
		// metadata.generation is the server's: it counts spec changes.
		acc, _ := meta.Accessor(obj)
		curAcc, _ := meta.Accessor(cur)
		acc.SetGeneration(curAcc.GetGeneration())
		if h.trackGeneration && specChanged(obj, cur) {
			acc.SetGeneration(curAcc.GetGeneration() + 1)
		}
		if h.hooks.beforeUpdate != nil {
			if err := h.hooks.beforeUpdate(ctx, obj, cur); err != nil {
				return nil, err
			}
		}
		attrs := admissionAttrs{op: admission.Update, obj: obj, old: cur, namespace: namespace, name: name,
			options: opts.updateOptions(), dryRun: opts.dryRun}
		if err := h.admitMutate(ctx, attrs); err != nil {
			return nil, err
		}
		h.res.Strategy.Default(obj)
		if err := h.validateUpdate(ctx, obj, cur, h.res.Strategy.ValidateUpdate); err != nil {
			return nil, err
		}
		if err := h.admitValidate(ctx, attrs); err != nil {
			return nil, err
		}
		return h.trackManagedFields(cur, obj, opts, "")
	})
}

// writeUpdate is the read-modify-write loop shared by update, patch and the
// subresources: it carries over server-owned metadata, validates metadata,
// skips no-op writes and removes objects whose last finalizer went away.
func (h *resourceHandler) writeUpdate(ctx context.Context, namespace, name string, dryRun bool,
	mutate func(cur runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	var final runtime.Object
	out, err := h.objs.guaranteedUpdate(ctx, namespace, name, func(cur runtime.Object) (runtime.Object, error) {
		obj, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		if err := h.carryOver(obj, cur); err != nil {
			return nil, err
		}
		acc, _ := meta.Accessor(obj)
		curAcc, _ := meta.Accessor(cur)
		// Unchanged objects are not written: the answer keeps the stored
		// resourceVersion, as kube-apiserver does.
		if rv := acc.GetResourceVersion(); rv == "" || rv == curAcc.GetResourceVersion() {
			acc.SetResourceVersion(curAcc.GetResourceVersion())
			if equalObjects(obj, cur) {
				final = cur
				return nil, nil
			}
			if rv == "" {
				acc.SetResourceVersion("")
			}
		}
		if dryRun {
			final = obj
			return nil, nil
		}
		return obj, nil
	})
	if err != nil {
		return nil, err
	}
	if final != nil {
		return final, nil
	}
	defer h.wrote(ctx)
	return h.finishIfDeleted(ctx, out)
}

// wrote runs the afterWrite hook.
func (h *resourceHandler) wrote(ctx context.Context) {
	if h.hooks.afterWrite != nil {
		h.hooks.afterWrite(ctx)
	}
}

// carryOver copies server-owned metadata from the stored object onto an
// update, as kube-apiserver's BeforeUpdate does, after checking the
// client's uid and resourceVersion preconditions.
func (h *resourceHandler) carryOver(obj, cur runtime.Object) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	curAcc, _ := meta.Accessor(cur)
	name := curAcc.GetName()
	if uid := acc.GetUID(); uid != "" && uid != curAcc.GetUID() {
		return apierrors.NewConflict(h.gr(), name,
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, curAcc.GetUID()))
	}
	if rv := acc.GetResourceVersion(); rv != "" && rv != curAcc.GetResourceVersion() {
		return h.objs.conflict(name)
	}
	acc.SetUID(curAcc.GetUID())
	acc.SetNamespace(curAcc.GetNamespace())
	acc.SetCreationTimestamp(curAcc.GetCreationTimestamp())
	acc.SetDeletionTimestamp(curAcc.GetDeletionTimestamp())
	acc.SetDeletionGracePeriodSeconds(curAcc.GetDeletionGracePeriodSeconds())
	acc.SetSelfLink("")
	if !h.trackGeneration || acc.GetGeneration() < curAcc.GetGeneration() {
		acc.SetGeneration(curAcc.GetGeneration())
	}
	return nil
}

// finishIfDeleted removes an object that is being deleted and has no
// finalizers left.
func (h *resourceHandler) finishIfDeleted(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	acc, _ := meta.Accessor(obj)
	if acc.GetDeletionTimestamp() == nil || len(acc.GetFinalizers()) > 0 {
		return obj, nil
	}
	if h.hooks.blocksDeletion != nil && h.hooks.blocksDeletion(obj) {
		return obj, nil
	}
	if h.hooks.gracePeriod != nil && acc.GetDeletionGracePeriodSeconds() != nil && *acc.GetDeletionGracePeriodSeconds() > 0 {
		return obj, nil // graceful deletion: the node agent finishes it
	}
	rv, _ := strconv.ParseInt(acc.GetResourceVersion(), 10, 64)
	_, err := h.objs.remove(ctx, acc.GetNamespace(), acc.GetName(), rv)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return nil, err
	}
	return obj, nil
}

func (h *resourceHandler) validateUpdate(ctx context.Context, obj, cur runtime.Object,
	kind func(ctx context.Context, obj, old runtime.Object) field.ErrorList) error {
	acc, _ := meta.Accessor(obj)
	curAcc, _ := meta.Accessor(cur)
	// An unconditional update is validated as if it named the stored
	// resourceVersion, which is what it will be written over.
	if acc.GetResourceVersion() == "" {
		acc.SetResourceVersion(curAcc.GetResourceVersion())
		defer acc.SetResourceVersion("")
	}
	errs := metavalidation.ValidateObjectMetaAccessorUpdate(acc, curAcc, field.NewPath("metadata"))
	errs = append(errs, metavalidation.ValidateObjectMetaAccessor(acc, h.res.Namespaced, h.nameFn, field.NewPath("metadata"))...)
	if kind != nil {
		errs = append(errs, kind(ctx, obj, cur)...)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(h.res.GroupVersionKind().GroupKind(), acc.GetName(), errs)
	}
	return nil
}

// deleteOptions reads DeleteOptions from the body and the query.
// decodeDeleteOptionsOfAnyGroup decodes a JSON or YAML body whose kind is
// DeleteOptions, whatever its apiVersion, into opts.
func decodeDeleteOptionsOfAnyGroup(body []byte, opts *metav1.DeleteOptions) bool {
	j, err := yaml.YAMLToJSON(body)
	if err != nil {
		return false
	}
	var tm metav1.TypeMeta
	if json.Unmarshal(j, &tm) != nil || tm.Kind != "DeleteOptions" {
		return false
	}
	return json.Unmarshal(j, opts) == nil
}

func deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		info, err := negotiateInput(r)
		if err != nil {
			return nil, err
		}
		gvk := metaV1.WithKind("DeleteOptions")
		if _, _, err := info.Serializer.Decode(body, &gvk, opts); err != nil {
			// kube-apiserver takes DeleteOptions in the version of any
			// group it serves (client-go's dynamic client sends the
			// resource's own, custom groups included): they are meta/v1's.
			if !runtime.IsNotRegisteredError(err) || !decodeDeleteOptionsOfAnyGroup(body, opts) {
				return nil, apierrors.NewBadRequest(err.Error())
			}
		}
	}
	if err := parameterCodec.DecodeParameters(r.URL.Query(), metaV1, opts); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	//lint:ignore SA1019 clients still send orphanDependents; it must be honoured.
	if opts.OrphanDependents != nil && opts.PropagationPolicy != nil {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "DeleteOptions"}, "", field.ErrorList{
			field.Invalid(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, "orphanDependents and deletionPropagation cannot be both set")})
	}
	if p := opts.PropagationPolicy; p != nil && *p != metav1.DeletePropagationBackground &&
		*p != metav1.DeletePropagationForeground && *p != metav1.DeletePropagationOrphan {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "DeleteOptions"}, "", field.ErrorList{
			field.NotSupported(field.NewPath("propagationPolicy"), *p, []string{"Foreground", "Background", "Orphan", "nil"})})
	}
	if g := opts.GracePeriodSeconds; g != nil && *g < 0 {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q", v))
		}
	}
	return opts, nil
}

func (h *resourceHandler) serveDelete(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := h.admitMutate(ctx, admissionAttrs{op: admission.Delete, namespace: info.namespace, name: info.name,
		options: opts, dryRun: len(opts.DryRun) > 0}); err != nil {
		writeError(w, err)
		return
	}
	obj, deleted, err := h.delete(ctx, info.namespace, info.name, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	if deleted && !h.hooks.returnDeleted {
		writeObject(w, r, http.StatusOK, statusSuccess(h.gr(), obj))
		return
	}
	writeObject(w, r, http.StatusOK, obj)
}

// delete deletes one object, honouring preconditions, graceful deletion and
// finalizers. deleted reports whether the object is gone now (rather than
// marked for deletion).
func (h *resourceHandler) delete(ctx context.Context, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	dryRun := len(opts.DryRun) > 0
	for attempt := 0; attempt < 100; attempt++ {
		cur, err := h.objs.get(ctx, namespace, name)
		if err != nil {
			return nil, false, err
		}
		acc, _ := meta.Accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != acc.GetUID() {
				return nil, false, apierrors.NewConflict(h.gr(), name,
					fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, acc.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != acc.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(h.gr(), name,
					fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, acc.GetResourceVersion()))
			}
		}
		if h.hooks.beforeDelete != nil {
			if err := h.hooks.beforeDelete(cur); err != nil {
				return nil, false, err
			}
		}
		if err := h.admitValidate(ctx, admissionAttrs{op: admission.Delete, old: cur, namespace: namespace, name: name,
			options: opts, dryRun: dryRun}); err != nil {
			return nil, false, err
		}
		rv, _ := strconv.ParseInt(acc.GetResourceVersion(), 10, 64)
		next := cur.DeepCopyObject()
		nacc, _ := meta.Accessor(next)
		grace := int64(0)
		if h.hooks.gracePeriod != nil {
			grace = h.hooks.gracePeriod(cur, opts.GracePeriodSeconds)
		}
		finalizers := withPropagationFinalizer(nacc.GetFinalizers(), opts)
		for _, f := range h.hooks.deleteFinalizers {
			if !slices.Contains(finalizers, f) {
				finalizers = append(slices.Clone(finalizers), f)
			}
		}
		nacc.SetFinalizers(finalizers)
		pending := grace > 0 || len(finalizers) > 0 || (h.hooks.blocksDeletion != nil && h.hooks.blocksDeletion(cur))
		if !pending {
			if dryRun {
				return cur, true, nil
			}
			out, err := h.objs.remove(ctx, namespace, name, rv)
			if apierrors.IsConflict(err) {
				continue
			}
			if err == nil {
				h.wrote(ctx)
			}
			return out, err == nil, err
		}
		// Mark for deletion: the first delete sets the deadline; a later one
		// may only shorten it.
		deadline := metav1.NewTime(now().Add(secondsDuration(grace)))
		if old := acc.GetDeletionTimestamp(); old == nil || (old.After(deadline.Time) && grace >= 0) {
			nacc.SetDeletionTimestamp(&deadline)
			nacc.SetDeletionGracePeriodSeconds(&grace)
		} else if slices.Equal(acc.GetFinalizers(), finalizers) {
			return cur, false, nil // already being deleted, nothing new
		}
		if h.hooks.pendingDelete != nil {
			h.hooks.pendingDelete(next)
		}
		if dryRun {
			return next, false, nil
		}
		out, err := h.objs.put(ctx, next, rv)
		if apierrors.IsConflict(err) {
			continue
		}
		return out, false, err
	}
	return nil, false, apierrors.NewConflict(h.gr(), name, errors.New("too many concurrent writers"))
}

// withPropagationFinalizer adds the finalizer that records the requested
// propagation policy for the garbage collector.
func withPropagationFinalizer(finalizers []string, opts *metav1.DeleteOptions) []string {
	//lint:ignore SA1019 clients still send orphanDependents; it must be honoured.
	orphan := opts.OrphanDependents
	policy := metav1.DeletePropagationBackground
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
	} else if orphan != nil && *orphan {
		policy = metav1.DeletePropagationOrphan
	}
	var want string
	switch policy {
	case metav1.DeletePropagationForeground:
		want = metav1.FinalizerDeleteDependents
	case metav1.DeletePropagationOrphan:
		want = metav1.FinalizerOrphanDependents
	default:
		return finalizers
	}
	if slices.Contains(finalizers, want) {
		return finalizers
	}
	return append(slices.Clone(finalizers), want)
}

func (h *resourceHandler) serveDeleteCollection(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	lopts, err := listOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	lopts.Limit, lopts.Continue = 0, ""
	if err := h.admitMutate(ctx, admissionAttrs{op: admission.Delete, namespace: info.namespace,
		options: opts, dryRun: len(opts.DryRun) > 0}); err != nil {
		writeError(w, err)
		return
	}
	list, err := h.list(ctx, info.namespace, lopts)
	if err != nil {
		writeError(w, err)
		return
	}
	items, _ := meta.ExtractList(list)
	var deleted []runtime.Object
	for _, item := range items {
		acc, _ := meta.Accessor(item)
		out, _, err := h.delete(ctx, acc.GetNamespace(), acc.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		deleted = append(deleted, out)
	}
	if err := meta.SetList(list, deleted); err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, list)
}

// equalObjects reports whether an update would change nothing.
func equalObjects(a, b runtime.Object) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}

func errNotFoundPath() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{},
	}}
}
