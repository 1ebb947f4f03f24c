package apiserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/storage"
)

// customResources serves the resources of established
// CustomResourceDefinitions: it follows the definitions in the store and
// (re)builds a handler per served version, then discovery and OpenAPI.
type customResources struct {
	// syncMu serialises syncs: each lists the definitions and installs
	// what it listed.
	syncMu   sync.Mutex
	mu       sync.RWMutex
	handlers map[schema.GroupVersionResource]*resourceHandler
	// built is, per definition name, what its handlers were built from.
	built map[string]builtCRD
	// conv converts the resources of definitions with conversion Webhook.
	conv crConversion
}

type builtCRD struct {
	key      string
	handlers []*resourceHandler
}

// customKinds maps the kinds of custom resources to their definitions'
// serving data, for the Table transformation.
var customKinds sync.Map // schema.GroupVersionKind → *customResource

func customKind(gvk schema.GroupVersionKind) *customResource {
	if v, ok := customKinds.Load(gvk); ok {
		return v.(*customResource)
	}
	return nil
}

func (c *customResources) handler(gvr schema.GroupVersionResource) *resourceHandler {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.handlers[gvr]
}

// catchUpCustomResource serves a client that has read a definition as
// Established before the watch that follows the definitions has rebuilt
// the handlers: when the store holds an established definition named
// <resource>.<group> that is not served yet, it syncs once and looks again.
// A client that saw Established thus never gets a 404 from this server.
func (s *Server) catchUpCustomResource(ctx context.Context, group, version, resource string) *resourceHandler {
	if group == "" || resource == "" {
		return nil
	}
	obj, err := s.crdHandler().objs.get(ctx, "", resource+"."+group)
	if err != nil {
		return nil
	}
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok || !isEstablished(crd) {
		return nil
	}
	s.custom.mu.RLock()
	b, built := s.custom.built[crd.Name]
	s.custom.mu.RUnlock()
	if built && b.key == buildKey(crd) {
		return nil // served as it is: the version asked for is not
	}
	if _, err := s.syncCustomResources(ctx); err != nil {
		return nil
	}
	return s.custom.handler(schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
}

// crdHandler is the handler of CustomResourceDefinitions.
func (s *Server) crdHandler() *resourceHandler {
	return s.handlers[apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")]
}

// buildKey identifies what a definition's handlers depend on: a status
// update that changes neither names nor establishment reuses them.
func buildKey(crd *apiextensionsv1.CustomResourceDefinition) string {
	b, _ := json.Marshal(struct {
		UID         string
		Generation  int64
		Names       apiextensionsv1.CustomResourceDefinitionNames
		Terminating bool
	}{string(crd.UID), crd.Generation, crd.Status.AcceptedNames, crd.DeletionTimestamp != nil})
	return string(b)
}

// syncCustomResources rebuilds the served custom resources from the
// definitions in the store.
func (s *Server) syncCustomResources(ctx context.Context) (int64, error) {
	s.custom.syncMu.Lock()
	defer s.custom.syncMu.Unlock()
	h := s.crdHandler()
	res, err := s.cfg.Store.List(ctx, h.objs.listPrefix(""), storage.ListOptions{})
	if err != nil {
		return 0, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, kv := range res.KVs {
		obj, err := h.objs.decode(kv)
		if err != nil {
			return 0, err
		}
		crds = append(crds, obj.(*apiextensionsv1.CustomResourceDefinition))
	}
	s.setCustomResources(crds)
	return res.Revision, nil
}

func (s *Server) setCustomResources(crds []*apiextensionsv1.CustomResourceDefinition) {
	c := s.custom
	c.mu.Lock()
	defer c.mu.Unlock()
	built := map[string]builtCRD{}
	handlers := map[schema.GroupVersionResource]*resourceHandler{}
	var served []*registry.Resource
	for _, crd := range crds {
		if !isEstablished(crd) {
			continue
		}
		key := buildKey(crd)
		b, ok := c.built[crd.Name]
		if !ok || b.key != key {
			b = builtCRD{key: key}
			versions := slices.Clone(crd.Spec.Versions)
			sort.SliceStable(versions, func(i, j int) bool {
				return version.CompareKubeAwareVersionStrings(versions[i].Name, versions[j].Name) > 0
			})
			for _, v := range versions {
				if !v.Served {
					continue
				}
				h, err := s.newCustomResourceHandler(crd, v.Name)
				if err != nil {
					slog.Error("serving custom resource", "crd", crd.Name, "version", v.Name, "err", err)
					continue
				}
				b.handlers = append(b.handlers, h)
			}
		}
		built[crd.Name] = b
		for _, h := range b.handlers {
			if s.handlers[h.res.GroupVersionResource] != nil || handlers[h.res.GroupVersionResource] != nil {
				continue // built-in resources and older definitions win
			}
			handlers[h.res.GroupVersionResource] = h
			served = append(served, h.res)
		}
	}
	for gvk := range c.kinds() {
		customKinds.Delete(gvk)
	}
	for _, h := range handlers {
		customKinds.Store(h.custom.gvk, h.custom)
	}
	c.built, c.handlers = built, handlers
	s.discovery.setCustom(served)
	if s.openapi != nil {
		var defs []*apiextensionsv1.CustomResourceDefinition
		for _, crd := range crds {
			if _, ok := built[crd.Name]; ok {
				defs = append(defs, crd)
			}
		}
		s.openapi.SetCustomResourceDefinitions(defs)
	}
}

// kinds returns the kinds currently served; c.mu is held.
func (c *customResources) kinds() map[schema.GroupVersionKind]bool {
	out := map[schema.GroupVersionKind]bool{}
	for _, h := range c.handlers {
		out[h.custom.gvk] = true
	}
	return out
}

// runCustomResources follows the definitions until ctx is done.
func (s *Server) runCustomResources(ctx context.Context, rev int64) {
	h := s.crdHandler()
	for ctx.Err() == nil {
		events, err := s.cfg.Store.Watch(ctx, h.objs.listPrefix(""), rev, storage.WatchOptions{})
		if err == nil {
			for ev := range events {
				if ev.Type == storage.Error {
					break
				}
				// Coalesce what has already arrived, then rebuild once.
				for drained := false; !drained; {
					select {
					case _, ok := <-events:
						drained = !ok
					default:
						drained = true
					}
				}
				if rev, err = s.syncCustomResources(ctx); err != nil {
					break
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if r, err := s.syncCustomResources(ctx); err == nil {
			rev = r
		}
	}
}
