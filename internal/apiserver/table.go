package apiserver

import (
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

type tableOptionsT struct {
	includeObject metav1.IncludeObjectPolicy
}

func tableOptions(r *http.Request, out outputFormat) tableOptionsT {
	o := tableOptionsT{includeObject: out.includeObject}
	switch p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p {
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		o.includeObject = p
	}
	return o
}

var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

// toTable renders an object or list as a meta.k8s.io Table.
func toTable(obj runtime.Object, opts tableOptionsT) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: defaultColumns}
	var items []runtime.Object
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, err
		}
		lacc, err := meta.ListAccessor(obj)
		if err != nil {
			return nil, err
		}
		t.ResourceVersion = lacc.GetResourceVersion()
		t.Continue = lacc.GetContinue()
		t.RemainingItemCount = lacc.GetRemainingItemCount()
	} else {
		items = []runtime.Object{obj}
	}
	t.Rows = make([]metav1.TableRow, 0, len(items))
	for _, item := range items {
		acc, err := meta.Accessor(item)
		if err != nil {
			return nil, err
		}
		row := metav1.TableRow{Cells: []interface{}{acc.GetName(), age(acc.GetCreationTimestamp())}}
		switch opts.includeObject {
		case metav1.IncludeObject:
			if gvk, err := kindOf(item); err == nil {
				item.GetObjectKind().SetGroupVersionKind(gvk)
			}
			row.Object.Object = item
		case metav1.IncludeMetadata, "":
			m := &metav1.PartialObjectMetadata{}
			if om, ok := structField(item, "ObjectMeta"); ok {
				m.ObjectMeta = om.Interface().(metav1.ObjectMeta)
			}
			m.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"))
			row.Object.Object = m
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

func age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}
