package apiserver

import (
	"context"
	"fmt"
	"math"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"k8s.io/client-go/util/jsonpath"
)

// crStrategy is the strategy of a custom resource, as the apiextensions
// server's custom resource strategy (registry/customresource) composes it
// from the same upstream pieces: OpenAPI schema validation, the scale
// paths, embedded objects' metadata, list types, and CEL rules (skipped
// after a blocking error), with ratcheting on updates. That package itself
// is not imported: it brings the generic etcd registry along.
type crStrategy struct {
	cr                               *customResource
	hasStatus                        bool
	schemaValidator, statusValidator apiservervalidation.SchemaValidator
	// cel compiles the schema's rules on the first write, as upstream's
	// serving info is built on a definition's first request: every
	// definition is loaded at each start, and compiling all their rules
	// (Gateway API's hundreds) was most of the start's CPU. nil: no schema.
	cel        func() *cel.Validator
	selectable []selectableField
}

type selectableField struct {
	name string
	path *jsonpath.JSONPath
}

func newCRStrategy(cr *customResource, v *apiextensionsv1.CustomResourceDefinitionVersion,
	schemaValidator, statusValidator apiservervalidation.SchemaValidator) (crStrategy, error) {
	s := crStrategy{cr: cr, schemaValidator: schemaValidator, statusValidator: statusValidator,
		hasStatus: v.Subresources != nil && v.Subresources.Status != nil}
	if structural := cr.structural; structural != nil {
		s.cel = sync.OnceValue(func() *cel.Validator { return cel.NewValidator(structural, true, celconfig.PerCallLimit) })
	}
	for _, sf := range v.SelectableFields {
		p := jsonpath.New("selectableField")
		p.AllowMissingKeys(true)
		if err := p.Parse("{" + sf.JSONPath + "}"); err != nil {
			return s, fmt.Errorf("selectable field %s: %w", sf.JSONPath, err)
		}
		s.selectable = append(s.selectable, selectableField{name: sf.JSONPath[1:], path: p})
	}
	return s, nil
}

// Default prunes fields the schema does not know (unless preserved) and
// applies the schema's defaults, as the apiextensions server's decoder does.
func (s crStrategy) Default(obj runtime.Object) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || s.cr.structural == nil {
		return
	}
	pruning.Prune(u.Object, s.cr.structural, true)
	structuraldefaulting.Default(u.Object, s.cr.structural)
}

// PrepareForCreate drops the status when it is a subresource.
func (s crStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.hasStatus {
		delete(obj.(*unstructured.Unstructured).Object, "status")
	}
}

// PrepareForUpdate keeps the stored status when it is a subresource.
func (s crStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if !s.hasStatus {
		return
	}
	u, o := obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)
	if st, ok := o.Object["status"]; ok {
		u.Object["status"] = st
	} else {
		delete(u.Object, "status")
	}
}

func (s crStrategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	u := obj.(*unstructured.Unstructured)
	if errs := s.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	errs := apiservervalidation.ValidateCustomResource(nil, u.UnstructuredContent(), s.schemaValidator)
	errs = append(errs, s.validateScaleSpec(u)...)
	errs = append(errs, s.validateScaleStatus(u)...)
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, u.Object, s.cr.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, s.cr.structural, u.Object)...)
	return s.validateRules(ctx, errs, u, nil)
}

func (s crStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	u, o := obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)
	if errs := s.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	correlated := common.NewCorrelatedObject(u.Object, o.Object, &model.Structural{Structural: s.cr.structural})
	errs := apiservervalidation.ValidateCustomResourceUpdate(nil, u.UnstructuredContent(), o.UnstructuredContent(), s.schemaValidator,
		apiservervalidation.WithRatcheting(correlated))
	errs = append(errs, s.validateScaleSpec(u)...)
	errs = append(errs, s.validateScaleStatus(u)...)
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, u.Object, s.cr.structural, false)...)
	if oldErrs := structurallisttype.ValidateListSetsAndMaps(nil, s.cr.structural, o.Object); len(oldErrs) == 0 {
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, s.cr.structural, u.Object)...)
	}
	return s.validateRules(ctx, errs, u, o, cel.WithRatcheting(correlated))
}

// ValidateStatusUpdate validates a status write: the status against its
// schema, the scale's status paths, list types and CEL rules (ratcheted).
func (s crStrategy) ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	u, o := obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)
	if errs := s.validateTypeMeta(u); len(errs) > 0 {
		return errs
	}
	correlated := common.NewCorrelatedObject(u.Object, o.Object, &model.Structural{Structural: s.cr.structural})
	var errs field.ErrorList
	if status, ok := u.Object["status"]; ok {
		var opts []apiservervalidation.ValidationOption
		if s.cr.structural != nil {
			opts = append(opts, apiservervalidation.WithRatcheting(correlated.Key("status")))
		}
		errs = append(errs, apiservervalidation.ValidateCustomResourceUpdate(field.NewPath("status"), status, o.Object["status"], s.statusValidator, opts...)...)
	}
	errs = append(errs, s.validateScaleStatus(u)...)
	if newErrs := structurallisttype.ValidateListSetsAndMaps(nil, s.cr.structural, u.Object); len(newErrs) > 0 {
		if oldErrs := structurallisttype.ValidateListSetsAndMaps(nil, s.cr.structural, o.Object); len(oldErrs) == 0 {
			errs = append(errs, newErrs...)
		}
	}
	return s.validateRules(ctx, errs, u, o, cel.WithRatcheting(correlated))
}

// validateRules adds the CEL rules' errors unless errs block them.
func (s crStrategy) validateRules(ctx context.Context, errs field.ErrorList, u, o *unstructured.Unstructured, opts ...cel.Option) field.ErrorList {
	if s.cel == nil {
		return errs
	}
	rules := s.cel()
	if rules == nil {
		return errs
	}
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return append(errs, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"))
		}
	}
	var old any
	if o != nil {
		old = o.Object
	}
	celErrs, _ := rules.Validate(ctx, nil, s.cr.structural, u.Object, old, celconfig.RuntimeCELCostBudget, opts...)
	return append(errs, celErrs...)
}

func (s crStrategy) validateTypeMeta(u *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	gvk := s.cr.gvk
	if u.GetKind() != gvk.Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), u.GetKind(), fmt.Sprintf("must be %v", gvk.Kind)))
	}
	if u.GetAPIVersion() != gvk.Group+"/"+gvk.Version {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), u.GetAPIVersion(), fmt.Sprintf("must be %v", gvk.Group+"/"+gvk.Version)))
	}
	return errs
}

// validateReplicas checks an integer at a scale path.
func validateReplicas(u *unstructured.Unstructured, path string) field.ErrorList {
	n, _, err := unstructured.NestedInt64(u.Object, jsonPath(path)...)
	switch {
	case err != nil:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, err.Error())}
	case n < 0:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, "should be a non-negative integer")}
	case n > math.MaxInt32:
		return field.ErrorList{field.Invalid(field.NewPath(path), n, fmt.Sprintf("should be less than or equal to %v", math.MaxInt32))}
	}
	return nil
}

func (s crStrategy) validateScaleSpec(u *unstructured.Unstructured) field.ErrorList {
	if s.cr.scale == nil {
		return nil
	}
	return validateReplicas(u, s.cr.scale.SpecReplicasPath)
}

func (s crStrategy) validateScaleStatus(u *unstructured.Unstructured) field.ErrorList {
	if s.cr.scale == nil {
		return nil
	}
	errs := validateReplicas(u, s.cr.scale.StatusReplicasPath)
	if p := s.cr.scale.LabelSelectorPath; p != nil {
		if sel, _, err := unstructured.NestedString(u.Object, jsonPath(*p)...); err != nil {
			errs = append(errs, field.Invalid(field.NewPath(*p), sel, err.Error()))
		}
	}
	return errs
}

// SelectableFields are the definition's selectableFields (the server adds
// metadata.name and metadata.namespace).
func (s crStrategy) SelectableFields(obj runtime.Object) fields.Set {
	set := fields.Set{}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return set
	}
	for _, sf := range s.selectable {
		set[sf.name] = ""
		results, err := sf.path.FindResults(u.Object)
		if err == nil && len(results) == 1 && len(results[0]) == 1 {
			if v := results[0][0].Interface(); v != nil {
				set[sf.name] = fmt.Sprint(v)
			}
		}
	}
	return set
}
