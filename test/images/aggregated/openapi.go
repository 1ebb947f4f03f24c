package main

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
)

// The OpenAPI v3 document of wardle.example.com/v1alpha1, and its hash as
// k8s.io/apiserver's /openapi/v3 index gives it (the SHA-512 of the JSON).
var (
	openAPIDocument = mustJSON(openAPIV3())
	openAPIHash     = fmt.Sprintf("%X", sha512.Sum512(openAPIDocument))
)

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

const (
	schemaPrefix = "com.example.wardle.v1alpha1."
	objectMeta   = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
	listMeta     = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
)

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// field is a property referring to a schema, as kube-openapi writes them
// (allOf, so that the property keeps its own description).
func field(name, description string) map[string]any {
	return map[string]any{"allOf": []any{ref(name)}, "default": map[string]any{}, "description": description}
}

func str(description string) map[string]any {
	return map[string]any{"type": "string", "default": "", "description": description}
}

func gvk(kind string) []any {
	return []any{map[string]string{"group": group, "version": version, "kind": kind}}
}

func typeMeta() (apiVersion, kind map[string]any) {
	return str("APIVersion defines the versioned schema of this representation of an object."),
		str("Kind is a string value representing the REST resource this object represents.")
}

// openAPIV3 describes what the server serves: Flunder and FlunderList,
// their get, list and watch.
func openAPIV3() map[string]any {
	apiVersion, kind := typeMeta()
	stringMap := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string", "default": ""}}
	schemas := map[string]any{
		schemaPrefix + "Flunder": map[string]any{
			"type":        "object",
			"description": "Flunder is the example kind of the aggregated test server: every namespace has the same few.",
			"properties": map[string]any{
				"apiVersion": apiVersion, "kind": kind,
				"metadata": field(objectMeta, "Standard object's metadata."),
				"spec":     field(schemaPrefix+"FlunderSpec", "Spec is what the flunder refers to."),
			},
			"x-kubernetes-group-version-kind": gvk("Flunder"),
		},
		schemaPrefix + "FlunderSpec": map[string]any{
			"type":        "object",
			"description": "FlunderSpec is the specification of a Flunder.",
			"properties": map[string]any{
				"reference": str("Reference names the user who asked for the flunder, as the front proxy said."),
			},
		},
		schemaPrefix + "FlunderList": map[string]any{
			"type":        "object",
			"description": "FlunderList is a list of Flunders.",
			"required":    []string{"items"},
			"properties": map[string]any{
				"apiVersion": apiVersion, "kind": kind,
				"metadata": field(listMeta, "Standard list metadata."),
				"items": map[string]any{"type": "array", "description": "Items are the flunders.",
					"items": map[string]any{"allOf": []any{ref(schemaPrefix + "Flunder")}, "default": map[string]any{}}},
			},
			"x-kubernetes-group-version-kind": gvk("FlunderList"),
		},
		objectMeta: map[string]any{
			"type":        "object",
			"description": "ObjectMeta is metadata that all persisted resources must have.",
			"properties": map[string]any{
				"name":              str("Name must be unique within a namespace."),
				"namespace":         str("Namespace defines the space within which each name must be unique."),
				"uid":               str("UID is the unique in time and space value for this object."),
				"resourceVersion":   str("An opaque value that represents the internal version of this object."),
				"creationTimestamp": map[string]any{"type": "string", "format": "date-time", "description": "CreationTimestamp is when the object was created."},
				"labels":            merge(stringMap, map[string]any{"description": "Map of string keys and values to organize and categorize objects."}),
				"annotations":       merge(stringMap, map[string]any{"description": "Annotations is an unstructured key value map."}),
			},
		},
		listMeta: map[string]any{
			"type":        "object",
			"description": "ListMeta describes metadata that synthetic resources must have.",
			"properties":  map[string]any{"resourceVersion": str("The version of the list.")},
		},
	}
	response := func(schema string) map[string]any {
		return map[string]any{"200": map[string]any{"description": "OK",
			"content": map[string]any{"application/json": map[string]any{"schema": ref(schemaPrefix + schema)}}}}
	}
	param := func(name, in string) map[string]any {
		return map[string]any{"name": name, "in": in, "required": in == "path", "schema": map[string]any{"type": "string", "uniqueItems": true}}
	}
	ns := "/apis/" + gv + "/namespaces/{namespace}/flunders"
	paths := map[string]any{
		"/apis/" + gv + "/flunders": map[string]any{"get": map[string]any{
			"operationId": "listWardleV1alpha1FlunderForAllNamespaces", "tags": []string{"wardle_v1alpha1"},
			"description": "list or watch objects of kind Flunder", "responses": response("FlunderList"),
			"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk("Flunder")[0]}},
		ns: map[string]any{"get": map[string]any{
			"operationId": "listWardleV1alpha1NamespacedFlunder", "tags": []string{"wardle_v1alpha1"},
			"description": "list or watch objects of kind Flunder", "responses": response("FlunderList"),
			"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk("Flunder")[0]},
			"parameters": []any{param("namespace", "path")}},
		ns + "/{name}": map[string]any{"get": map[string]any{
			"operationId": "readWardleV1alpha1NamespacedFlunder", "tags": []string{"wardle_v1alpha1"},
			"description": "read the specified Flunder", "responses": response("Flunder"),
			"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk("Flunder")[0]},
			"parameters": []any{param("name", "path"), param("namespace", "path")}},
	}
	return map[string]any{
		"openapi":    "3.0.0",
		"info":       map[string]any{"title": "Wardle", "version": "v0.1.0"},
		"paths":      paths,
		"components": map[string]any{"schemas": schemas},
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
