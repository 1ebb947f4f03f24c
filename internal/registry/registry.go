// Package registry describes every resource Havre serves: its names for
// discovery, its scope, its verbs and subresources, and the Strategy that
// defaults and validates its objects. The API server is generic; everything
// kind-specific lives here and in the per-group packages beneath.
//
// This package must never touch storage or HTTP.
package registry

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy holds the kind-specific rules for one resource. The API server
// calls, on create: Default, PrepareForCreate, Validate; on update: Default,
// PrepareForUpdate, ValidateUpdate. Metadata (name, labels, annotations,
// resourceVersion, ...) is validated generically by the API server; a
// Strategy validates the rest of the object, with upstream field paths
// (field.NewPath("spec", "containers").Index(0).Child("image")).
type Strategy interface {
	// Default fills unset fields with upstream's defaults.
	Default(obj runtime.Object)
	// PrepareForCreate normalises a new object before validation (for
	// example clears fields a client may not set, sets initial status).
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	// PrepareForUpdate normalises an updated object given the stored one.
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	// Validate checks a new object.
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	// ValidateUpdate checks an update, including immutable fields.
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// SelectableFields returns the kind's field-selector fields, beyond
	// metadata.name and metadata.namespace which the server adds itself.
	// The set of keys must not depend on the object's content.
	SelectableFields(obj runtime.Object) fields.Set
}

// StatusStrategy is implemented by strategies with rules for the status
// subresource. Without it, status updates are only metadata-validated.
type StatusStrategy interface {
	ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// Subresource names.
const (
	Status      = "status"
	Scale       = "scale"
	Binding     = "binding"
	Eviction    = "eviction"
	Log         = "log"
	Exec        = "exec"
	Attach      = "attach"
	PortForward = "portforward"
	Proxy       = "proxy"
	Finalize    = "finalize"
	Token       = "token"
)

// Subresource is one subresource as listed in discovery.
type Subresource struct {
	Name  string
	Kind  schema.GroupVersionKind
	Verbs []string
}

// Resource is one served resource.
type Resource struct {
	schema.GroupVersionResource
	Kind         string
	Singular     string
	Namespaced   bool
	ShortNames   []string
	Categories   []string
	Verbs        []string
	Subresources []Subresource
	Strategy     Strategy
	// Virtual resources (reviews) are only created: the server validates
	// the object, has it answered (apiserver.Config.Reviews) and returns
	// it, never storing it.
	Virtual bool
}

// GroupVersionKind returns the resource's kind.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind)
}

// ListGroupVersionKind returns the resource's list kind.
func (r *Resource) ListGroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind + "List")
}

// HasSubresource reports whether the resource serves the named subresource.
func (r *Resource) HasSubresource(name string) bool {
	return r.Subresource(name) != nil
}

// Subresource returns the named subresource or nil.
func (r *Resource) Subresource(name string) *Subresource {
	for i := range r.Subresources {
		if r.Subresources[i].Name == name {
			return &r.Subresources[i]
		}
	}
	return nil
}

// HasVerb reports whether the resource supports verb.
func (r *Resource) HasVerb(verb string) bool {
	return slices.Contains(r.Verbs, verb)
}

// Verb sets used in the catalog.
var (
	VerbsAll          = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	VerbsNoCollection = []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	VerbsStatus       = []string{"get", "patch", "update"}
	VerbsCreate       = []string{"create"}
)

// DefaultStrategy is a Strategy with no kind-specific rules. Strategies
// embed it and override what they need.
type DefaultStrategy struct{}

func (DefaultStrategy) Default(runtime.Object)                                           {}
func (DefaultStrategy) PrepareForCreate(context.Context, runtime.Object)                 {}
func (DefaultStrategy) PrepareForUpdate(context.Context, runtime.Object, runtime.Object) {}
func (DefaultStrategy) Validate(context.Context, runtime.Object) field.ErrorList         { return nil }
func (DefaultStrategy) ValidateUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return nil
}
func (DefaultStrategy) SelectableFields(runtime.Object) fields.Set { return fields.Set{} }
