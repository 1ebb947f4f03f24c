package apiserver

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/registry"
)

// aggregatedMediaType is what clients accept for aggregated discovery,
// which answers /api and /apis with every resource of every group at once
// (two requests instead of one per group version).
const aggregatedMediaType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// aggregated holds the pre-encoded aggregated discovery documents.
type aggregated struct {
	legacy, groups []byte
}

func newAggregated(resources []*registry.Resource) (*aggregated, error) {
	var legacy, named apidiscoveryv2.APIGroupDiscoveryList
	index := map[string]int{}
	for _, res := range resources {
		list := &named
		if res.Group == "" {
			list = &legacy
		}
		gi, ok := index[res.Group]
		if !ok {
			gi = len(list.Items)
			index[res.Group] = gi
			list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: res.Group}})
		}
		group := &list.Items[gi]
		vi := -1
		for i, v := range group.Versions {
			if v.Version == res.Version {
				vi = i
			}
		}
		if vi < 0 {
			vi = len(group.Versions)
			group.Versions = append(group.Versions, apidiscoveryv2.APIVersionDiscovery{Version: res.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent})
		}
		scope := apidiscoveryv2.ScopeCluster
		if res.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		gvk := res.GroupVersionKind()
		d := apidiscoveryv2.APIResourceDiscovery{
			Resource: res.Resource, SingularResource: res.Singular, Scope: scope, Verbs: res.Verbs,
			ShortNames: res.ShortNames, Categories: res.Categories,
			ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		}
		for _, sub := range res.Subresources {
			d.Subresources = append(d.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource:  sub.Name,
				ResponseKind: &metav1.GroupVersionKind{Group: sub.Kind.Group, Version: sub.Kind.Version, Kind: sub.Kind.Kind},
				Verbs:        sub.Verbs,
			})
		}
		group.Versions[vi].Resources = append(group.Versions[vi].Resources, d)
	}
	a := &aggregated{}
	var err error
	for _, l := range []struct {
		list *apidiscoveryv2.APIGroupDiscoveryList
		out  *[]byte
	}{{&legacy, &a.legacy}, {&named, &a.groups}} {
		l.list.APIVersion, l.list.Kind = "apidiscovery.k8s.io/v2", "APIGroupDiscoveryList"
		if *l.out, err = json.Marshal(l.list); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// wantsAggregated reports whether the Accept header prefers aggregated
// discovery v2 over the legacy documents.
func wantsAggregated(r *http.Request) bool {
	for _, clause := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		if mt == mediaJSON && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return true
		}
		if mt == mediaJSON && params["as"] == "" {
			return false // plain JSON comes first: the legacy form
		}
	}
	return false
}

func (a *aggregated) serve(w http.ResponseWriter, legacy bool) {
	body := a.groups
	if legacy {
		body = a.legacy
	}
	w.Header().Set("Content-Type", aggregatedMediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Vary", "Accept")
	_, _ = w.Write(body)
}
