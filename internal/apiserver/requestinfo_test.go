package apiserver

import (
	"net/http/httptest"
	"testing"
)

func TestParseRequestInfo(t *testing.T) {
	tests := []struct {
		method, path string
		want         requestInfo
	}{
		{"GET", "/api", requestInfo{verb: "get"}},
		{"GET", "/api/v1", requestInfo{verb: "get", apiPrefix: "api", version: "v1"}},
		{"GET", "/apis/apps", requestInfo{verb: "get", apiPrefix: "apis", group: "apps"}},
		{"GET", "/api/v1/pods", requestInfo{resourceRequest: true, verb: "list", apiPrefix: "api", version: "v1", resource: "pods"}},
		{"GET", "/api/v1/namespaces/ns1/pods/p1", requestInfo{resourceRequest: true, verb: "get", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "pods", name: "p1"}},
		{"GET", "/api/v1/namespaces/ns1/pods?watch=true", requestInfo{resourceRequest: true, verb: "watch", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "pods"}},
		{"GET", "/api/v1/watch/namespaces/ns1/pods", requestInfo{resourceRequest: true, verb: "watch", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "pods"}},
		{"POST", "/api/v1/namespaces/ns1/pods/p1/binding", requestInfo{resourceRequest: true, verb: "create", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "pods", name: "p1", subresource: "binding"}},
		{"PUT", "/apis/apps/v1/namespaces/ns1/deployments/d/scale", requestInfo{resourceRequest: true, verb: "update", apiPrefix: "apis", group: "apps", version: "v1", namespace: "ns1", resource: "deployments", name: "d", subresource: "scale"}},
		{"PATCH", "/apis/apps/v1/namespaces/ns1/deployments/d/status", requestInfo{resourceRequest: true, verb: "patch", apiPrefix: "apis", group: "apps", version: "v1", namespace: "ns1", resource: "deployments", name: "d", subresource: "status"}},
		{"DELETE", "/api/v1/namespaces/ns1/configmaps", requestInfo{resourceRequest: true, verb: "deletecollection", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "configmaps"}},
		{"DELETE", "/api/v1/namespaces/ns1/configmaps/c", requestInfo{resourceRequest: true, verb: "delete", apiPrefix: "api", version: "v1", namespace: "ns1", resource: "configmaps", name: "c"}},
		// A namespace is addressed by name; status and finalize are its subresources.
		{"GET", "/api/v1/namespaces/ns1", requestInfo{resourceRequest: true, verb: "get", apiPrefix: "api", version: "v1", resource: "namespaces", name: "ns1"}},
		{"PUT", "/api/v1/namespaces/ns1/finalize", requestInfo{resourceRequest: true, verb: "update", apiPrefix: "api", version: "v1", resource: "namespaces", name: "ns1", subresource: "finalize"}},
		{"GET", "/api/v1/namespaces/ns1/status", requestInfo{resourceRequest: true, verb: "get", apiPrefix: "api", version: "v1", resource: "namespaces", name: "ns1", subresource: "status"}},
		{"GET", "/api/v1/namespaces", requestInfo{resourceRequest: true, verb: "list", apiPrefix: "api", version: "v1", resource: "namespaces"}},
		{"GET", "/api/v1/nodes/n1/proxy/metrics", requestInfo{resourceRequest: true, verb: "get", apiPrefix: "api", version: "v1", resource: "nodes", name: "n1", subresource: "proxy", rest: []string{"metrics"}}},
		{"GET", "/version", requestInfo{verb: "get"}},
		{"GET", "/healthz", requestInfo{verb: "get"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			got := parseRequestInfo(httptest.NewRequest(tt.method, tt.path, nil))
			if got.verb != tt.want.verb || got.resourceRequest != tt.want.resourceRequest || got.apiPrefix != tt.want.apiPrefix ||
				got.group != tt.want.group || got.version != tt.want.version || got.namespace != tt.want.namespace ||
				got.resource != tt.want.resource || got.name != tt.want.name || got.subresource != tt.want.subresource ||
				len(got.rest) != len(tt.want.rest) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
