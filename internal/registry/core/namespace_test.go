package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestNamespace(t *testing.T) {
	s := NamespaceStrategy{}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup"}}}
	s.Default(ns)
	s.PrepareForCreate(ctx, ns)
	if ns.Labels[corev1.LabelMetadataName] != "team-a" || ns.Status.Phase != corev1.NamespaceActive ||
		len(ns.Spec.Finalizers) != 2 || ns.Spec.Finalizers[1] != corev1.FinalizerKubernetes {
		t.Errorf("namespace after create: %+v", ns)
	}
	checkErrors(t, s.Validate(ctx, ns))

	bad := ns.DeepCopy()
	bad.Spec.Finalizers = []corev1.FinalizerName{"cleanup", "Bad Name"}
	checkErrors(t, s.Validate(ctx, bad),
		want{"spec.finalizers[0]", field.ErrorTypeInvalid}, want{"spec.finalizers[1]", field.ErrorTypeInvalid})

	// spec.finalizers changes only through namespaces/finalize.
	upd := ns.DeepCopy()
	upd.Spec.Finalizers = nil
	s.PrepareForUpdate(ctx, upd, ns)
	if len(upd.Spec.Finalizers) != 2 {
		t.Errorf("finalizers changed by update: %v", upd.Spec.Finalizers)
	}

	st := ns.DeepCopy()
	st.Status.Phase = corev1.NamespaceTerminating
	checkErrors(t, s.ValidateStatusUpdate(ctx, st, ns), want{"status.phase", field.ErrorTypeInvalid})
	st.DeletionTimestamp = &metav1.Time{}
	*st.DeletionTimestamp = metav1.Now()
	checkErrors(t, s.ValidateStatusUpdate(ctx, st, ns))

	if got := s.SelectableFields(ns); len(got) != 1 || got["status.phase"] != "Active" {
		t.Errorf("fields = %v", got)
	}
}
