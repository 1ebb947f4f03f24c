package openapi_test

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/openapi"
	"github.com/havre/havre/internal/registry"
)

// aggregatedDoc is an OpenAPI v3 document as an aggregated server serves
// it for a group version, told apart by its title.
func aggregatedDoc(title string) []byte {
	return []byte(fmt.Sprintf(`{"openapi":"3.0.0","info":{"title":%q,"version":"v0"},"paths":{},`+
		`"components":{"schemas":{"com.example.wardle.v1alpha1.Flunder":{"type":"object","description":"A flunder.",`+
		`"properties":{"spec":{"type":"object","description":"What the flunder wants."}},`+
		`"x-kubernetes-group-version-kind":[{"group":"wardle.example.com","version":"v1alpha1","kind":"Flunder"}]}}}}`, title))
}

func gadgetDefinition() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.toys.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "toys.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}},
		},
	}
}

// TestAggregatedV3 checks the documents of aggregated group versions: the
// index lists them with their hashes (with and without custom resources),
// /openapi/v3/<name> serves them as JSON and protobuf with handler3's
// hash and ETag handling, a name a built-in or custom resource document
// has is not overridden, and replaced or removed documents go.
func TestAggregatedV3(t *testing.T) {
	// A small catalog: building the documents of a few resources is quick.
	var resources []*registry.Resource
	for _, res := range served {
		if res.Group == "apps" && res.Version == "v1" {
			resources = append(resources, res)
		}
	}
	svc := openapi.New(resources, "v1.37.2")
	ts := httptest.NewServer(svc)
	t.Cleanup(ts.Close)

	const wardle = "apis/wardle.example.com/v1alpha1"
	first, second := aggregatedDoc("wardle one"), aggregatedDoc("wardle two")
	var stale string // the URL of a replaced document
	for _, tt := range []struct {
		name string
		crds []*apiextensionsv1.CustomResourceDefinition
		docs map[string][]byte
		// served are the aggregated documents served; local the names
		// whose built-in or custom document is served whatever the
		// aggregated ones; absent the names neither listed nor served.
		served map[string][]byte
		local  []string
		absent []string
	}{{
		name:   "none",
		local:  []string{"apis/apps/v1", "version"},
		absent: []string{wardle},
	}, {
		name:   "listed and served",
		docs:   map[string][]byte{wardle: first, "apis/apps/v1": aggregatedDoc("apps"), "version": aggregatedDoc("version")},
		served: map[string][]byte{wardle: first},
		local:  []string{"apis/apps/v1", "version"},
	}, {
		name:   "with custom resources",
		crds:   []*apiextensionsv1.CustomResourceDefinition{gadgetDefinition()},
		docs:   map[string][]byte{wardle: first, "apis/toys.example.com/v1": aggregatedDoc("toys")},
		served: map[string][]byte{wardle: first},
		local:  []string{"apis/apps/v1", "apis/toys.example.com/v1"},
	}, {
		name:   "replaced",
		docs:   map[string][]byte{wardle: second},
		served: map[string][]byte{wardle: second},
		local:  []string{"apis/apps/v1"},
		absent: []string{"apis/toys.example.com/v1"},
	}, {
		name:   "removed",
		local:  []string{"apis/apps/v1"},
		absent: []string{wardle},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			svc.SetCustomResourceDefinitions(tt.crds)
			svc.SetAggregatedV3(tt.docs)
			idx := index(t, ts)
			for name, want := range tt.served {
				wantURL := fmt.Sprintf("/openapi/v3/%s?hash=%X", name, sha512.Sum512(want))
				if got := idx.Paths[name].ServerRelativeURL; got != wantURL {
					t.Fatalf("index lists %s at %q, want %q", name, got, wantURL)
				}
				resp := get(t, ts.URL+wantURL, "Accept", "application/json")
				if got := body(t, resp); resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
					t.Errorf("GET %s: %s\n%s", wantURL, resp.Status, got)
				}
				_, hash, _ := strings.Cut(wantURL, "?hash=")
				if resp.Header.Get("Etag") != `"`+hash+`"` || resp.Header.Get("Cache-Control") != "public, immutable" {
					t.Errorf("GET %s: ETag %q, Cache-Control %q", wantURL, resp.Header.Get("Etag"), resp.Header.Get("Cache-Control"))
				}
				if resp := get(t, ts.URL+"/openapi/v3/"+name, "If-None-Match", `"`+hash+`"`); resp.StatusCode != http.StatusNotModified {
					t.Errorf("If-None-Match: %s, want 304", resp.Status)
				}
				if stale != "" && stale != wantURL {
					if resp := get(t, ts.URL+stale); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != wantURL {
						t.Errorf("stale hash: %s, Location %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), wantURL)
					}
				}
				stale = wantURL

				resp = get(t, ts.URL+wantURL, "Accept", protoV3)
				if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "spec.v3") {
					t.Fatalf("protobuf: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
				}
				var doc openapiv3.Document
				if err := proto.Unmarshal(body(t, resp), &doc); err != nil {
					t.Fatalf("protobuf: %v", err)
				}
				if title := doc.GetInfo().GetTitle(); !strings.Contains(string(want), fmt.Sprintf("%q", title)) {
					t.Errorf("protobuf document titled %q", title)
				}
			}
			for _, name := range tt.local {
				url, ok := idx.Paths[name]
				if !ok {
					t.Errorf("%s not in the index", name)
					continue
				}
				resp := get(t, ts.URL+url.ServerRelativeURL, "Accept", "application/json")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", url.ServerRelativeURL, resp.Status)
				}
				if got := body(t, resp); bytes.Contains(got, []byte("Flunder")) || bytes.Equal(got, tt.docs[name]) {
					t.Errorf("%s: the aggregated document replaced the server's own", name)
				}
			}
			for _, name := range tt.absent {
				if _, ok := idx.Paths[name]; ok {
					t.Errorf("%s still in the index", name)
				}
				w := httptest.NewRecorder()
				if svc.Serve(w, httptest.NewRequest(http.MethodGet, "/openapi/v3/"+name, nil)) {
					t.Errorf("%s still served (%d)", name, w.Code)
				}
			}
		})
	}
}
