package apiserver

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"

	"github.com/havre/havre/internal/registry/catalog"
)

func TestWantsAggregated(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json":                                                                           true,
		"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json": true,
		"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json":                                                                      false,
		"application/json": false,
		"":                 false,
	} {
		r := httptest.NewRequest("GET", "/apis", nil)
		r.Header.Set("Accept", accept)
		if got := wantsAggregated(r); got != want {
			t.Errorf("%q: got %v, want %v", accept, got, want)
		}
	}
}

func TestAggregatedDocuments(t *testing.T) {
	a, err := newAggregated(catalog.Resources())
	if err != nil {
		t.Fatal(err)
	}
	var legacy, groups apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(a.legacy, &legacy); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a.groups, &groups); err != nil {
		t.Fatal(err)
	}
	if legacy.Kind != "APIGroupDiscoveryList" || len(legacy.Items) != 1 || legacy.Items[0].Name != "" {
		t.Fatalf("legacy document: %+v", legacy.TypeMeta)
	}
	found := map[string]apidiscoveryv2.APIResourceDiscovery{}
	for _, g := range groups.Items {
		for _, v := range g.Versions {
			if v.Freshness != apidiscoveryv2.DiscoveryFreshnessCurrent {
				t.Errorf("%s/%s not Current", g.Name, v.Version)
			}
			for _, r := range v.Resources {
				found[g.Name+"/"+v.Version+"/"+r.Resource] = r
			}
		}
	}
	d, ok := found["apps/v1/deployments"]
	if !ok || d.Scope != apidiscoveryv2.ScopeNamespace || d.ResponseKind.Kind != "Deployment" || d.SingularResource != "deployment" {
		t.Fatalf("deployments: %+v", d)
	}
	var scale bool
	for _, s := range d.Subresources {
		if s.Subresource == "scale" && s.ResponseKind.Group == "autoscaling" && s.ResponseKind.Kind == "Scale" {
			scale = true
		}
	}
	if !scale {
		t.Errorf("deployments/scale missing: %+v", d.Subresources)
	}
	if pc, ok := found["scheduling.k8s.io/v1/priorityclasses"]; !ok || pc.Scope != apidiscoveryv2.ScopeCluster {
		t.Errorf("priorityclasses: %+v", pc)
	}
}
