// Package apiextensions holds the strategy for apiextensions.k8s.io/v1
// CustomResourceDefinitions. Defaults, validation (messages and field paths)
// and the status rules are upstream's own, from
// k8s.io/apiextensions-apiserver: objects are converted to the internal
// type its validation is written against.
package apiextensions

import (
	"context"
	"strings"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// CustomResourceDefinitionStrategy governs CustomResourceDefinitions.
type CustomResourceDefinitionStrategy struct{ registry.DefaultStrategy }

// Default applies apiextensions.k8s.io/v1's defaults (scope-independent:
// conversion strategy None, listKind, singular, ...).
func (CustomResourceDefinitionStrategy) Default(obj runtime.Object) {
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(obj.(*apiextensionsv1.CustomResourceDefinition))
}

// PrepareForCreate clears the status and records the storage version as
// stored, as upstream's strategy does.
func (CustomResourceDefinitionStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
	crd.Generation = 1
	addStoredVersion(crd)
}

// PrepareForUpdate keeps the status, counts spec changes in the generation
// and adds a new storage version to status.storedVersions.
func (CustomResourceDefinitionStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	crd, oldCRD := obj.(*apiextensionsv1.CustomResourceDefinition), old.(*apiextensionsv1.CustomResourceDefinition)
	crd.Status = *oldCRD.Status.DeepCopy()
	if !apiequality.Semantic.DeepEqual(crd.Spec, oldCRD.Spec) {
		crd.Generation = oldCRD.Generation + 1
	}
	addStoredVersion(crd)
}

func addStoredVersion(crd *apiextensionsv1.CustomResourceDefinition) {
	for _, v := range crd.Spec.Versions {
		if !v.Storage {
			continue
		}
		for _, s := range crd.Status.StoredVersions {
			if s == v.Name {
				return
			}
		}
		crd.Status.StoredVersions = append(crd.Status.StoredVersions, v.Name)
		return
	}
}

// Validate is upstream's ValidateCustomResourceDefinition.
func (CustomResourceDefinitionStrategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	in, err := ToInternal(obj.(*apiextensionsv1.CustomResourceDefinition))
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateCustomResourceDefinition(ctx, in))
}

// withoutGenericMeta drops the metadata errors the API server reports itself
// for every kind, keeping the CRD's own rule on its name.
func withoutGenericMeta(errs field.ErrorList) field.ErrorList {
	out := errs[:0]
	for _, e := range errs {
		if strings.HasPrefix(e.Field, "metadata.") && !strings.Contains(e.Detail, "spec.names.plural") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// ValidateUpdate is upstream's ValidateCustomResourceDefinitionUpdate
// (immutable scope and group, stored versions, schema ratcheting).
func (CustomResourceDefinitionStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	in, err := ToInternal(obj.(*apiextensionsv1.CustomResourceDefinition))
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := ToInternal(old.(*apiextensionsv1.CustomResourceDefinition))
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateCustomResourceDefinitionUpdate(ctx, in, oldIn))
}

// ValidateStatusUpdate is upstream's status validation (stored versions,
// accepted names, conditions).
func (CustomResourceDefinitionStrategy) ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	in, err := ToInternal(obj.(*apiextensionsv1.CustomResourceDefinition))
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := ToInternal(old.(*apiextensionsv1.CustomResourceDefinition))
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateUpdateCustomResourceDefinitionStatus(ctx, in, oldIn))
}

// ToInternal converts a v1 CustomResourceDefinition to the internal type
// upstream's validation and schema packages work on.
func ToInternal(crd *apiextensionsv1.CustomResourceDefinition) (*apiextensionsinternal.CustomResourceDefinition, error) {
	out := &apiextensionsinternal.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, out, nil); err != nil {
		return nil, err
	}
	return out, nil
}
