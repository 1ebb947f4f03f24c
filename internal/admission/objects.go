package admission

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
)

// ObjectInterfaces is what plugins create, type, default and convert
// objects with. Havre keeps objects in their served (external) version, so
// "conversion" between two objects of the same Go type is a copy; custom
// resources are unstructured and copied as such. It also maps resources to
// their kinds and equivalents (the versions of one group and resource).
type ObjectInterfaces struct {
	scheme *runtime.Scheme
	mapper runtime.EquivalentResourceRegistry
}

// NewObjectInterfaces returns the object interfaces over scheme.
func NewObjectInterfaces(scheme *runtime.Scheme) *ObjectInterfaces {
	return &ObjectInterfaces{
		scheme: scheme,
		// The versions of one group and resource are equivalent (they
		// share storage).
		mapper: runtime.NewEquivalentResourceRegistryWithIdentity(func(gr schema.GroupResource) string {
			return gr.String()
		}),
	}
}

// RegisterKind records the kind served at resource (and subresource),
// for matchPolicy Equivalent and the AdmissionReview's requestKind.
func (o *ObjectInterfaces) RegisterKind(resource schema.GroupVersionResource, subresource string, kind schema.GroupVersionKind) {
	o.mapper.RegisterKindFor(resource, subresource, kind)
}

// GetObjectCreater implements admission.ObjectInterfaces.
func (o *ObjectInterfaces) GetObjectCreater() runtime.ObjectCreater { return o.scheme }

// GetObjectTyper implements admission.ObjectInterfaces.
func (o *ObjectInterfaces) GetObjectTyper() runtime.ObjectTyper { return o.scheme }

// GetObjectDefaulter implements admission.ObjectInterfaces.
func (o *ObjectInterfaces) GetObjectDefaulter() runtime.ObjectDefaulter { return o.scheme }

// GetObjectConvertor implements admission.ObjectInterfaces.
func (o *ObjectInterfaces) GetObjectConvertor() runtime.ObjectConvertor { return convertor{o.scheme} }

// GetEquivalentResourceMapper implements admission.ObjectInterfaces.
func (o *ObjectInterfaces) GetEquivalentResourceMapper() runtime.EquivalentResourceMapper {
	return o.mapper
}

var _ admission.ObjectInterfaces = (*ObjectInterfaces)(nil)

// convertor is the scheme's, plus copies between objects of one Go type
// (Havre has no internal versions: the admission library "converts" a
// served object to the version a webhook asked for, which is the same).
type convertor struct{ *runtime.Scheme }

func (c convertor) Convert(in, out, context any) error {
	inV, outV := reflect.ValueOf(in), reflect.ValueOf(out)
	if inV.Kind() == reflect.Pointer && outV.Kind() == reflect.Pointer && inV.Type() == outV.Type() {
		if _, unstructured := in.(runtime.Unstructured); !unstructured {
			obj, ok := in.(runtime.Object)
			if !ok {
				return fmt.Errorf("cannot copy %T", in)
			}
			outV.Elem().Set(reflect.ValueOf(obj.DeepCopyObject()).Elem())
			return nil
		}
	}
	return c.Scheme.Convert(in, out, context)
}
