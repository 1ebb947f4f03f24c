package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// custom holds the documents of the custom resources served now, built
// from their CustomResourceDefinitions by the apiextensions server's own
// builder (k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder)
// on first request after each change.
type custom struct {
	mu   sync.Mutex
	crds []*apiextensionsv1.CustomResourceDefinition
	// gvs are the documents' names ("apis/<group>/<version>").
	gvs map[string][]*apiextensionsv1.CustomResourceDefinition
	v2  *document
	v3  map[string]*document
	idx *document
}

// SetCustomResourceDefinitions replaces the established definitions whose
// served versions the documents include. Documents are rebuilt lazily.
func (s *Service) SetCustomResourceDefinitions(crds []*apiextensionsv1.CustomResourceDefinition) {
	c := &s.custom
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crds = crds
	c.gvs = map[string][]*apiextensionsv1.CustomResourceDefinition{}
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Served {
				name := strings.TrimPrefix(gvPrefix(schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name}), "/")
				c.gvs[name] = append(c.gvs[name], crd)
			}
		}
	}
	c.v2, c.v3, c.idx = nil, map[string]*document{}, nil
}

// customDefinitions returns whether custom resources are served.
func (c *custom) active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.crds) > 0
}

// serveV2 serves the v2 document with the custom resources merged in.
func (s *Service) serveCustomV2(w http.ResponseWriter, r *http.Request) {
	c := &s.custom
	c.mu.Lock()
	doc := c.v2
	crds := c.crds
	c.mu.Unlock()
	if doc == nil {
		var err error
		if doc, err = s.buildCustomV2(crds); err != nil {
			serveError(w, err)
			return
		}
		c.mu.Lock()
		if sameDefinitions(c.crds, crds) {
			c.v2 = doc
		}
		c.mu.Unlock()
	}
	doc.serve(w, r, v2Types)
}

func sameDefinitions(a, b []*apiextensionsv1.CustomResourceDefinition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *Service) buildCustomV2(crds []*apiextensionsv1.CustomResourceDefinition) (*document, error) {
	static, err := s.buildV2Spec()
	if err != nil {
		return nil, err
	}
	var specs []*spec.Swagger
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			sw, err := builder.BuildOpenAPIV2(crd, v.Name, builder.Options{V2: true, IncludeSelectableFields: true})
			if err != nil {
				return nil, fmt.Errorf("OpenAPI v2 of %s/%s: %w", crd.Name, v.Name, err)
			}
			specs = append(specs, sw)
		}
	}
	merged, err := builder.MergeSpecs(static, specs...)
	if err != nil {
		return nil, err
	}
	data, err := merged.MarshalJSON()
	if err != nil {
		return nil, err
	}
	defer releaseMemory()
	return newDocument(data, v2ProtoBinary)
}

// customV3 returns the v3 document of a custom group version, or nil.
func (s *Service) customV3(name string) (*document, error) {
	c := &s.custom
	c.mu.Lock()
	defer c.mu.Unlock()
	crds, ok := c.gvs[name]
	if !ok {
		return nil, nil
	}
	if doc := c.v3[name]; doc != nil {
		return doc, nil
	}
	version := name[strings.LastIndex(name, "/")+1:]
	var specs []*spec3.OpenAPI
	for _, crd := range crds {
		doc, err := builder.BuildOpenAPIV3(crd, version, builder.Options{V2: false, IncludeSelectableFields: true})
		if err != nil {
			return nil, fmt.Errorf("OpenAPI v3 of %s/%s: %w", crd.Name, version, err)
		}
		specs = append(specs, doc)
	}
	merged, err := builder.MergeSpecsV3(specs...)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	doc, err := newDocument(data, handler3.ToV3ProtoBinary)
	if err != nil {
		return nil, err
	}
	c.v3[name] = doc
	return doc, nil
}

// customIndex is the v3 index with the custom group versions.
func (s *Service) customIndex() (*document, error) {
	c := &s.custom
	c.mu.Lock()
	names := make([]string, 0, len(c.gvs))
	for name := range c.gvs {
		names = append(names, name)
	}
	idx := c.idx
	c.mu.Unlock()
	if idx != nil {
		return idx, nil
	}
	sort.Strings(names)
	index := handler3.OpenAPIV3Discovery{Paths: map[string]handler3.OpenAPIV3DiscoveryGroupVersion{}}
	for name, doc := range s.v3 {
		index.Paths[name] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(name, doc.etag)}
	}
	for _, name := range names {
		if _, ok := s.v3Routes[name]; ok {
			continue
		}
		doc, err := s.customV3(name)
		if err != nil {
			return nil, err
		}
		if doc != nil {
			index.Paths[name] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(name, doc.etag)}
		}
	}
	data, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	if idx, err = newDocument(data, nil); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.gvs) == len(names) {
		c.idx = idx
	}
	c.mu.Unlock()
	return idx, nil
}
