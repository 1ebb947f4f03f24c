package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/printers"
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

// toTable renders an object or list as a meta.k8s.io Table, with the
// columns kube-apiserver prints for the kind (see internal/printers).
func toTable(obj runtime.Object, opts tableOptionsT) (*metav1.Table, error) {
	isList := meta.IsListType(obj)
	if cr := customKind(itemKind(obj, isList)); cr != nil {
		return cr.toTable(obj, opts)
	}
	printer, _ := printers.For(itemKind(obj, isList))
	t := &metav1.Table{ColumnDefinitions: printer.Columns()}
	var items []runtime.Object
	if isList {
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
		row, err := printer.Row(item)
		if err != nil {
			return nil, err
		}
		switch opts.includeObject {
		case metav1.IncludeObject:
			if gvk, err := kindOf(item); err == nil {
				item.GetObjectKind().SetGroupVersionKind(gvk)
			}
			row.Object.Object = item
		case metav1.IncludeMetadata, "":
			row.Object.Object = partialMetadata(item)
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// itemKind returns the kind of obj or, for a list, of its items, which is
// known even when the list is empty: the kind of a list is its items' kind
// with a "List" suffix. The zero kind is returned for unserved types, which
// the printers' fallback prints.
func itemKind(obj runtime.Object, isList bool) schema.GroupVersionKind {
	gvk, err := kindOf(obj)
	if err != nil {
		return schema.GroupVersionKind{}
	}
	if isList {
		gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	}
	return gvk
}
