package apiserver

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"unicode"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/structured-merge-diff/v6/value"

	"github.com/havre/havre/internal/openapi"
	"github.com/havre/havre/internal/registry"
)

// The type converter knows the structure of every built-in type, for
// server-side apply and managedFields. Building it parses client-go's
// embedded schema (~0.3 s of CPU), so it starts in the background when the
// package is first used and writes wait for it.
var typeConverter struct {
	once  sync.Once
	ready chan struct{}
	tc    managedfields.TypeConverter
}

func startTypeConverter() {
	typeConverter.once.Do(func() {
		typeConverter.ready = make(chan struct{})
		go func() {
			builtin := applyconfigurations.NewTypeConverter(apiScheme)
			crd, err := managedfields.NewTypeConverter(openapi.APIExtensionsSchemas(), false)
			if err != nil {
				panic(fmt.Sprintf("apiextensions.k8s.io types: %v", err)) // static data: a bug
			}
			typeConverter.tc = newTrustedTypeConverter(groupTypeConverter{builtin: builtin, apiextensions: crd})
			close(typeConverter.ready)
			// Parsing the schema leaves tens of MB of garbage: hand it back
			// to the OS now rather than over the next minutes, so an idle
			// server stays small.
			debug.FreeOSMemory()
		}()
	})
}

func getTypeConverter() managedfields.TypeConverter {
	startTypeConverter()
	<-typeConverter.ready
	return typeConverter.tc
}

// trustedTypeConverter converts Go-typed built-in objects without
// validating them against the schema again: their structure is the
// schema's by construction (the schema is generated from these types), and
// the validation walk was half of managedFields' cost on every write. The
// first object of each kind is converted (and validated) by the wrapped
// converter, which gives the schema and type to use for the rest.
// Unstructured objects (apply patches, custom resources) are always
// validated.
type trustedTypeConverter struct {
	managedfields.TypeConverter
	mu    sync.RWMutex
	types map[schema.GroupVersionKind]trustedType
}

type trustedType struct {
	schema  *smdschema.Schema
	typeRef smdschema.TypeRef
}

func newTrustedTypeConverter(tc managedfields.TypeConverter) *trustedTypeConverter {
	return &trustedTypeConverter{TypeConverter: tc, types: map[schema.GroupVersionKind]trustedType{}}
}

func (c *trustedTypeConverter) ObjectToTyped(obj runtime.Object, opts ...typed.ValidationOptions) (*typed.TypedValue, error) {
	if _, ok := obj.(runtime.Unstructured); ok {
		return c.TypeConverter.ObjectToTyped(obj, opts...)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	c.mu.RLock()
	t, ok := c.types[gvk]
	c.mu.RUnlock()
	if !ok {
		tv, err := c.TypeConverter.ObjectToTyped(obj, opts...)
		if err == nil && !gvk.Empty() {
			c.mu.Lock()
			c.types[gvk] = trustedType{schema: tv.Schema(), typeRef: tv.TypeRef()}
			c.mu.Unlock()
		}
		return tv, err
	}
	v, err := value.NewValueReflect(obj)
	if err != nil {
		return nil, fmt.Errorf("error creating struct value reflector: %v", err)
	}
	// Deprecated upstream on the grounds that validation became cheap; on
	// a pod write it is still a quarter of the upkeep
	// (BenchmarkManagedFieldsPodCreate).
	//lint:ignore SA1019 measured: validating Go-typed objects again costs ~27% of managedFields upkeep.
	return typed.AsTypedUnvalidated(v, t.schema, t.typeRef), nil
}

// groupTypeConverter is client-go's type converter of the built-in kinds,
// with apiextensions.k8s.io's (which client-go does not know) from the
// server's own OpenAPI definitions.
type groupTypeConverter struct {
	builtin, apiextensions managedfields.TypeConverter
}

func (c groupTypeConverter) ObjectToTyped(obj runtime.Object, opts ...typed.ValidationOptions) (*typed.TypedValue, error) {
	if g := obj.GetObjectKind().GroupVersionKind().Group; g == "apiextensions.k8s.io" || g == "apiregistration.k8s.io" {
		return c.apiextensions.ObjectToTyped(obj, opts...)
	}
	return c.builtin.ObjectToTyped(obj, opts...)
}

func (c groupTypeConverter) TypedToObject(v *typed.TypedValue) (runtime.Object, error) {
	return c.builtin.TypedToObject(v)
}

// strategyDefaulter lets the field manager default objects as the
// resource's strategy does.
type strategyDefaulter struct{ s registry.Strategy }

func (d strategyDefaulter) Default(obj runtime.Object) { d.s.Default(obj) }

// fieldManagers are a resource's managers of managedFields: one for the main
// resource (which resets status) and one for /status (which resets spec).
type fieldManagers struct {
	once         sync.Once
	main, status *managedfields.FieldManager
	err          error
}

func (h *resourceHandler) fieldManager(subresource string) (*managedfields.FieldManager, error) {
	h.managers.once.Do(func() {
		gvk := h.res.GroupVersionKind()
		var tc managedfields.TypeConverter
		var convertor runtime.ObjectConvertor = apiScheme
		var creater runtime.ObjectCreater = apiScheme
		newManager := managedfields.NewDefaultFieldManager
		if h.custom != nil {
			if tc, h.managers.err = h.custom.typeConverter(); h.managers.err != nil {
				h.managers.err = apierrors.NewInternalError(h.managers.err)
				return
			}
			convertor, creater, newManager = unstructuredConvertor{}, unstructuredConvertor{}, managedfields.NewDefaultCRDFieldManager
			if h.custom.converter != nil {
				// managedFields of other versions go through the webhook.
				convertor = h.custom.converter
			}
		} else {
			tc = getTypeConverter()
		}
		apiVersion := fieldpath.APIVersion(gvk.GroupVersion().String())
		build := func(sub string, reset ...string) *managedfields.FieldManager {
			resetFields := map[fieldpath.APIVersion]fieldpath.Filter{}
			if len(reset) > 0 {
				set := fieldpath.NewSet()
				for _, f := range reset {
					set.Insert(fieldpath.MakePathOrDie(f))
				}
				resetFields[apiVersion] = fieldpath.NewExcludeSetFilter(set)
			}
			fm, err := newManager(tc, convertor, strategyDefaulter{h.res.Strategy}, creater,
				gvk, gvk.GroupVersion(), sub, resetFields)
			if err != nil && h.managers.err == nil {
				h.managers.err = fmt.Errorf("field manager for %s: %w", gvk, err)
			}
			return fm
		}
		if h.res.HasSubresource(registry.Status) {
			h.managers.main = build("", "status")
			h.managers.status = build(registry.Status, "spec")
		} else {
			h.managers.main = build("")
		}
	})
	if h.managers.err != nil {
		return nil, h.managers.err
	}
	if subresource == registry.Status && h.managers.status != nil {
		return h.managers.status, nil
	}
	return h.managers.main, nil
}

// trackManagedFields records the write of manager in obj's managedFields.
func (h *resourceHandler) trackManagedFields(live, obj runtime.Object, opts writeOptions, subresource string) (runtime.Object, error) {
	if opts.applied || opts.manager == "" {
		return obj, nil
	}
	fm, err := h.fieldManager(subresource)
	if err != nil {
		return nil, err
	}
	return fm.UpdateNoErrors(live, obj, opts.manager), nil
}

// writeOptions are the query options every write takes.
type writeOptions struct {
	dryRun bool
	// manager is the field manager the write is recorded under.
	manager string
	// applied: managedFields were already computed (server-side apply).
	applied bool
	// validation is Strict, Warn or Ignore.
	validation string
	// force: server-side apply takes fields from their other managers.
	force bool
}

const maxFieldManagerLength = 128

// parseWriteOptions reads dryRun, fieldManager, fieldValidation and force.
func parseWriteOptions(r *http.Request) (writeOptions, error) {
	var o writeOptions
	var err error
	if o.dryRun, err = isDryRun(r); err != nil {
		return o, err
	}
	q := r.URL.Query()
	o.manager = q.Get("fieldManager")
	if len(o.manager) > maxFieldManagerLength || strings.IndexFunc(o.manager, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
		return o, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "", field.ErrorList{
			field.Invalid(field.NewPath("fieldManager"), o.manager, "must be at most 128 printable characters")})
	}
	if o.manager == "" {
		// As kube-apiserver: the user agent's program name.
		o.manager, _, _ = strings.Cut(r.UserAgent(), "/")
		if len(o.manager) > maxFieldManagerLength {
			o.manager = o.manager[:maxFieldManagerLength]
		}
	}
	switch v := q.Get("fieldValidation"); v {
	case "":
		o.validation = "Warn"
	case "Strict", "Warn", "Ignore":
		o.validation = v
	default:
		return o, apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn, Strict; got %q", v))
	}
	switch v := q.Get("force"); v {
	case "", "false":
	case "true":
		o.force = true
	default:
		return o, apierrors.NewBadRequest(fmt.Sprintf("invalid force value %q", v))
	}
	return o, nil
}
