package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/havre/havre/internal/registry"
)

// Paths served.
const (
	PathV2 = "/openapi/v2"
	PathV3 = "/openapi/v3"
)

// Content types of the documents, as kube-openapi's handlers negotiate
// them. The first of each list is what the response says.
var (
	v2Types = representations{
		{"application", "json", "application/json", false},
		{"application", "com.github.proto-openapi.spec.v2.v1.0+protobuf", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", true},
		{"application", "com.github.proto-openapi.spec.v2@v1.0+protobuf", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", true},
	}
	v3Types = representations{
		{"application", "json", "application/json", false},
		{"application", "com.github.proto-openapi.spec.v3.v1.0+protobuf", "application/com.github.proto-openapi.spec.v3.v1.0+protobuf", true},
		{"application", "com.github.proto-openapi.spec.v3@v1.0+protobuf", "application/com.github.proto-openapi.spec.v3.v1.0+protobuf", true},
	}
)

// Service serves the OpenAPI v2 and v3 documents of a set of resources.
//
// Nothing is built until the first request: New only keeps its arguments.
// The first /openapi/v2 request builds the v2 document, the first
// /openapi/v3 request every v3 document (the index carries each one's
// hash); the protobuf forms are converted on first request. Only gzipped
// bytes are kept, and the memory a build used is handed back at once, so
// OpenAPI costs an idle server nothing before use and ~2.5 MB of heap once
// every document has been asked for.
type Service struct {
	resources []*registry.Resource
	version   string

	initOnce sync.Once
	initErr  error
	namer    *definitionNamer
	// v3Routes are the routes of each v3 document by name ("api/v1",
	// "apis/apps/v1", "version", ...); v2Routes are all of them.
	v3Routes map[string][]common.RouteContainer
	v2Routes []common.RouteContainer

	v2Once sync.Once
	v2     *document
	v2Err  error

	v3Once  sync.Once
	v3      map[string]*document
	v3Index *document
	v3Err   error

	custom     custom
	aggregated aggregated
}

// New returns a Service for resources; version (a git version such as
// "v1.37.2") is the documents' info.version.
func New(resources []*registry.Resource, version string) *Service {
	return &Service{resources: resources, version: version}
}

// Serve answers GET /openapi/v2, /openapi/v3 and /openapi/v3/<document>,
// and reports whether it did; other paths, methods and unknown documents
// are left to the caller.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || (p != PathV2 && p != PathV3 && !strings.HasPrefix(p, PathV3+"/")) {
		return false
	}
	if err := s.init(); err != nil {
		serveError(w, err)
		return true
	}
	switch {
	case p == PathV2 && s.custom.active():
		s.serveCustomV2(w, r)
	case p == PathV2:
		s.v2Once.Do(func() {
			s.v2, s.v2Err = s.buildV2()
			releaseMemory()
		})
		if s.v2Err != nil {
			serveError(w, s.v2Err)
			return true
		}
		s.v2.serve(w, r, v2Types)
	case p == PathV3 || p == PathV3+"/":
		if err := s.buildV3(); err != nil {
			serveError(w, err)
			return true
		}
		index := s.v3Index
		if s.custom.active() {
			var err error
			if index, err = s.customIndex(); err != nil {
				serveError(w, err)
				return true
			}
		}
		index, err := s.withAggregated(index)
		if err != nil {
			serveError(w, err)
			return true
		}
		// The index is JSON whatever the Accept header, as handler3 serves it.
		index.write(w, r, v3Types[0])
	default:
		name := strings.TrimPrefix(p, PathV3+"/")
		if _, ok := s.v3Routes[name]; !ok {
			doc, err := s.customV3(name)
			if err != nil {
				serveError(w, err)
				return true
			}
			if doc == nil {
				doc = s.aggregatedV3(name)
			}
			if doc == nil {
				return false
			}
			doc.serveHashed(w, r, v3Types, serverRelativeURL(name, doc.etag))
			return true
		}
		if err := s.buildV3(); err != nil {
			serveError(w, err)
			return true
		}
		s.v3[name].serveHashed(w, r, v3Types, serverRelativeURL(name, s.v3[name].etag))
	}
	return true
}

// ServeHTTP is Serve, with a 404 for what Serve leaves.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.Serve(w, r) {
		http.NotFound(w, r)
	}
}

// Documents returns the names of the v3 documents ("api/v1",
// "apis/apps/v1", "version", ...), sorted.
func (s *Service) Documents() ([]string, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(s.v3Routes))
	for name := range s.v3Routes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func serveError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// discoveryDoc is the v3 document of a discovery path.
type discoveryDoc struct {
	name  string
	route *route
}

// init builds the routes of every document.
func (s *Service) init() error {
	s.initOnce.Do(func() { s.initErr = s.buildRoutes() })
	return s.initErr
}

func (s *Service) buildRoutes() error {
	s.namer = newDefinitionNamer(s.resources)
	s.v3Routes = map[string][]common.RouteContainer{}

	byGV := map[schema.GroupVersion]*container{}
	var gvs []schema.GroupVersion
	for _, res := range s.resources {
		routes, err := resourceRoutes(res)
		if err != nil {
			return err
		}
		gv := res.GroupVersion()
		c := byGV[gv]
		if c == nil {
			c = &container{root: gvPrefix(gv), routes: []common.Route{groupVersionResourcesRoute(gv)}}
			byGV[gv] = c
			gvs = append(gvs, gv)
		}
		c.routes = append(c.routes, routes...)
	}
	sort.Slice(gvs, func(i, j int) bool { return gvs[i].String() < gvs[j].String() })

	// Discovery documents, which kube-apiserver lists in /openapi/v3 too.
	discovery := []discoveryDoc{{"version", versionRoute()}, {"apis", groupsRoute()}}
	groups := map[string]bool{}
	for _, gv := range gvs {
		switch {
		case groups[gv.Group]:
		case gv.Group == "":
			discovery = append(discovery, discoveryDoc{"api", coreVersionsRoute()})
		default:
			discovery = append(discovery, discoveryDoc{"apis/" + gv.Group, groupRoute(gv.Group)})
		}
		groups[gv.Group] = true
	}
	for _, d := range discovery {
		c := &container{root: strings.TrimSuffix(d.route.path, "/"), routes: []common.Route{d.route}}
		s.v3Routes[d.name] = []common.RouteContainer{c}
		s.v2Routes = append(s.v2Routes, c)
	}
	for _, gv := range gvs {
		c := byGV[gv]
		s.v3Routes[strings.TrimPrefix(c.root, "/")] = []common.RouteContainer{c}
		s.v2Routes = append(s.v2Routes, c)
	}
	return nil
}

func (s *Service) info() *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: s.version}}
}

const bearerToken = "BearerToken"

// buildV2 builds the swagger 2.0 document of everything.
func (s *Service) buildV2() (*document, error) {
	sw, err := s.buildV2Spec()
	if err != nil {
		return nil, err
	}
	data, err := sw.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding OpenAPI v2: %w", err)
	}
	return newDocument(data, v2ProtoBinary)
}

// buildV2Spec builds the swagger 2.0 document of the built-in resources.
func (s *Service) buildV2Spec() (*spec.Swagger, error) {
	sw, err := builder.BuildOpenAPISpecFromRoutes(s.v2Routes, &common.Config{
		ProtocolList:                   []string{"https"},
		Info:                           s.info(),
		CommonResponses:                map[int]spec.Response{http.StatusUnauthorized: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}}},
		GetDefinitions:                 GetOpenAPIDefinitions,
		GetDefinitionName:              s.namer.name,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		SecurityDefinitions: &spec.SecurityDefinitions{bearerToken: &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
		DefaultSecurity: []map[string][]string{{bearerToken: {}}},
	})
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI v2: %w", err)
	}
	return sw, nil
}

// v2ProtoBinary converts a swagger 2.0 JSON document to gnostic's protobuf,
// which client-go's OpenAPISchema asks for.
func v2ProtoBinary(data []byte) ([]byte, error) {
	doc, err := openapiv2.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

// buildV3 builds every v3 document and the index, once.
func (s *Service) buildV3() error {
	s.v3Once.Do(func() {
		s.v3Err = s.buildV3Documents()
		releaseMemory()
	})
	return s.v3Err
}

func (s *Service) buildV3Documents() error {
	// The definitions, referring to components/schemas, are shared by all
	// documents (the builder copies what it changes) and dropped after.
	defs := GetOpenAPIDefinitions(func(name string) spec.Ref {
		defName, _ := s.namer.name(name)
		return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(defName))
	})
	docs := make(map[string]*document, len(s.v3Routes))
	index := handler3.OpenAPIV3Discovery{Paths: make(map[string]handler3.OpenAPIV3DiscoveryGroupVersion, len(s.v3Routes))}
	for name, routes := range s.v3Routes {
		doc, err := builder3.BuildOpenAPISpecFromRoutes(routes, &common.OpenAPIV3Config{
			Info:                           s.info(),
			CommonResponses:                map[int]*spec3.Response{http.StatusUnauthorized: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}}},
			Definitions:                    defs,
			GetDefinitionName:              s.namer.name,
			GetOperationIDAndTagsFromRoute: operationIDAndTags,
			SecuritySchemes: spec3.SecuritySchemes{bearerToken: &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
				Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
			}}},
		})
		if err != nil {
			return fmt.Errorf("building OpenAPI v3 document %s: %w", name, err)
		}
		data, err := doc.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encoding OpenAPI v3 document %s: %w", name, err)
		}
		if docs[name], err = newDocument(data, handler3.ToV3ProtoBinary); err != nil {
			return err
		}
		index.Paths[name] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(name, docs[name].etag)}
	}
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if s.v3Index, err = newDocument(data, nil); err != nil {
		return err
	}
	s.v3 = docs
	return nil
}

// releaseMemory returns to the operating system the memory a one-time build
// of documents used: tens of megabytes of short-lived schema objects, which
// would otherwise stay resident until the next collections and the
// scavenger give them back, for a result of a few hundred kilobytes.
func releaseMemory() { debug.FreeOSMemory() }

// serverRelativeURL is a v3 document's URL in the index, with its hash, as
// kube-openapi's handler3 writes it.
func serverRelativeURL(name, etag string) string {
	u := url.URL{Path: path.Join(PathV3, name), RawQuery: url.Values{"hash": {etag}}.Encode()}
	return u.String()
}
