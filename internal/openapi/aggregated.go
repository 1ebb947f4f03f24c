package openapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/kube-openapi/pkg/handler3"
)

// aggregated holds the v3 documents of the group versions APIServices
// delegate to other servers, as their backends serve them (the
// aggregator fetches them), and the index with them.
type aggregated struct {
	mu   sync.Mutex
	docs map[string]*document
	// gen counts the replacements of docs.
	gen uint64
	// idx is the index with the documents, built from base, the index of
	// the built-in and custom documents it was built from.
	base *document
	idx  *document
}

// SetAggregatedV3 replaces the v3 documents of the aggregated group
// versions, JSON by name ("apis/<group>/<version>"). They are listed in
// /openapi/v3 and served at /openapi/v3/<name>, unless a built-in or
// custom resource document has the name.
func (s *Service) SetAggregatedV3(docs map[string][]byte) {
	a := &s.aggregated
	a.mu.Lock()
	old := a.docs
	a.mu.Unlock()
	built := make(map[string]*document, len(docs))
	for name, data := range docs {
		doc, err := newDocument(data, handler3.ToV3ProtoBinary)
		if err != nil {
			slog.Warn("openapi: aggregated document", "name", name, "err", err)
			continue
		}
		// An unchanged document keeps its protobuf form and modification time.
		if prev := old[name]; prev != nil && prev.etag == doc.etag {
			doc = prev
		}
		built[name] = doc
	}
	a.mu.Lock()
	a.docs, a.base, a.idx = built, nil, nil
	a.gen++
	a.mu.Unlock()
}

// aggregatedV3 returns the aggregated document of a name, or nil. The
// caller checks the built-in and custom documents first.
func (s *Service) aggregatedV3(name string) *document {
	a := &s.aggregated
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.docs[name]
}

// withAggregated returns base, an index of the built-in (and custom)
// documents, with the aggregated documents whose names it lacks.
func (s *Service) withAggregated(base *document) (*document, error) {
	a := &s.aggregated
	a.mu.Lock()
	docs, gen := a.docs, a.gen
	if len(docs) == 0 {
		a.mu.Unlock()
		return base, nil
	}
	if a.base == base && a.idx != nil {
		idx := a.idx
		a.mu.Unlock()
		return idx, nil
	}
	a.mu.Unlock()

	data, err := decompress(base.json)
	if err != nil {
		return nil, err
	}
	var index handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("decoding the OpenAPI v3 index: %w", err)
	}
	for name, doc := range docs {
		if _, ok := index.Paths[name]; !ok {
			index.Paths[name] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(name, doc.etag)}
		}
	}
	if data, err = json.Marshal(index); err != nil {
		return nil, err
	}
	idx, err := newDocument(data, nil)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	// Kept unless the documents changed meanwhile.
	if a.gen == gen {
		a.base, a.idx = base, idx
	}
	a.mu.Unlock()
	return idx, nil
}
