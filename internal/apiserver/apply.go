package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errApplyUnsupported(resource string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("server-side apply is not supported on %s", resource),
	}}
}

// serveApply serves server-side apply (PATCH application/apply-patch+yaml):
// the field manager merges the applied configuration into the live object,
// owning the fields it sets and failing with 409 on fields other managers
// own unless force is set. A missing object is created.
func (h *resourceHandler) serveApply(ctx context.Context, w http.ResponseWriter, r *http.Request, info requestInfo, p *patcher, opts writeOptions) {
	if r.URL.Query().Get("fieldManager") == "" {
		writeError(w, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "", field.ErrorList{
			field.Required(field.NewPath("fieldManager"), "is required for apply requests")}))
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(p.body); err != nil {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("error decoding apply configuration: %v", err)))
		return
	}
	if gvk := applied.GroupVersionKind(); gvk != p.gvk {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf(
			"the apiVersion and kind of the applied configuration (%s, %s) do not match the resource (%s, %s)",
			gvk.GroupVersion(), gvk.Kind, p.gvk.GroupVersion(), p.gvk.Kind)))
		return
	}
	if applied.GetName() != info.name {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), info.name)))
		return
	}
	if ns := applied.GetNamespace(); h.res.Namespaced && ns != "" && ns != info.namespace {
		writeError(w, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	fm, err := h.fieldManager("")
	if err != nil {
		writeError(w, err)
		return
	}
	apply := func(live runtime.Object) (runtime.Object, error) {
		out, err := fm.Apply(live, applied.DeepCopy(), opts.manager, opts.force)
		var status apierrors.APIStatus
		if err != nil && !errors.As(err, &status) {
			// The configuration does not fit the kind's schema (a field
			// it does not declare, a wrong type): the client's error.
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if err != nil {
			return nil, err
		}
		// Without a resourceVersion in the configuration the apply is
		// unconditional and retried on concurrent writes.
		if applied.GetResourceVersion() == "" {
			if acc, err := meta.Accessor(out); err == nil {
				acc.SetResourceVersion("")
			}
		}
		return out, nil
	}
	opts.applied = true
	out, err := h.update(ctx, info.namespace, info.name, apply, opts)
	if apierrors.IsNotFound(err) {
		// Apply creates: the configuration applied to an empty object.
		live := h.objs.newObject()
		acc, _ := meta.Accessor(live)
		acc.SetName(info.name)
		acc.SetNamespace(info.namespace)
		var obj runtime.Object
		if obj, err = apply(live); err == nil {
			if err = h.checkNamespace(obj, info.namespace); err == nil {
				out, err = h.create(ctx, obj, opts)
				if err == nil {
					writeObject(w, r, http.StatusCreated, out)
					return
				}
			}
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, out)
}
