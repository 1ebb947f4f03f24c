package apiserver

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage"
)

func testCRD() *apiextensionsv1.CustomResourceDefinition {
	min0 := 0.0
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", UID: "u1", Generation: 1},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object",
							XValidations: apiextensionsv1.ValidationRules{{Rule: "self.replicas <= 10", Message: "at most 10"}},
							Properties: map[string]apiextensionsv1.JSONSchemaProps{
								"size":     {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"small"`)}}},
								"replicas": {Type: "integer", Minimum: &min0, Default: &apiextensionsv1.JSON{Raw: []byte("1")}},
							}},
						"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"replicas": {Type: "integer"}}},
					},
				}},
					Subresources: &apiextensionsv1.CustomResourceSubresources{
						Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
						Scale:  &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas"},
					},
					SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec.size"}},
				},
				{Name: "v2", Served: true, Storage: false, Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptrTo(true)}}},
			},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{
			AcceptedNames: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Conditions:    []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func newCRServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Resources: catalog.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func crObject(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "ns"}, "spec": spec,
	}}
}

func TestCustomResourceValidation(t *testing.T) {
	s := newCRServer(t)
	h, err := s.newCustomResourceHandler(testCRD(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec map[string]any
		want []string // "field: type"
	}{
		{"valid, defaulted", map[string]any{"size": "small"}, nil},
		// As upstream: CEL rules are skipped after a blocking schema error
		// (reported at the root); the scale subresource's replicas path is
		// checked as well, named by its JSON path.
		{"enum", map[string]any{"size": "huge"}, []string{"spec.size: Unsupported value", "<nil>: Invalid value"}},
		{"minimum", map[string]any{"size": "small", "replicas": int64(-1)}, []string{"spec.replicas: Invalid value", ".spec.replicas: Invalid value"}},
		{"CEL rule", map[string]any{"size": "small", "replicas": int64(11)}, []string{"spec: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := crObject(tt.spec)
			h.res.Strategy.Default(obj)
			h.res.Strategy.PrepareForCreate(context.Background(), obj)
			var got []string
			for _, e := range h.res.Strategy.Validate(context.Background(), obj) {
				got = append(got, e.Field+": "+e.Type.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors %v, want %v", got, tt.want)
			}
			if tt.want == nil {
				if n, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); n != 1 {
					t.Errorf("replicas not defaulted: %v", obj.Object)
				}
			}
		})
	}
}

func TestCustomResourceStorage(t *testing.T) {
	s := newCRServer(t)
	crd := testCRD()
	v1, err := s.newCustomResourceHandler(crd, "v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.newCustomResourceHandler(crd, "v2")
	if err != nil {
		t.Fatal(err)
	}
	obj := crObject(map[string]any{"size": "small"})
	obj.SetResourceVersion("5")
	data, err := v1.objs.encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "resourceVersion") {
		t.Errorf("stored with resourceVersion: %s", data)
	}
	got, err := v2.objs.decode(storage.KeyValue{Key: "k", Value: data, ModRevision: 7})
	if err != nil {
		t.Fatal(err)
	}
	u := got.(*unstructured.Unstructured)
	if u.GetAPIVersion() != "example.com/v2" || u.GetResourceVersion() != "7" {
		t.Errorf("through v2: apiVersion %s resourceVersion %s", u.GetAPIVersion(), u.GetResourceVersion())
	}
	// Field selectors, scale, unknown fields.
	if set := v1.fieldSet(obj); set["spec.size"] != "small" || set["metadata.namespace"] != "ns" {
		t.Errorf("field set %v", set)
	}
	if err := v1.setReplicas(obj, 4); err != nil {
		t.Fatal(err)
	}
	sc, err := v1.toScale(obj)
	if err != nil || sc.Spec.Replicas != 4 {
		t.Errorf("scale %+v %v", sc, err)
	}
	bad := crObject(map[string]any{"size": "small", "colour": "red"})
	err = v1.custom.checkUnknownFields(httptest.NewRecorder(), bad, "Strict")
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.colour"`) {
		t.Errorf("strict: %v", err)
	}
	if _, found, _ := unstructured.NestedString(bad.Object, "spec", "colour"); found {
		t.Errorf("unknown field not pruned: %v", bad.Object)
	}
	bad = crObject(map[string]any{"size": "small", "colour": "red"})
	rec := httptest.NewRecorder()
	if err := v1.custom.checkUnknownFields(rec, bad, "Warn"); err != nil || !strings.Contains(rec.Header().Get("Warning"), "spec.colour") {
		t.Errorf("warn: %v %q", err, rec.Header().Get("Warning"))
	}
	// Tables have the default Age column.
	tbl, err := v1.custom.toTable(obj, tableOptionsT{})
	if err != nil || len(tbl.ColumnDefinitions) != 2 || tbl.ColumnDefinitions[1].Name != "Age" {
		t.Errorf("table %+v %v", tbl, err)
	}
	var _ registry.StatusStrategy = v1.res.Strategy.(crStrategy)
	var _ field.ErrorList
	var _ runtime.Object = obj
}

// A definition read as Established is served at once, even before the
// watch that follows the definitions has rebuilt the handlers.
func TestCustomResourceCatchUp(t *testing.T) {
	tests := []struct {
		name        string
		established bool
		version     string
		want        bool
	}{
		{"not established", false, "v1", false},
		{"established, served version", true, "v1", true},
		{"established, other version", true, "v2", true},
		{"established, unknown version", true, "v9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorageTestServer(t)
			crd := testCRD()
			if !tt.established {
				crd.Status.Conditions = nil
			}
			if _, err := s.crdHandler().objs.create(context.Background(), crd); err != nil {
				t.Fatal(err)
			}
			// Nothing follows the store here: only the catch-up may serve it.
			if s.handler("example.com", tt.version, "widgets") != nil {
				t.Fatal("served before the catch-up")
			}
			got := s.catchUpCustomResource(context.Background(), "example.com", tt.version, "widgets")
			if (got != nil) != tt.want {
				t.Errorf("catch-up handler %v, want served %v", got != nil, tt.want)
			}
		})
	}
}
