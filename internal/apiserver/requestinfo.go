package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what a request path and method say about the request.
type requestInfo struct {
	// resourceRequest is false for /version, /api, discovery and health paths.
	resourceRequest bool
	verb            string
	apiPrefix       string // "api" or "apis"
	group, version  string
	namespace       string
	resource        string
	name            string
	subresource     string
	// parts past the subresource (for proxy paths).
	rest []string
}

// parseRequestInfo reads a Kubernetes API path the way kube-apiserver does:
//
//	/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
//	/apis/{group}/{version}/{resource}/{name}/{subresource}
//	/api/v1/namespaces/{name}[/status|/finalize]
//
// with the legacy /watch/ segment after the version.
func parseRequestInfo(r *http.Request) requestInfo {
	info := requestInfo{verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)
	if len(parts) < 2 || (parts[0] != "api" && parts[0] != "apis") {
		return info
	}
	info.apiPrefix = parts[0]
	parts = parts[1:]
	if info.apiPrefix == "apis" {
		if len(parts) < 2 {
			info.group = parts[0]
			return info
		}
		info.group = parts[0]
		parts = parts[1:]
	}
	info.version = parts[0]
	parts = parts[1:]
	if len(parts) == 0 {
		return info
	}
	info.resourceRequest = true

	watchSegment := false
	if parts[0] == "watch" {
		watchSegment = true
		parts = parts[1:]
		if len(parts) == 0 {
			info.resourceRequest = false
			return info
		}
	}
	if parts[0] == "namespaces" && len(parts) > 1 {
		info.namespace = parts[1]
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	info.resource = parts[0]
	if len(parts) > 1 {
		info.name = parts[1]
	}
	if len(parts) > 2 {
		info.subresource = parts[2]
	}
	if len(parts) > 3 {
		info.rest = parts[3:]
	}
	// A namespace object is addressed by name, not as its own namespace.
	if info.resource == "namespaces" {
		info.namespace = ""
	}

	switch r.Method {
	case http.MethodGet, http.MethodHead:
		info.verb = "get"
		if info.name == "" {
			info.verb = "list"
		}
		if watchSegment || isTrue(r.URL.Query().Get("watch")) {
			info.verb = "watch"
		}
	case http.MethodPost:
		info.verb = "create"
	case http.MethodPut:
		info.verb = "update"
	case http.MethodPatch:
		info.verb = "patch"
	case http.MethodDelete:
		info.verb = "delete"
		if info.name == "" {
			info.verb = "deletecollection"
		}
	}
	return info
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func isTrue(s string) bool {
	return s == "true" || s == "1"
}
