// Package apiregistration holds the strategy for apiregistration.k8s.io/v1
// APIServices: kube-aggregator's defaults, validation and status rules.
package apiregistration

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	internal "k8s.io/kube-aggregator/pkg/apis/apiregistration"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/validation"

	"github.com/havre/havre/internal/registry"
)

// APIServiceStrategy governs apiservices.
type APIServiceStrategy struct{ registry.DefaultStrategy }

// Default sets spec.service.port 443, as upstream's defaulting.
func (APIServiceStrategy) Default(obj runtime.Object) {
	if svc := obj.(*apiregistrationv1.APIService).Spec.Service; svc != nil {
		apiregistrationv1.SetDefaults_ServiceReference(svc)
	}
}

// PrepareForCreate clears the status; a local APIService (no service) is
// Available at once, as upstream's strategy.
func (APIServiceStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	a := obj.(*apiregistrationv1.APIService)
	a.Status = apiregistrationv1.APIServiceStatus{}
	if a.Spec.Service == nil {
		helper.SetAPIServiceCondition(a, helper.NewLocalAvailableAPIServiceCondition())
	}
}

// PrepareForUpdate keeps the stored status.
func (APIServiceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	obj.(*apiregistrationv1.APIService).Status = old.(*apiregistrationv1.APIService).Status
}

// Validate is upstream's ValidateAPIService.
func (APIServiceStrategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	in, err := toInternal(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateAPIService(ctx, in))
}

// ValidateUpdate is upstream's ValidateAPIServiceUpdate.
func (APIServiceStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	in, err := toInternal(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := toInternal(old)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateAPIServiceUpdate(ctx, in, oldIn))
}

// ValidateStatusUpdate is upstream's ValidateAPIServiceStatusUpdate.
func (APIServiceStrategy) ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	in, err := toInternal(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := toInternal(old)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return withoutGenericMeta(validation.ValidateAPIServiceStatusUpdate(ctx, in, oldIn))
}

func toInternal(obj runtime.Object) (*internal.APIService, error) {
	out := &internal.APIService{}
	err := apiregistrationv1.Convert_v1_APIService_To_apiregistration_APIService(obj.(*apiregistrationv1.APIService), out, nil)
	return out, err
}

// withoutGenericMeta drops the metadata errors the API server's generic
// validation reports already, except the name's, which upstream checks
// against the group and version.
func withoutGenericMeta(errs field.ErrorList) field.ErrorList {
	out := errs[:0]
	for _, e := range errs {
		if strings.HasPrefix(e.Field, "metadata.") && e.Field != "metadata.name" {
			continue
		}
		out = append(out, e)
	}
	return out
}
