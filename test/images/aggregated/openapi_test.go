package main

import (
	"encoding/json"
	"testing"

	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
)

// TestOpenAPIDocument checks that the document is OpenAPI 3.0 as
// kube-openapi reads it, converts to the protobuf form the API server
// serves, and describes Flunder with its group version kind.
func TestOpenAPIDocument(t *testing.T) {
	var doc spec3.OpenAPI
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if _, err := handler3.ToV3ProtoBinary(openAPIDocument); err != nil {
		t.Fatal(err)
	}
	flunder := doc.Components.Schemas[schemaPrefix+"Flunder"]
	if flunder == nil || flunder.Extensions["x-kubernetes-group-version-kind"] == nil {
		t.Fatalf("no Flunder with its kind: %+v", flunder)
	}
	for _, s := range doc.Components.Schemas {
		for name, p := range s.Properties {
			if p.Description == "" {
				t.Errorf("property %s has no description", name)
			}
			for _, r := range p.AllOf {
				if ref := r.Ref.String(); doc.Components.Schemas[ref[len("#/components/schemas/"):]] == nil {
					t.Errorf("%s refers to %s, which is not in the document", name, ref)
				}
			}
		}
	}
}
