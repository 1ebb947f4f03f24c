package core_test

import (
	"context"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/catalog"
)

// servedScheme knows every served type, CustomResourceDefinition too.
var servedScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	return s
}()

// TestCatalogStrategies runs every catalog strategy over an empty and a
// defaulted object of its kind: each must accept its own type without
// panicking, and its field-selector keys must not depend on the object.
func TestCatalogStrategies(t *testing.T) {
	ctx := context.Background()
	for _, r := range catalog.Resources() {
		t.Run(r.Resource+"."+r.Group, func(t *testing.T) {
			newObj := func() runtime.Object {
				obj, err := servedScheme.New(r.GroupVersionKind())
				if err != nil {
					t.Fatalf("new %v: %v", r.GroupVersionKind(), err)
				}
				return obj
			}
			s := r.Strategy
			empty := newObj()
			keys := s.SelectableFields(empty)

			obj := newObj()
			s.Default(obj)
			s.PrepareForCreate(ctx, obj)
			_ = s.Validate(ctx, obj)
			old := obj.DeepCopyObject()
			s.Default(obj)
			s.PrepareForUpdate(ctx, obj, old)
			_ = s.ValidateUpdate(ctx, obj, old)
			if ss, ok := s.(registry.StatusStrategy); ok {
				_ = ss.ValidateStatusUpdate(ctx, obj, old)
			}
			got := s.SelectableFields(obj)
			if len(got) != len(keys) {
				t.Errorf("field-selector keys depend on content: %v vs %v", got, keys)
			}
			for k := range keys {
				if _, ok := got[k]; !ok {
					t.Errorf("key %q missing after defaulting", k)
				}
			}
		})
	}
}
