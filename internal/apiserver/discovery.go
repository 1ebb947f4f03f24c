package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/havre/havre/internal/registry"
)

// discovery holds the precomputed discovery documents: of the built-in
// resources, and of the custom resources served now (setCustom).
type discovery struct {
	versions version.Info
	static   []*registry.Resource

	mu    sync.RWMutex
	state *discoveryState
	// custom and aggregated are the resources of custom resources and of
	// the group versions of non-local APIServices served now.
	custom, aggregated []*registry.Resource
}

// discoveryState is one generation of the documents; it is never modified.
type discoveryState struct {
	groups    []metav1.APIGroup
	resources map[schema.GroupVersion]*metav1.APIResourceList
	aggregate *aggregated
}

func newDiscovery(resources []*registry.Resource, v version.Info) *discovery {
	return &discovery{versions: v, static: resources, state: buildDiscovery(resources)}
}

// setCustom replaces the custom resources in the documents.
func (d *discovery) setCustom(custom []*registry.Resource) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.custom = custom
	d.state = buildDiscovery(slices.Concat(d.static, d.custom, d.aggregated))
}

// setAggregated replaces the aggregated group versions' resources in the
// documents.
func (d *discovery) setAggregated(aggregated []*registry.Resource) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aggregated = aggregated
	d.state = buildDiscovery(slices.Concat(d.static, d.custom, d.aggregated))
}

func (d *discovery) current() *discoveryState {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.state
}

func buildDiscovery(resources []*registry.Resource) *discoveryState {
	d := &discoveryState{resources: map[schema.GroupVersion]*metav1.APIResourceList{}}
	groupIndex := map[string]int{}
	for _, res := range resources {
		gv := res.GroupVersion()
		list := d.resources[gv]
		if list == nil {
			list = &metav1.APIResourceList{GroupVersion: gv.String()}
			d.resources[gv] = list
			if gv.Group != "" {
				if _, ok := groupIndex[gv.Group]; !ok {
					groupIndex[gv.Group] = len(d.groups)
					d.groups = append(d.groups, metav1.APIGroup{Name: gv.Group})
				}
				g := &d.groups[groupIndex[gv.Group]]
				gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
				g.Versions = append(g.Versions, gvd)
				g.PreferredVersion = g.Versions[0]
			}
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.Resource, SingularName: res.Singular, Namespaced: res.Namespaced,
			Kind: res.Kind, Verbs: res.Verbs, ShortNames: res.ShortNames, Categories: res.Categories,
		})
		for _, sub := range res.Subresources {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Resource + "/" + sub.Name, Namespaced: res.Namespaced,
				Group: sub.Kind.Group, Version: sub.Kind.Version, Kind: sub.Kind.Kind, Verbs: sub.Verbs,
			})
		}
	}
	var err error
	if d.aggregate, err = newAggregated(resources); err != nil {
		panic(fmt.Sprintf("encoding aggregated discovery: %v", err)) // static data: a bug
	}
	for _, list := range d.resources {
		sort.SliceStable(list.APIResources, func(i, j int) bool { return list.APIResources[i].Name < list.APIResources[j].Name })
	}
	return d
}

func serverAddresses(r *http.Request) []metav1.ServerAddressByClientCIDR {
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "443")
	}
	return []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: host}}
}

// serve answers /version, /api, /apis and their group and version paths.
// It reports whether the path was a discovery path.
func (dd *discovery) serve(w http.ResponseWriter, r *http.Request) bool {
	parts := splitPath(r.URL.Path)
	d := dd.current()
	switch {
	case r.URL.Path == "/version" || r.URL.Path == "/version/":
		writeJSON(w, dd.versions)
	case len(parts) == 1 && (parts[0] == "api" || parts[0] == "apis") && wantsAggregated(r):
		d.aggregate.serve(w, parts[0] == "api")
	case len(parts) == 1 && parts[0] == "api":
		writeObject(w, r, http.StatusOK, &metav1.APIVersions{Versions: []string{"v1"}, ServerAddressByClientCIDRs: serverAddresses(r)})
	case len(parts) == 1 && parts[0] == "apis":
		writeObject(w, r, http.StatusOK, &metav1.APIGroupList{Groups: d.groups})
	case len(parts) == 2 && parts[0] == "api":
		d.serveResources(w, r, schema.GroupVersion{Version: parts[1]})
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range d.groups {
			if g.Name == parts[1] {
				writeObject(w, r, http.StatusOK, &g)
				return true
			}
		}
		writeError(w, errNotFoundPath())
	case len(parts) == 3 && parts[0] == "apis":
		d.serveResources(w, r, schema.GroupVersion{Group: parts[1], Version: parts[2]})
	default:
		return false
	}
	return true
}

func (d *discoveryState) serveResources(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	list, ok := d.resources[gv]
	if !ok {
		writeError(w, errNotFoundPath())
		return
	}
	// Encoding sets the list's TypeMeta: each request encodes its own copy.
	writeObject(w, r, http.StatusOK, list.DeepCopy())
}

// SetAggregated puts the resources of the group versions that APIServices
// delegate to other servers in /apis and aggregated discovery (their
// /apis/<group>/<version> documents are the backends' own, proxied).
func (s *Server) SetAggregated(resources []*registry.Resource) {
	s.discovery.setAggregated(resources)
}

// SetAggregatedV3 puts the OpenAPI v3 documents the backends of
// APIServices serve for their group versions, by name
// ("apis/<group>/<version>"), in /openapi/v3.
func (s *Server) SetAggregatedV3(docs map[string][]byte) {
	s.openapi.SetAggregatedV3(docs)
}
