package openapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	cachedopenapi "k8s.io/client-go/openapi/cached"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	utilproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/havre/havre/internal/openapi"
	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/catalog"
)

const (
	protoV2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	protoV3 = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// served is the catalog every test serves; the documents are built once
// per Service, so the tests share one.
var (
	served  = catalog.Resources()
	service = openapi.New(served, "v1.37.2")
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(service)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// No automatic redirects: the tests look at them.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// docName is a group/version's name in the v3 index.
func docName(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func groupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var gvs []schema.GroupVersion
	for _, res := range served {
		if gv := res.GroupVersion(); !seen[gv] {
			seen[gv] = true
			gvs = append(gvs, gv)
		}
	}
	return gvs
}

func index(t *testing.T, ts *httptest.Server) handler3.OpenAPIV3Discovery {
	t.Helper()
	resp := get(t, ts.URL+"/openapi/v3")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi/v3: %s", resp.Status)
	}
	var idx handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(body(t, resp), &idx); err != nil {
		t.Fatalf("decoding /openapi/v3: %v", err)
	}
	return idx
}

// document fetches and parses one v3 document through its index URL.
func document(t *testing.T, ts *httptest.Server, gv schema.GroupVersion) (*spec3.OpenAPI, map[string]any) {
	t.Helper()
	entry, ok := index(t, ts).Paths[docName(gv)]
	if !ok {
		t.Fatalf("%s is not in /openapi/v3", docName(gv))
	}
	resp := get(t, ts.URL+entry.ServerRelativeURL, "Accept", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", entry.ServerRelativeURL, resp.Status)
	}
	data := body(t, resp)
	var doc spec3.OpenAPI
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s is not an OpenAPI 3 document: %v", docName(gv), err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	return &doc, raw
}

// TestDefinitionsComplete checks that the generated definitions hold every
// served kind, its list, every subresource kind, and every type those
// depend on: a kind from a package hack/update-openapi.sh does not
// generate fails here.
func TestDefinitionsComplete(t *testing.T) {
	defs := openapi.GetOpenAPIDefinitions(func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) })
	for name, def := range defs {
		for _, dep := range def.Dependencies {
			if _, ok := defs[dep]; !ok {
				t.Errorf("definition %s depends on %s, which is not generated: add its package to hack/update-openapi.sh", name, dep)
			}
		}
	}
	var kinds []schema.GroupVersionKind
	for _, res := range served {
		kinds = append(kinds, res.GroupVersionKind())
		if res.HasVerb("list") {
			kinds = append(kinds, res.ListGroupVersionKind())
		}
		for _, sub := range res.Subresources {
			kinds = append(kinds, sub.Kind)
		}
	}
	for _, gvk := range kinds {
		obj, err := servedScheme.New(gvk)
		if err != nil {
			t.Errorf("%v: %v", gvk, err)
			continue
		}
		if name := util.GetCanonicalTypeName(obj); defs[name].Schema.Description == "" {
			t.Errorf("no definition %s for %v: add its package to hack/update-openapi.sh", name, gvk)
		}
	}
}

func TestIndexListsEveryServedGroupVersion(t *testing.T) {
	ts := newServer(t)
	idx := index(t, ts)
	want := []string{"api", "apis", "version"}
	for _, gv := range groupVersions() {
		want = append(want, docName(gv))
		if gv.Group != "" {
			want = append(want, "apis/"+gv.Group)
		}
	}
	for _, name := range want {
		entry, ok := idx.Paths[name]
		if !ok {
			t.Errorf("/openapi/v3 does not list %q", name)
			continue
		}
		if !strings.HasPrefix(entry.ServerRelativeURL, "/openapi/v3/"+name+"?hash=") {
			t.Errorf("%s: serverRelativeURL %q", name, entry.ServerRelativeURL)
		}
	}
	docs, err := service.Documents()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Paths) != len(docs) {
		t.Errorf("index has %d documents, the service %d", len(idx.Paths), len(docs))
	}
}

// TestHashesAndCaching follows handler3's contract: the index's hash is the
// document's ETag; the hashed URL is immutable; a stale hash redirects; the
// ETag answers conditional requests.
func TestHashesAndCaching(t *testing.T) {
	ts := newServer(t)
	url := index(t, ts).Paths["apis/apps/v1"].ServerRelativeURL
	_, hash, _ := strings.Cut(url, "?hash=")

	resp := get(t, ts.URL+url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Etag") != `"`+hash+`"` {
		t.Fatalf("GET %s: %s, ETag %q, want %q", url, resp.Status, resp.Header.Get("Etag"), hash)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, immutable" {
		t.Errorf("Cache-Control %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	resp = get(t, ts.URL+"/openapi/v3/apis/apps/v1?hash=0123")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != url {
		t.Errorf("stale hash: %s, Location %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), url)
	}

	resp = get(t, ts.URL+"/openapi/v3/apis/apps/v1", "If-None-Match", `"`+hash+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s, want 304", resp.Status)
	}
	resp = get(t, ts.URL+"/openapi/v2")
	etag := resp.Header.Get("Etag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("GET /openapi/v2: %s, ETag %q", resp.Status, etag)
	}
	if resp := get(t, ts.URL+"/openapi/v2", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("/openapi/v2 If-None-Match: %s, want 304", resp.Status)
	}

	resp = get(t, ts.URL+"/openapi/v3/apis/apps/v1", "Accept", "text/html")
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("Accept text/html: %s, want 406", resp.Status)
	}
}

func TestGzip(t *testing.T) {
	ts := newServer(t)
	plain := body(t, get(t, ts.URL+"/openapi/v3/api/v1"))
	resp := get(t, ts.URL+"/openapi/v3/api/v1", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, unzipped) {
		t.Errorf("gzipped and plain documents differ")
	}
}

func TestNotServed(t *testing.T) {
	for _, tt := range []struct{ method, path string }{
		{"GET", "/openapi/v3/apis/flowcontrol.apiserver.k8s.io/v1"},
		{"GET", "/openapi/v3/apis/apps/v2"},
		{"GET", "/openapi/v1"},
		{"GET", "/openapi/v2/foo"},
		{"POST", "/openapi/v2"},
		{"DELETE", "/openapi/v3"},
		{"GET", "/api/v1"},
	} {
		w := httptest.NewRecorder()
		if service.Serve(w, httptest.NewRequest(tt.method, tt.path, nil)) {
			t.Errorf("%s %s was served (%d), want it left to the caller", tt.method, tt.path, w.Code)
		}
	}
}

// operations returns the operations of a v3 path item by method.
func operations(p *spec3.Path) map[string]*spec3.Operation {
	ops := map[string]*spec3.Operation{}
	for m, op := range map[string]*spec3.Operation{
		"GET": p.Get, "PUT": p.Put, "POST": p.Post, "DELETE": p.Delete, "PATCH": p.Patch, "HEAD": p.Head, "OPTIONS": p.Options,
	} {
		if op != nil {
			ops[m] = op
		}
	}
	return ops
}

// parameterNames returns the names of an operation's parameters and its
// path's.
func parameterNames(p *spec3.Path, op *spec3.Operation) map[string]bool {
	names := map[string]bool{}
	for _, params := range [][]*spec3.Parameter{p.Parameters, op.Parameters} {
		for _, param := range params {
			names[param.Name] = true
		}
	}
	return names
}

func gvkOf(ext spec.Extensions) (schema.GroupVersionKind, bool) {
	m, ok := ext["x-kubernetes-group-version-kind"].(map[string]any)
	if !ok {
		return schema.GroupVersionKind{}, false
	}
	return schema.GroupVersionKind{Group: m["group"].(string), Version: m["version"].(string), Kind: m["kind"].(string)}, true
}

// wantOperation is an operation a resource's verb must have.
type wantOperation struct {
	method, path, action string
	gvk                  schema.GroupVersionKind
	params               []string
}

func wantOperations(res *registry.Resource) []wantOperation {
	prefix := "/apis/" + res.Group + "/" + res.Version
	if res.Group == "" {
		prefix = "/api/" + res.Version
	}
	collection, watch := prefix+"/"+res.Resource, prefix+"/watch/"+res.Resource
	if res.Namespaced {
		collection = prefix + "/namespaces/{namespace}/" + res.Resource
		watch = prefix + "/watch/namespaces/{namespace}/" + res.Resource
	}
	item := collection + "/{name}"
	gvk := res.GroupVersionKind()
	write := []string{"dryRun", "fieldManager", "fieldValidation", "pretty"}
	patch := append([]string{"force"}, write...)
	list := []string{"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch", "pretty"}
	var ops []wantOperation
	for _, verb := range res.Verbs {
		switch verb {
		case "list":
			ops = append(ops, wantOperation{"GET", collection, "list", gvk, list})
			if res.Namespaced {
				ops = append(ops, wantOperation{"GET", prefix + "/" + res.Resource, "list", gvk, list})
			}
		case "watch":
			ops = append(ops, wantOperation{"GET", watch, "watchlist", gvk, list}, wantOperation{"GET", watch + "/{name}", "watch", gvk, list})
		case "create":
			ops = append(ops, wantOperation{"POST", collection, "post", gvk, write})
		case "deletecollection":
			ops = append(ops, wantOperation{"DELETE", collection, "deletecollection", gvk, []string{"labelSelector", "gracePeriodSeconds", "propagationPolicy", "dryRun"}})
		case "get":
			ops = append(ops, wantOperation{"GET", item, "get", gvk, []string{"name", "pretty"}})
		case "update":
			ops = append(ops, wantOperation{"PUT", item, "put", gvk, write})
		case "patch":
			ops = append(ops, wantOperation{"PATCH", item, "patch", gvk, patch})
		case "delete":
			ops = append(ops, wantOperation{"DELETE", item, "delete", gvk, []string{"gracePeriodSeconds", "propagationPolicy", "dryRun"}})
		}
	}
	for _, sub := range res.Subresources {
		path := item + "/" + sub.Name
		switch sub.Name {
		case registry.Exec, registry.Attach, registry.PortForward, registry.Proxy:
			ops = append(ops, wantOperation{"GET", path, "connect", sub.Kind, nil}, wantOperation{"POST", path, "connect", sub.Kind, nil})
		case registry.Log:
			ops = append(ops, wantOperation{"GET", path, "get", sub.Kind, []string{"container", "follow", "tailLines"}})
		default:
			for _, verb := range sub.Verbs {
				switch verb {
				case "get":
					ops = append(ops, wantOperation{"GET", path, "get", sub.Kind, nil})
				case "update":
					ops = append(ops, wantOperation{"PUT", path, "put", sub.Kind, write})
				case "patch":
					ops = append(ops, wantOperation{"PATCH", path, "patch", sub.Kind, patch})
				case "create":
					ops = append(ops, wantOperation{"POST", path, "post", sub.Kind, write})
				}
			}
		}
	}
	return ops
}

var patchTypes = []string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}

// TestGroupVersionDocuments checks every served group/version's document:
// it is OpenAPI 3, has each resource's paths and operations with their
// actions and kinds, PATCH takes fieldValidation and the patch types, and
// every reference resolves to a schema of the document.
func TestGroupVersionDocuments(t *testing.T) {
	ts := newServer(t)
	for _, gv := range groupVersions() {
		t.Run(docName(gv), func(t *testing.T) {
			doc, raw := document(t, ts, gv)
			if doc.Version != "3.0.0" || doc.Info == nil || doc.Info.Title != "Kubernetes" || doc.Info.Version != "v1.37.2" {
				t.Errorf("openapi %q, info %+v", doc.Version, doc.Info)
			}
			resources := "/" + strings.TrimPrefix(docName(gv), "/") + "/"
			if p := doc.Paths.Paths[resources]; p == nil || p.Get == nil {
				t.Errorf("no GET %s (APIResourceList)", resources)
			}
			for _, res := range served {
				if res.GroupVersion() != gv {
					continue
				}
				// The kind's schema carries its GVK.
				obj, _ := servedScheme.New(res.GroupVersionKind())
				s := doc.Components.Schemas[util.GetCanonicalTypeName(obj)]
				if s == nil {
					t.Errorf("%s: no schema %s", res.Resource, util.GetCanonicalTypeName(obj))
				} else if !hasGVK(s.Extensions, res.GroupVersionKind()) {
					t.Errorf("%s: schema without x-kubernetes-group-version-kind %v: %v", res.Resource, res.GroupVersionKind(), s.Extensions)
				}
				for _, want := range wantOperations(res) {
					p := doc.Paths.Paths[want.path]
					if p == nil {
						t.Errorf("no path %s", want.path)
						continue
					}
					op := operations(p)[want.method]
					if op == nil {
						t.Errorf("no %s %s", want.method, want.path)
						continue
					}
					if op.OperationId == "" || len(op.Tags) != 1 {
						t.Errorf("%s %s: operationId %q, tags %v", want.method, want.path, op.OperationId, op.Tags)
					}
					if op.Extensions["x-kubernetes-action"] != want.action {
						t.Errorf("%s %s: x-kubernetes-action %v, want %s", want.method, want.path, op.Extensions["x-kubernetes-action"], want.action)
					}
					if gvk, ok := gvkOf(op.Extensions); !ok || gvk != want.gvk {
						t.Errorf("%s %s: x-kubernetes-group-version-kind %v, want %v", want.method, want.path, gvk, want.gvk)
					}
					names := parameterNames(p, op)
					for _, param := range want.params {
						if !names[param] {
							t.Errorf("%s %s: no parameter %s (has %v)", want.method, want.path, param, names)
						}
					}
					if op.Responses == nil || op.Responses.StatusCodeResponses[http.StatusUnauthorized] == nil {
						t.Errorf("%s %s: no 401 response", want.method, want.path)
					}
					if want.method == "PATCH" {
						if op.RequestBody == nil {
							t.Errorf("PATCH %s: no request body", want.path)
							continue
						}
						var types []string
						for ct := range op.RequestBody.Content {
							types = append(types, ct)
						}
						sort.Strings(types)
						if !reflect.DeepEqual(types, patchTypes) {
							t.Errorf("PATCH %s: request body types %v, want %v", want.path, types, patchTypes)
						}
					}
				}
			}
			checkRefs(t, raw)
		})
	}
}

func hasGVK(ext spec.Extensions, gvk schema.GroupVersionKind) bool {
	list, _ := ext["x-kubernetes-group-version-kind"].([]any)
	for _, item := range list {
		m, _ := item.(map[string]any)
		if m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind {
			return true
		}
	}
	return false
}

// checkRefs checks that every $ref of a v3 document resolves.
func checkRefs(t *testing.T, doc map[string]any) {
	t.Helper()
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				// JSONSchemaProps has a property named "$ref": only a string is a reference.
				if ref, ok := e.(string); ok && k == "$ref" {
					name := strings.TrimPrefix(ref, "#/components/schemas/")
					if _, ok := schemas[name]; !ok {
						t.Errorf("dangling reference %v", e)
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
}

// TestKubectlFieldValidationVerifier runs the check kubectl's validation
// does before apply/create/replace: for every served kind, the v3 verifier
// must find fieldValidation on a PATCH of that kind (or kubectl falls back
// to client-side validation), and so must the v2 verifier kubectl falls
// back to.
func TestKubectlFieldValidationVerifier(t *testing.T) {
	ts := newServer(t)
	cfg := &rest.Config{Host: ts.URL}
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	// The documents are fetched once, as kubectl caches them.
	v3 := resource.NewQueryParamVerifierV3(dyn, cachedopenapi.NewClient(dc.OpenAPIV3()), resource.QueryParamFieldValidation)
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	v2 := resource.NewQueryParamVerifier(dyn, staticV2{doc}, resource.QueryParamFieldValidation)
	// The v3 verifier parses a group version's whole document per call:
	// one kind per group version keeps the test fast, and
	// TestGroupVersionDocuments checks the same for every kind.
	checkedV3 := map[schema.GroupVersion]bool{}
	for _, res := range served {
		if !res.HasVerb("patch") {
			continue
		}
		if gv := res.GroupVersion(); !checkedV3[gv] {
			checkedV3[gv] = true
			if err := v3.HasSupport(res.GroupVersionKind()); err != nil {
				t.Errorf("v3: %v: %v", res.GroupVersionKind(), err)
			}
		}
		if err := v2.HasSupport(res.GroupVersionKind()); err != nil {
			t.Errorf("v2: %v: %v", res.GroupVersionKind(), err)
		}
	}
	// Group versions of reviews alone have nothing to patch.
	patchable := map[schema.GroupVersion]bool{}
	for _, res := range served {
		if res.HasVerb("patch") {
			patchable[res.GroupVersion()] = true
		}
	}
	if len(checkedV3) != len(patchable) {
		t.Errorf("checked %d group versions, want %d", len(checkedV3), len(patchable))
	}
}

// staticV2 serves one OpenAPI v2 document.
type staticV2 struct{ doc *openapiv2.Document }

func (s staticV2) OpenAPISchema() (*openapiv2.Document, error) { return s.doc, nil }

// TestClientGoOpenAPIV3 reads documents the way kubectl explain and apply
// do, through client-go's openapi3 Root.
func TestClientGoOpenAPIV3(t *testing.T) {
	ts := newServer(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: ts.URL})
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	if len(gvs) != len(groupVersions()) {
		t.Errorf("openapi3 root lists %v, want %d group versions", gvs, len(groupVersions()))
	}
	apps, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	deployment := apps.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
	if deployment == nil || !hasGVK(deployment.Extensions, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}) {
		t.Fatalf("apps/v1 Deployment schema: %+v", deployment)
	}
	if apps.Components.Schemas["io.k8s.api.autoscaling.v1.Scale"] == nil {
		t.Errorf("apps/v1 lacks the Scale schema of the scale subresources")
	}
}

// TestSchemaExtensions checks the extensions kubectl's strategic merge,
// apply and explain rely on, which openapi-gen derives from the types'
// tags and markers.
func TestSchemaExtensions(t *testing.T) {
	ts := newServer(t)
	core, _ := document(t, ts, schema.GroupVersion{Version: "v1"})
	schemas := core.Components.Schemas
	containers := schemas["io.k8s.api.core.v1.PodSpec"].Properties["containers"]
	for k, want := range map[string]any{
		"x-kubernetes-patch-strategy":  "merge",
		"x-kubernetes-patch-merge-key": "name",
		"x-kubernetes-list-type":       "map",
		"x-kubernetes-list-map-keys":   []any{"name"},
	} {
		if got := containers.Extensions[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("PodSpec.containers %s = %v, want %v", k, got, want)
		}
	}
	if got := schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"].Extensions["x-kubernetes-map-type"]; got != "atomic" {
		t.Errorf("LabelSelector x-kubernetes-map-type = %v, want atomic", got)
	}
	if got := schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].Properties["finalizers"].Extensions["x-kubernetes-list-type"]; got != "set" {
		t.Errorf("ObjectMeta.finalizers x-kubernetes-list-type = %v, want set", got)
	}
	intOrString := schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if intOrString.Format != "int-or-string" || len(intOrString.OneOf) != 2 {
		t.Errorf("IntOrString: format %q, oneOf %v", intOrString.Format, intOrString.OneOf)
	}
	if q := schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]; q == nil || len(q.OneOf) != 2 {
		t.Errorf("Quantity: %+v", q)
	}
	if status := schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]; !hasGVK(status.Extensions, schema.GroupVersionKind{Version: "v1", Kind: "Status"}) {
		t.Errorf("Status: x-kubernetes-group-version-kind %v", status.Extensions)
	}
}

// TestV2 checks the swagger 2.0 document: JSON, and the protobuf client-go
// asks for, which must be the same document; kubectl's v2 model parser
// must accept it.
func TestV2(t *testing.T) {
	ts := newServer(t)
	resp := get(t, ts.URL+"/openapi/v2", "Accept", "application/json")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/json" {
		t.Fatalf("GET /openapi/v2: %s, %s", resp.Status, ct)
	}
	jsonDoc := body(t, resp)
	var sw spec.Swagger
	if err := json.Unmarshal(jsonDoc, &sw); err != nil {
		t.Fatalf("not a swagger document: %v", err)
	}
	if sw.Swagger != "2.0" || sw.Info.Title != "Kubernetes" {
		t.Errorf("swagger %q, info %+v", sw.Swagger, sw.Info)
	}
	for _, gv := range groupVersions() {
		path := "/" + docName(gv) + "/"
		if _, ok := sw.Paths.Paths[path]; !ok {
			t.Errorf("no path %s", path)
		}
	}
	patch := sw.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].Patch
	if patch == nil || !reflect.DeepEqual(patch.Consumes, []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}) {
		t.Errorf("PATCH deployment: %+v", patch)
	}

	resp = get(t, ts.URL+"/openapi/v2", "Accept", protoV2)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("GET /openapi/v2 as protobuf: %s, %s", resp.Status, ct)
	}
	var got openapiv2.Document
	if err := proto.Unmarshal(body(t, resp), &got); err != nil {
		t.Fatalf("protobuf does not decode: %v", err)
	}
	want, err := openapiv2.ParseDocument(jsonDoc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Errorf("protobuf and JSON documents differ")
	}
	models, err := utilproto.NewOpenAPIData(&got)
	if err != nil {
		t.Fatalf("kubectl's OpenAPI v2 parser: %v", err)
	}
	if models.LookupModel("io.k8s.api.apps.v1.Deployment") == nil {
		t.Errorf("no model io.k8s.api.apps.v1.Deployment")
	}

	// client-go's fetch.
	dc := discovery.NewDiscoveryClientForConfigOrDie(&rest.Config{Host: ts.URL})
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	if !proto.Equal(doc, want) {
		t.Errorf("client-go's document differs")
	}
}

// TestV3Protobuf checks the v3 protobuf form handler3 also serves.
func TestV3Protobuf(t *testing.T) {
	ts := newServer(t)
	resp := get(t, ts.URL+"/openapi/v3/apis/batch/v1", "Accept", protoV3)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "spec.v3") {
		t.Fatalf("%s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if len(body(t, resp)) == 0 {
		t.Fatal("empty")
	}
}

func TestOperationIDs(t *testing.T) {
	ts := newServer(t)
	core, _ := document(t, ts, schema.GroupVersion{Version: "v1"})
	networking, _ := document(t, ts, schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"})
	for _, tt := range []struct {
		doc          *spec3.OpenAPI
		path, method string
		id, tag      string
	}{
		{core, "/api/v1/namespaces/{namespace}/pods", "GET", "listCoreV1NamespacedPod", "core_v1"},
		{core, "/api/v1/pods", "GET", "listCoreV1PodForAllNamespaces", "core_v1"},
		{core, "/api/v1/namespaces/{namespace}/pods", "DELETE", "deleteCoreV1CollectionNamespacedPod", "core_v1"},
		{core, "/api/v1/namespaces/{namespace}/pods/{name}/exec", "POST", "connectCoreV1PostNamespacedPodExec", "core_v1"},
		{core, "/api/v1/namespaces/{namespace}/pods/{name}/log", "GET", "readCoreV1NamespacedPodLog", "core_v1"},
		{core, "/api/v1/nodes/{name}/proxy/{path}", "GET", "connectCoreV1GetNodeProxyWithPath", "core_v1"},
		{core, "/api/v1/watch/namespaces/{namespace}/configmaps/{name}", "GET", "watchCoreV1NamespacedConfigMap", "core_v1"},
		{core, "/api/v1/namespaces/{name}/finalize", "PUT", "replaceCoreV1NamespaceFinalize", "core_v1"},
		{networking, "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}/status", "PATCH", "patchNetworkingV1NamespacedIngressStatus", "networking_v1"},
		{networking, "/apis/networking.k8s.io/v1/", "GET", "getNetworkingV1APIResources", "networking_v1"},
	} {
		p := tt.doc.Paths.Paths[tt.path]
		if p == nil {
			t.Errorf("no path %s", tt.path)
			continue
		}
		op := operations(p)[tt.method]
		if op == nil || op.OperationId != tt.id || fmt.Sprint(op.Tags) != "["+tt.tag+"]" {
			t.Errorf("%s %s: %+v, want %s [%s]", tt.method, tt.path, op, tt.id, tt.tag)
		}
	}
}

// servedScheme knows every served Go type, CustomResourceDefinition too.
var servedScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	return s
}()
