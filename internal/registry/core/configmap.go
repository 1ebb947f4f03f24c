package core

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// MaxDataSize is the limit on the data of a ConfigMap or Secret (1 MiB).
const MaxDataSize = corev1.MaxSecretSize

const immutableWhenSetMsg = "field is immutable when `immutable` is set"

// ConfigMapStrategy governs configmaps.
type ConfigMapStrategy struct{ registry.DefaultStrategy }

// Validate checks key names, keys present in both data and binaryData, and
// the total size.
func (ConfigMapStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	var errs field.ErrorList
	size := 0
	for _, key := range sortedKeys(cm.Data) {
		p := field.NewPath("data").Key(key)
		errs = append(errs, invalidEach(key, validation.IsConfigMapKey(key), p)...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		p := field.NewPath("binaryData").Key(key)
		errs = append(errs, invalidEach(key, validation.IsConfigMapKey(key), p)...)
		if _, dup := cm.Data[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in data"))
		}
		size += len(cm.BinaryData[key])
	}
	if size > MaxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", MaxDataSize))
	}
	return errs
}

// ValidateUpdate also freezes an immutable configmap.
func (s ConfigMapStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
	errs := s.Validate(ctx, obj)
	if oldCM.Immutable != nil && *oldCM.Immutable {
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableWhenSetMsg))
		}
		if !mapsEqual(cm.Data, oldCM.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), immutableWhenSetMsg))
		}
		if !mapsEqual(cm.BinaryData, oldCM.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), immutableWhenSetMsg))
		}
	}
	return errs
}
