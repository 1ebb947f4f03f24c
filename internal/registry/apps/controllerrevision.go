package apps

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// ControllerRevisionStrategy governs controllerrevisions.
type ControllerRevisionStrategy struct{ registry.DefaultStrategy }

// Validate requires data and a non-negative revision.
func (ControllerRevisionStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	cr := obj.(*appsv1.ControllerRevision)
	var errs field.ErrorList
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(errs, core.ValidateNonnegative(&cr.Revision, field.NewPath("revision"))...)
}

// ValidateUpdate also keeps the data immutable.
func (s ControllerRevisionStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*appsv1.ControllerRevision).Data, old.(*appsv1.ControllerRevision).Data, field.NewPath("data"))...)
}
