package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kube-openapi/pkg/spec3"

	"github.com/havre/havre/internal/registry"
)

// customResource is what a resourceHandler of a custom resource (one
// served version of a CustomResourceDefinition) has beyond a built-in's:
// the definition's structural schema for pruning and defaulting, upstream's
// custom resource strategy (OpenAPI schema and CEL validation), the
// printer columns, the scale paths and the field managers' types.
type customResource struct {
	crd        *apiextensionsv1.CustomResourceDefinition
	gvk        schema.GroupVersionKind
	storage    schema.GroupVersion
	structural *structuralschema.Structural
	table      rest.TableConvertor
	scale      *apiextensionsv1.CustomResourceSubresourceScale
	// typeConverter is built from the definition's schemas on first use.
	typeConverter func() (managedfields.TypeConverter, error)
	// converter converts between the definition's versions when its
	// conversion strategy is Webhook (nil: None); convErr is why it could
	// not be built (a bad caBundle), returned by every conversion.
	converter runtime.ObjectConvertor
	convErr   error
}

// servedVersion returns the definition's version name, or nil.
func servedVersion(crd *apiextensionsv1.CustomResourceDefinition, name string) *apiextensionsv1.CustomResourceDefinitionVersion {
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == name {
			return &crd.Spec.Versions[i]
		}
	}
	return nil
}

func storageVersion(crd *apiextensionsv1.CustomResourceDefinition) string {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			return v.Name
		}
	}
	return ""
}

// newCustomResourceHandler builds the handler of one served version of an
// established definition.
func (s *Server) newCustomResourceHandler(crd *apiextensionsv1.CustomResourceDefinition, version string) (*resourceHandler, error) {
	v := servedVersion(crd, version)
	if v == nil {
		return nil, fmt.Errorf("no version %s", version)
	}
	names := crd.Status.AcceptedNames
	gv := schema.GroupVersion{Group: crd.Spec.Group, Version: version}
	gvk := gv.WithKind(names.Kind)
	namespaced := crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	cr := &customResource{crd: crd, gvk: gvk, storage: schema.GroupVersion{Group: crd.Spec.Group, Version: storageVersion(crd)}}
	cr.converter, cr.convErr = s.custom.conv.converterFor(crd)
	if cr.convErr != nil {
		cr.convErr = fmt.Errorf("conversion webhook for %s: %w", crd.Name, cr.convErr)
	}

	var internalSchema *apiextensionsinternal.JSONSchemaProps
	if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		internalSchema = &apiextensionsinternal.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internalSchema, nil); err != nil {
			return nil, err
		}
		ss, err := structuralschema.NewStructural(internalSchema)
		if err != nil {
			return nil, fmt.Errorf("structural schema of %s: %w", gvk, err)
		}
		cr.structural = ss
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(internalSchema)
	if err != nil {
		return nil, err
	}
	statusValidator := validator
	if internalSchema != nil {
		if st, ok := internalSchema.Properties["status"]; ok {
			if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&st); err != nil {
				return nil, err
			}
		}
	}
	subs := []registry.Subresource{}
	if v.Subresources != nil {
		if v.Subresources.Status != nil {
			subs = append(subs, registry.Subresource{Name: registry.Status, Kind: gvk, Verbs: registry.VerbsStatus})
		}
		if sc := v.Subresources.Scale; sc != nil {
			cr.scale = sc
			subs = append(subs, registry.Subresource{Name: registry.Scale, Kind: autoscalingv1.SchemeGroupVersion.WithKind("Scale"), Verbs: registry.VerbsStatus})
		}
	}
	strategy, err := newCRStrategy(cr, v, validator, statusValidator)
	if err != nil {
		return nil, err
	}

	columns := v.AdditionalPrinterColumns
	if len(columns) == 0 {
		columns = []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}}
	}
	if cr.table, err = tableconvertor.New(columns); err != nil {
		return nil, err
	}
	cr.typeConverter = onceTypeConverter(crd)

	res := &registry.Resource{
		GroupVersionResource: gv.WithResource(names.Plural), Kind: names.Kind, Singular: names.Singular,
		Namespaced: namespaced, ShortNames: names.ShortNames, Categories: names.Categories,
		Verbs: registry.VerbsAll, Subresources: subs, Strategy: strategy,
	}
	group := crd.Spec.Group
	objs := &objects{
		res: res, store: s.cfg.Store, prefix: "/registry/" + group + "/" + names.Plural + "/",
		gr: res.GroupResource(), custom: cr,
	}
	h := &resourceHandler{srv: s, res: res, objs: objs, nameFn: metavalidation.NameIsDNSSubdomain, trackGeneration: true, custom: cr}
	if crd.DeletionTimestamp != nil {
		// As upstream: the instances of a definition being deleted can be
		// read and deleted, not created.
		h.hooks.beforeCreate = func(context.Context, runtime.Object) error {
			err := apierrors.NewMethodNotSupported(res.GroupResource(), "create")
			err.ErrStatus.Message = "create not allowed while custom resource definition is terminating"
			return err
		}
	}
	return h, nil
}

// onceTypeConverter builds the structured-merge-diff types of a
// definition's versions from their OpenAPI schemas, once.
func onceTypeConverter(crd *apiextensionsv1.CustomResourceDefinition) func() (managedfields.TypeConverter, error) {
	var (
		mu   sync.Mutex
		tc   managedfields.TypeConverter
		err  error
		done bool
	)
	return func() (managedfields.TypeConverter, error) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return tc, err
		}
		done = true
		preserve := crd.Spec.PreserveUnknownFields
		var specs []*spec3.OpenAPI
		for _, v := range crd.Spec.Versions {
			doc, berr := builder.BuildOpenAPIV3(crd, v.Name, builder.Options{})
			if berr != nil {
				err = berr
				return nil, err
			}
			specs = append(specs, doc)
			if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil && v.Schema.OpenAPIV3Schema.XPreserveUnknownFields != nil && *v.Schema.OpenAPIV3Schema.XPreserveUnknownFields {
				preserve = true
			}
		}
		merged, merr := builder.MergeSpecsV3(specs...)
		if merr != nil {
			err = merr
			return nil, err
		}
		tc, err = managedfields.NewTypeConverter(merged.Components.Schemas, preserve)
		return tc, err
	}
}

// decodeCustomResource decodes a stored custom resource, in the handler's
// version: with conversion strategy None only apiVersion changes, with
// Webhook the definition's webhook converts it.
func (o *objects) decodeCustomResource(data []byte, rev int64) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if u.GetAPIVersion() == "" {
		u.SetAPIVersion(o.custom.storage.String())
	}
	u, err := o.custom.convertTo(u, o.custom.gvk.GroupVersion())
	if err != nil {
		return nil, err
	}
	if err := setResourceVersion(u, rev); err != nil {
		return nil, err
	}
	return u, nil
}

// encodeCustomResource encodes a custom resource for the store, in the
// storage version, without resourceVersion.
func (o *objects) encodeCustomResource(obj runtime.Object) ([]byte, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("custom resource %T is not unstructured", obj)
	}
	if u.GetAPIVersion() == "" {
		u.SetAPIVersion(o.custom.gvk.GroupVersion().String())
	}
	if o.custom.converter != nil || o.custom.convErr != nil {
		// The safe converter works on a copy: u is left alone.
		var err error
		if u, err = o.custom.convertTo(u, o.custom.storage); err != nil {
			return nil, err
		}
	}
	content := maps.Clone(u.Object)
	content["apiVersion"] = o.custom.storage.String()
	if md, ok := content["metadata"].(map[string]any); ok {
		md = maps.Clone(md)
		delete(md, "resourceVersion")
		delete(md, "selfLink")
		content["metadata"] = md
	}
	data, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	if len(data) > maxObjectBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(
			fmt.Sprintf("object is too large: %d bytes exceeds the limit of %d bytes", len(data), maxObjectBytes))
	}
	return data, nil
}

// checkUnknownFields prunes the fields a custom resource's schema does not
// know and reports them as fieldValidation asks (Strict: 400, Warn:
// Warning headers).
func (cr *customResource) checkUnknownFields(w http.ResponseWriter, obj runtime.Object, validation string) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || cr.structural == nil || validation == "Ignore" {
		return nil
	}
	// Pruning here is what the strategy's Default does anyway: the object
	// is pruned in place, once.
	paths := pruning.PruneWithOptions(u.Object, cr.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	if len(paths) == 0 {
		return nil
	}
	errs := make([]error, 0, len(paths))
	for _, p := range paths {
		errs = append(errs, fmt.Errorf("unknown field %q", p))
	}
	return fieldValidationError(w, cr.gvk, runtime.NewStrictDecodingError(errs), validation)
}

// crTable renders custom resources with the definition's printer columns.
func (cr *customResource) toTable(obj runtime.Object, opts tableOptionsT) (*metav1.Table, error) {
	t, err := cr.table.ConvertToTable(context.Background(), obj, &metav1.TableOptions{})
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	for i := range t.Rows {
		item := t.Rows[i].Object.Object
		switch opts.includeObject {
		case metav1.IncludeObject:
		case metav1.IncludeNone:
			t.Rows[i].Object.Object = nil
		default:
			t.Rows[i].Object.Object = partialMetadata(item)
		}
	}
	return t, nil
}

// scaleOf reads the scale subresource from the definition's paths.
func (cr *customResource) scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	u := obj.(*unstructured.Unstructured)
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{
		Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(),
		ResourceVersion: u.GetResourceVersion(), CreationTimestamp: u.GetCreationTimestamp(),
	}}
	if n, ok, _ := unstructured.NestedInt64(u.Object, jsonPath(cr.scale.SpecReplicasPath)...); ok {
		s.Spec.Replicas = int32(n)
	}
	if n, ok, _ := unstructured.NestedInt64(u.Object, jsonPath(cr.scale.StatusReplicasPath)...); ok {
		s.Status.Replicas = int32(n)
	}
	if p := cr.scale.LabelSelectorPath; p != nil {
		if sel, ok, _ := unstructured.NestedString(u.Object, jsonPath(*p)...); ok {
			s.Status.Selector = sel
		}
	}
	return s, nil
}

// setReplicas writes the scale's replicas at the definition's spec path.
func (cr *customResource) setReplicas(obj runtime.Object, n int32) error {
	u := obj.(*unstructured.Unstructured)
	return unstructured.SetNestedField(u.Object, int64(n), jsonPath(cr.scale.SpecReplicasPath)...)
}

// jsonPath splits a simple JSON path (".spec.replicas").
func jsonPath(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "."), ".")
}

// isEstablished reports whether a definition's resources are served.
func isEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	return apiextensionshelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established)
}

// unstructuredConvertor converts custom resources between the versions of
// a definition with conversion strategy None: only apiVersion changes.
type unstructuredConvertor struct{}

func (unstructuredConvertor) Convert(in, out, _ any) error {
	u, ok1 := in.(*unstructured.Unstructured)
	o, ok2 := out.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return fmt.Errorf("cannot convert %T to %T", in, out)
	}
	o.Object = runtime.DeepCopyJSON(u.Object)
	return nil
}

func (unstructuredConvertor) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("cannot convert %T", in)
	}
	gvk, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{u.GroupVersionKind()})
	if !ok {
		return nil, fmt.Errorf("%v is not convertible to %v", u.GroupVersionKind(), target)
	}
	out := u.DeepCopy()
	out.SetGroupVersionKind(gvk)
	return out, nil
}

func (unstructuredConvertor) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

func (unstructuredConvertor) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}
