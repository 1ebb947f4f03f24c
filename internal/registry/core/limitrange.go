package core

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// LimitRangeStrategy governs limitranges.
type LimitRangeStrategy struct{ registry.DefaultStrategy }

// Default fills, for Container limits, default from max and defaultRequest
// from default, then from min.
func (LimitRangeStrategy) Default(obj runtime.Object) {
	lr := obj.(*corev1.LimitRange)
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		fillMissing(item.Default, item.Max)
		fillMissing(item.DefaultRequest, item.Default)
		fillMissing(item.DefaultRequest, item.Min)
	}
}

func fillMissing(dst, src corev1.ResourceList) {
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v.DeepCopy()
		}
	}
}

// Validate checks limit types, quantities and their ordering
// (min <= defaultRequest <= default <= max).
func (LimitRangeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	types := sets.New[corev1.LimitType]()
	for i, item := range obj.(*corev1.LimitRange).Spec.Limits {
		p := field.NewPath("spec", "limits").Index(i)
		errs = append(errs, ValidateQualifiedName(string(item.Type), p.Child("type"))...)
		if types.Has(item.Type) {
			errs = append(errs, field.Duplicate(p.Child("type"), item.Type))
		}
		types.Insert(item.Type)
		for _, l := range []struct {
			name string
			rl   corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest}, {"maxLimitRequestRatio", item.MaxLimitRequestRatio}} {
			errs = append(errs, ValidateResourceList(l.rl, p.Child(l.name))...)
		}
		if item.Type == corev1.LimitTypePod {
			if len(item.Default) > 0 {
				errs = append(errs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(item.DefaultRequest) > 0 {
				errs = append(errs, field.Forbidden(p.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		}
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := item.Min[corev1.ResourceStorage]
			_, hasMax := item.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				errs = append(errs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		errs = append(errs, validateLimitOrder(item, p)...)
	}
	return errs
}

func validateLimitOrder(item corev1.LimitRangeItem, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	// greater reports a > b when both are set.
	greater := func(a, b corev1.ResourceList, k corev1.ResourceName) (resource.Quantity, resource.Quantity, bool) {
		qa, okA := a[k]
		qb, okB := b[k]
		return qa, qb, okA && okB && qa.Cmp(qb) > 0
	}
	names := sets.New[corev1.ResourceName]()
	for _, rl := range []corev1.ResourceList{item.Max, item.Min, item.Default, item.DefaultRequest, item.MaxLimitRequestRatio} {
		for k := range rl {
			names.Insert(k)
		}
	}
	for _, k := range sets.List(names) {
		key := string(k)
		if mn, mx, bad := greater(item.Min, item.Max, k); bad {
			errs = append(errs, field.Invalid(p.Child("min").Key(key), mn, fmt.Sprintf("min value %s is greater than max value %s", mn.String(), mx.String())))
		}
		if mn, dr, bad := greater(item.Min, item.DefaultRequest, k); bad {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), dr, fmt.Sprintf("min value %s is greater than default request value %s", mn.String(), dr.String())))
		}
		if dr, mx, bad := greater(item.DefaultRequest, item.Max, k); bad {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), dr, fmt.Sprintf("default request value %s is greater than max value %s", dr.String(), mx.String())))
		}
		if dr, d, bad := greater(item.DefaultRequest, item.Default, k); bad {
			errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), dr, fmt.Sprintf("default request value %s is greater than default limit value %s", dr.String(), d.String())))
		}
		if mn, d, bad := greater(item.Min, item.Default, k); bad {
			errs = append(errs, field.Invalid(p.Child("default").Key(key), mn, fmt.Sprintf("min value %s is greater than default value %s", mn.String(), d.String())))
		}
		if d, mx, bad := greater(item.Default, item.Max, k); bad {
			errs = append(errs, field.Invalid(p.Child("default").Key(key), mx, fmt.Sprintf("default value %s is greater than max value %s", d.String(), mx.String())))
		}
		if r, ok := item.MaxLimitRequestRatio[k]; ok && r.Cmp(resource.MustParse("1")) < 0 {
			errs = append(errs, field.Invalid(p.Child("maxLimitRequestRatio").Key(key), r, fmt.Sprintf("ratio %s is less than 1", r.String())))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s LimitRangeStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
