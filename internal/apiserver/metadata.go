package apiserver

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// toPartialMetadata renders an object or list as PartialObjectMetadata(List),
// the metadata-only view that metadata informers ask for.
func toPartialMetadata(obj runtime.Object) (runtime.Object, error) {
	if !meta.IsListType(obj) {
		return partialMetadata(obj), nil
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, err
	}
	lacc, err := meta.ListAccessor(obj)
	if err != nil {
		return nil, err
	}
	list := &metav1.PartialObjectMetadataList{Items: make([]metav1.PartialObjectMetadata, 0, len(items))}
	list.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadataList"))
	list.ResourceVersion = lacc.GetResourceVersion()
	list.Continue = lacc.GetContinue()
	list.RemainingItemCount = lacc.GetRemainingItemCount()
	for _, item := range items {
		list.Items = append(list.Items, *partialMetadata(item))
	}
	return list, nil
}

// partialMetadata is obj's metadata as a meta.k8s.io/v1
// PartialObjectMetadata, as kube-apiserver serves it.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if md, ok := u.Object["metadata"].(map[string]any); ok {
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(md, &m.ObjectMeta)
		}
	} else if om, ok := structField(obj, "ObjectMeta"); ok {
		m.ObjectMeta = om.Interface().(metav1.ObjectMeta)
	}
	m.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"))
	return m
}
