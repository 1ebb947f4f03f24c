package aggregator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/transport"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"

	"github.com/havre/havre/internal/registry"
)

// discoveryInterval is how often the aggregated group versions' resources
// are fetched again without a change of APIService.
const discoveryInterval = 30 * time.Second

// discoveryLoop fetches the resource lists of the available non-local
// APIServices after every change and every discoveryInterval, and hands
// them to the sink; with an OpenAPI sink, their OpenAPI v3 documents too.
func (a *Aggregator) discoveryLoop(ctx context.Context) {
	ticker := time.NewTicker(discoveryInterval)
	defer ticker.Stop()
	var last []*registry.Resource
	var lastDocs map[string][]byte
	first := true
	for {
		resources, docs := a.fetchAll(ctx)
		if a.sink != nil && (first || !reflect.DeepEqual(resources, last)) {
			a.sink.SetAggregated(resources)
			last, first = resources, false
		}
		if a.openapiSink != nil && !maps.EqualFunc(docs, lastDocs, bytes.Equal) {
			a.openapiSink.SetAggregatedV3(docs)
			lastDocs = docs
		}
		select {
		case <-ctx.Done():
			return
		case <-a.refresh:
		case <-ticker.C:
		}
	}
}

// fetchAll returns the resources of the available non-local APIServices
// and, with an OpenAPI sink, their OpenAPI v3 documents by name
// ("apis/<group>/<version>"). A backend that fails to answer keeps what it
// gave last; APIServices gone or unavailable lose theirs.
func (a *Aggregator) fetchAll(ctx context.Context) ([]*registry.Resource, map[string][]byte) {
	a.mu.RLock()
	lister := a.apis
	a.mu.RUnlock()
	all, err := lister.List(labels.Everything())
	if err != nil {
		return nil, nil
	}
	var out []*registry.Resource
	docs := map[string][]byte{}
	seen := map[string]bool{}
	for _, api := range helperSorted(all) {
		if api.Spec.Service == nil || !helper.IsAPIServiceConditionTrue(api, apiregistrationv1.Available) {
			continue
		}
		seen[api.Name] = true
		res, err := a.fetch(ctx, api)
		if err != nil {
			slog.Debug("aggregator: discovery", "apiservice", api.Name, "err", err)
			// Keep what it listed last, as upstream keeps a stale
			// document until the backend answers again.
			a.mu.RLock()
			res = a.discovered[api.Name]
			a.mu.RUnlock()
		} else {
			a.mu.Lock()
			a.discovered[api.Name] = res
			a.mu.Unlock()
		}
		out = append(out, res...)
		if a.openapiSink != nil {
			if doc := a.openAPIV3(ctx, api); doc != nil {
				docs[openAPIV3Name(api)] = doc
			}
		}
	}
	a.mu.Lock()
	for name := range a.discovered {
		if !seen[name] {
			delete(a.discovered, name)
		}
	}
	for name := range a.openapi {
		if !seen[name] {
			delete(a.openapi, name)
		}
	}
	a.mu.Unlock()
	return out, docs
}

// helperSorted orders APIServices as discovery lists them: by group
// priority, then version priority.
func helperSorted(apis []*apiregistrationv1.APIService) []*apiregistrationv1.APIService {
	var out []*apiregistrationv1.APIService
	for _, group := range helper.SortedByGroupAndVersion(apis) {
		out = append(out, group...)
	}
	return out
}

// fetch reads the backend's /apis/<group>/<version> and returns its
// resources.
func (a *Aggregator) fetch(ctx context.Context, api *apiregistrationv1.APIService) ([]*registry.Resource, error) {
	body, err := a.get(ctx, api, &url.URL{Path: "/apis/" + api.Spec.Group + "/" + api.Spec.Version}, 8<<20)
	if err != nil {
		return nil, err
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", api.Name, err)
	}
	return toResources(schema.GroupVersion{Group: api.Spec.Group, Version: api.Spec.Version}, list.APIResources), nil
}

// get reads ref (a path and query) from the backend of api, as
// system:kube-aggregator (system:masters), in JSON, at most limit bytes;
// anything but 200 is an error.
func (a *Aggregator) get(ctx context.Context, api *apiregistrationv1.APIService, ref *url.URL, limit int64) ([]byte, error) {
	rt, err := a.transport(api)
	if err != nil {
		return nil, err
	}
	u, err := a.resolve(api)
	if err != nil {
		return nil, err
	}
	u.Path, u.RawQuery = ref.Path, ref.RawQuery
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	transport.SetAuthProxyHeaders(req, "system:kube-aggregator", "", []string{"system:masters"}, nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", u, limit)
	}
	return body, nil
}

// toResources turns a resource list into catalog entries, subresources
// attached to their resources.
func toResources(gv schema.GroupVersion, list []metav1.APIResource) []*registry.Resource {
	var out []*registry.Resource
	byName := map[string]*registry.Resource{}
	for _, r := range list {
		if strings.Contains(r.Name, "/") {
			continue
		}
		res := &registry.Resource{GroupVersionResource: gv.WithResource(r.Name), Kind: r.Kind, Singular: r.SingularName,
			Namespaced: r.Namespaced, ShortNames: r.ShortNames, Categories: r.Categories, Verbs: r.Verbs}
		if res.Singular == "" {
			res.Singular = strings.ToLower(r.Kind)
		}
		byName[r.Name] = res
		out = append(out, res)
	}
	for _, r := range list {
		parent, sub, ok := strings.Cut(r.Name, "/")
		if !ok || byName[parent] == nil {
			continue
		}
		kind := gv.WithKind(r.Kind)
		if r.Group != "" || r.Version != "" {
			kind = schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		}
		byName[parent].Subresources = append(byName[parent].Subresources, registry.Subresource{Name: sub, Kind: kind, Verbs: r.Verbs})
	}
	return out
}
