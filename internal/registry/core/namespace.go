package core

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// standardFinalizers are the finalizer names allowed without a domain.
var standardFinalizers = []string{string(corev1.FinalizerKubernetes), "orphan", "foregroundDeletion"}

// NamespaceStrategy governs namespaces.
type NamespaceStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = NamespaceStrategy{}

// Default sets phase Active and the kubernetes.io/metadata.name label.
func (NamespaceStrategy) Default(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
}

// PrepareForCreate makes a new namespace Active with the kubernetes
// finalizer.
func (NamespaceStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
}

// PrepareForUpdate keeps spec.finalizers: only namespaces/finalize changes
// them.
func (NamespaceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	obj.(*corev1.Namespace).Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
}

// Validate checks the spec.finalizers names.
func (NamespaceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidateNamespaceFinalizers(obj.(*corev1.Namespace).Spec.Finalizers, field.NewPath("spec", "finalizers"))
}

// ValidateNamespaceFinalizers checks finalizer names: qualified names, with
// a domain unless they are standard ones. namespaces/finalize uses it too.
func ValidateNamespaceFinalizers(finalizers []corev1.FinalizerName, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		p := fldPath.Index(i)
		if e := ValidateQualifiedName(string(f), p); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if !strings.Contains(string(f), "/") && !slices.Contains(standardFinalizers, string(f)) {
			errs = append(errs, field.Invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s NamespaceStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ValidateStatusUpdate ties the phase to deletionTimestamp.
func (NamespaceStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	ns := obj.(*corev1.Namespace)
	p := field.NewPath("status", "phase")
	switch {
	case ns.DeletionTimestamp.IsZero() && ns.Status.Phase != corev1.NamespaceActive:
		return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty")}
	case !ns.DeletionTimestamp.IsZero() && ns.Status.Phase != corev1.NamespaceTerminating:
		return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")}
	}
	return nil
}

// SelectableFields returns status.phase.
func (NamespaceStrategy) SelectableFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
}
