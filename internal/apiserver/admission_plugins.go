package apiserver

import (
	"context"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"

	hadmission "github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/auth"
)

// The generic admission seam: every write of a resource (create, update,
// patch, apply, delete, deletecollection and the status, scale, binding,
// eviction and finalize subresources) is offered to Config.Admission's
// plugins. Mutating plugins (admitMutate) run after the built-in defaulting
// and admission steps and before validation; validating plugins
// (admitValidate) after validation and before the store write. Writes the
// server makes on its own (bootstrap objects: no user in the context, the
// eviction subresource's pod delete) are not offered.

// admissionAttrs describes one write for the admission plugins.
type admissionAttrs struct {
	op admission.Operation
	// obj is the new object (nil on delete), old the stored one (nil on
	// create).
	obj, old runtime.Object
	// subresource, with kind the kind of its objects (zero: the
	// resource's kind).
	subresource string
	kind        schema.GroupVersionKind
	namespace   string
	name        string
	// options is CreateOptions, UpdateOptions or DeleteOptions.
	options runtime.Object
	dryRun  bool
}

type noAdmissionKey struct{}

// withoutAdmission marks writes the server makes on a client's behalf that
// upstream does not admit (the eviction subresource's delete).
func withoutAdmission(ctx context.Context) context.Context {
	return context.WithValue(ctx, noAdmissionKey{}, true)
}

// admissionUser returns the request's user as the admission plugins see
// it; ok is false for the server's own writes.
func admissionUser(ctx context.Context) (user.Info, bool) {
	if skip, _ := ctx.Value(noAdmissionKey{}).(bool); skip {
		return nil, false
	}
	u, ok := auth.UserFrom(ctx)
	if !ok {
		return nil, false
	}
	return &user.DefaultInfo{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}, true
}

// admissionObjects are the ObjectInterfaces the plugins are called with.
var admissionObjects = sync.OnceValue(func() *hadmission.ObjectInterfaces {
	return hadmission.NewObjectInterfaces(apiScheme)
})

// attributes builds the admission.Attributes of a write, or nil when it is
// not to be admitted.
func (h *resourceHandler) attributes(ctx context.Context, a admissionAttrs) admission.Attributes {
	chain := h.srv.cfg.Admission
	if chain == nil || !chain.Handles(a.op) {
		return nil
	}
	u, ok := admissionUser(ctx)
	if !ok {
		return nil
	}
	kind := a.kind
	if kind.Empty() {
		kind = h.res.GroupVersionKind()
	}
	admissionObjects().RegisterKind(h.res.GroupVersionResource, a.subresource, kind)
	return admission.NewAttributesRecord(a.obj, a.old, kind, a.namespace, a.name,
		h.res.GroupVersionResource, a.subresource, a.op, a.options, a.dryRun, u)
}

// admitMutate runs the mutating admission plugins on a write; they may
// change a.obj in place.
func (h *resourceHandler) admitMutate(ctx context.Context, a admissionAttrs) error {
	attrs := h.attributes(ctx, a)
	if attrs == nil {
		return nil
	}
	// The plugins see objects with their apiVersion and kind set; the
	// server's typed objects carry none, which is restored after.
	defer keepKind(a.obj)()
	return h.srv.cfg.Admission.Admit(ctx, attrs, admissionObjects())
}

// admitValidate runs the validating admission plugins on a write.
func (h *resourceHandler) admitValidate(ctx context.Context, a admissionAttrs) error {
	attrs := h.attributes(ctx, a)
	if attrs == nil {
		return nil
	}
	return h.srv.cfg.Admission.Validate(ctx, attrs, admissionObjects())
}

// keepKind returns a function restoring obj's apiVersion and kind.
func keepKind(obj runtime.Object) func() {
	if obj == nil {
		return func() {}
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return func() { obj.GetObjectKind().SetGroupVersionKind(gvk) }
}

// createOptions and updateOptions are the operation options of a write.
func (o writeOptions) createOptions() *metav1.CreateOptions {
	c := &metav1.CreateOptions{FieldManager: o.manager, FieldValidation: o.validation}
	if o.dryRun {
		c.DryRun = []string{metav1.DryRunAll}
	}
	return c
}

func (o writeOptions) updateOptions() *metav1.UpdateOptions {
	u := &metav1.UpdateOptions{FieldManager: o.manager, FieldValidation: o.validation}
	if o.dryRun {
		u.DryRun = []string{metav1.DryRunAll}
	}
	return u
}

// warningRecorder sends the warnings admission plugins (webhooks) add as
// Warning headers of the response.
type warningRecorder struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (r *warningRecorder) AddWarning(_, text string) {
	if text == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	addWarning(r.w, text)
}

// withWarnings lets admission plugins add Warning headers to w.
func withWarnings(w http.ResponseWriter, r *http.Request) *http.Request {
	return r.WithContext(warning.WithWarningRecorder(r.Context(), &warningRecorder{w: w}))
}
