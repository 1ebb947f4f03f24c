package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"

	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-openapi/pkg/handler3"
)

// OpenAPISink receives the OpenAPI v3 documents of the aggregated group
// versions (those of available non-local APIServices), by name
// ("apis/<group>/<version>"), for /openapi/v3. It is called only when they
// changed.
type OpenAPISink interface {
	SetAggregatedV3(docs map[string][]byte)
}

// SetOpenAPISink sets where the aggregated OpenAPI v3 documents go;
// without one, they are not fetched.
func (a *Aggregator) SetOpenAPISink(s OpenAPISink) { a.openapiSink = s }

// openAPIDocument is the last OpenAPI v3 document a backend served for its
// APIService.
type openAPIDocument struct {
	// url is the document's server-relative URL in the backend's index,
	// with its hash: while the index gives the same, the document is not
	// fetched again.
	url  string
	data []byte
}

// maxOpenAPIDocument bounds what a backend's OpenAPI document may weigh
// (the built-in apis/apps/v1 is some 300 kB).
const maxOpenAPIDocument = 32 << 20

// openAPIV3Name is the name of an APIService's v3 document, as backends
// built on k8s.io/apiserver list it in their /openapi/v3.
func openAPIV3Name(api *apiregistrationv1.APIService) string {
	return "apis/" + api.Spec.Group + "/" + api.Spec.Version
}

// openAPIV3 returns the OpenAPI v3 document the backend of api lists for
// its group version in its /openapi/v3 index, as kube-aggregator's
// openapiv3 controller downloads it: the last good copy if the backend
// fails to answer, nil if it serves none.
func (a *Aggregator) openAPIV3(ctx context.Context, api *apiregistrationv1.APIService) []byte {
	a.mu.RLock()
	last, hadLast := a.openapi[api.Name]
	a.mu.RUnlock()
	doc, err := a.fetchOpenAPIV3(ctx, api, last)
	if err != nil {
		slog.Debug("aggregator: OpenAPI v3", "apiservice", api.Name, "err", err)
		if hadLast {
			return last.data
		}
		return nil
	}
	a.mu.Lock()
	if doc == nil {
		delete(a.openapi, api.Name)
	} else {
		a.openapi[api.Name] = *doc
	}
	a.mu.Unlock()
	if doc == nil {
		return nil
	}
	return doc.data
}

// fetchOpenAPIV3 reads the backend's /openapi/v3 index and, unless its URL
// is last's, the document it lists for the APIService's group version;
// nil if it lists none.
func (a *Aggregator) fetchOpenAPIV3(ctx context.Context, api *apiregistrationv1.APIService, last openAPIDocument) (*openAPIDocument, error) {
	body, err := a.get(ctx, api, &url.URL{Path: "/openapi/v3"}, 1<<20)
	if err != nil {
		return nil, err
	}
	var index handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(body, &index); err != nil {
		return nil, fmt.Errorf("%s: /openapi/v3: %w", api.Name, err)
	}
	entry, ok := index.Paths[openAPIV3Name(api)]
	if !ok {
		return nil, nil
	}
	if entry.ServerRelativeURL == last.url && last.data != nil {
		return &last, nil
	}
	ref, err := url.Parse(entry.ServerRelativeURL)
	if err != nil || ref.Path == "" || ref.IsAbs() {
		return nil, fmt.Errorf("%s: /openapi/v3: bad serverRelativeURL %q", api.Name, entry.ServerRelativeURL)
	}
	data, err := a.get(ctx, api, ref, maxOpenAPIDocument)
	if err != nil {
		return nil, err
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%s: %s: not JSON", api.Name, entry.ServerRelativeURL)
	}
	return &openAPIDocument{url: entry.ServerRelativeURL, data: data}, nil
}
