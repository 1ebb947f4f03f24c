package apiextensions

import (
	"context"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*apiextensionsv1.CustomResourceDefinition)
		want   []string // "field: type" of each error, in order
	}{
		{"valid", func(*apiextensionsv1.CustomResourceDefinition) {}, nil},
		{"name not plural.group", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "gadgets.example.com" },
			[]string{"metadata.name: Invalid value"}},
		{"no storage version", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false },
			[]string{"spec.versions: Invalid value", "status.storedVersions: Invalid value"}},
		{"bad scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Galaxy" },
			[]string{"spec.scope: Unsupported value"}},
		{"non-structural schema", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = apiextensionsv1.JSONSchemaProps{}
		}, // As kube-apiserver: identical per-version schemas are validated as the internal type's spec.validation.
			[]string{"spec.validation.openAPIV3Schema.properties[spec].type: Required value"}},
		{"bad CEL rule", func(c *apiextensionsv1.CustomResourceDefinition) {
			p := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			p.XValidations = apiextensionsv1.ValidationRules{{Rule: "self.size >"}}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = p
		}, []string{"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := validCRD()
			tt.mutate(crd)
			s := CustomResourceDefinitionStrategy{}
			s.Default(crd)
			s.PrepareForCreate(context.Background(), crd)
			var got []string
			for _, e := range s.Validate(context.Background(), crd) {
				got = append(got, e.Field+": "+e.Type.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestStoredVersions(t *testing.T) {
	s := CustomResourceDefinitionStrategy{}
	crd := validCRD()
	s.Default(crd)
	crd.Status.StoredVersions = []string{"bogus"}
	s.PrepareForCreate(context.Background(), crd)
	if got := crd.Status.StoredVersions; len(got) != 1 || got[0] != "v1" {
		t.Fatalf("storedVersions after create = %v, want [v1]", got)
	}
	next := crd.DeepCopy()
	next.Spec.Versions[0].Storage = false
	next.Spec.Versions = append(next.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
		Name: "v2", Served: true, Storage: true, Schema: crd.Spec.Versions[0].Schema})
	s.PrepareForUpdate(context.Background(), next, crd)
	if got := next.Status.StoredVersions; len(got) != 2 || got[1] != "v2" {
		t.Fatalf("storedVersions after update = %v, want [v1 v2]", got)
	}
	if next.Generation != crd.Generation+1 {
		t.Fatalf("generation %d, want %d", next.Generation, crd.Generation+1)
	}
	if errs := s.ValidateUpdate(context.Background(), next, crd); len(errs) > 0 {
		t.Fatalf("update: %v", errs)
	}
}
