package storage

import (
	"context"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// VolumeAttributesClassStrategy governs volumeattributesclasses: a named
// set of driver-specific attributes (IOPS, throughput) a claim asks for by
// spec.volumeAttributesClassName. Driver and parameters are immutable.
type VolumeAttributesClassStrategy struct{ registry.DefaultStrategy }

// Validate checks, as upstream: driverName a qualified name, parameters
// at least one, at most 512, of at most 256 KiB together, keys not empty.
func (VolumeAttributesClassStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	c := obj.(*storagev1.VolumeAttributesClass)
	var errs field.ErrorList
	dp := field.NewPath("driverName")
	if c.DriverName == "" {
		errs = append(errs, field.Required(dp, ""))
	} else {
		for _, e := range core.ValidateQualifiedName(strings.ToLower(c.DriverName), dp) {
			e.BadValue = c.DriverName
			errs = append(errs, e)
		}
	}
	pp := field.NewPath("parameters")
	if len(c.Parameters) > maxParameters {
		return append(errs, field.TooLong(pp, "", maxParameters))
	}
	size := 0
	for k, v := range c.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(pp, k, "field can not be empty."))
		}
		size += len(k) + len(v)
	}
	if size > maxParametersSize {
		errs = append(errs, field.TooLong(pp, "", maxParametersSize))
	}
	if len(c.Parameters) == 0 {
		errs = append(errs, field.Required(pp, "must contain at least one key/value pair"))
	}
	return errs
}

// ValidateUpdate forbids changing driverName and parameters.
func (s VolumeAttributesClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	c, oldC := obj.(*storagev1.VolumeAttributesClass), old.(*storagev1.VolumeAttributesClass)
	var errs field.ErrorList
	if c.DriverName != oldC.DriverName {
		errs = append(errs, field.Forbidden(field.NewPath("driverName"), "updates to driverName are forbidden."))
	}
	if !equalMaps(c.Parameters, oldC.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	return append(errs, s.Validate(ctx, obj)...)
}
