// Package openapi serves the OpenAPI documents kube-apiserver serves, built
// from the Go types of k8s.io/api and k8s.io/apimachinery and from the
// catalog of served resources:
//
//	GET /openapi/v2                 the swagger 2.0 document of everything,
//	                                as JSON or as gnostic protobuf
//	GET /openapi/v3                 the index of OpenAPI 3.0 documents, one
//	                                per served group/version (with hashes)
//	GET /openapi/v3/api/v1,
//	    /openapi/v3/apis/<g>/<v>    one group/version's OpenAPI 3.0 document
//
// The schemas come from zz_generated.openapi.go, which kube-openapi's
// openapi-gen writes from the API packages' sources (struct tags and
// markers give x-kubernetes-patch-strategy, -list-type, -map-type, ...);
// the paths, operations and parameters mirror kube-apiserver's REST
// installer for each resource, verb and subresource of the catalog.
//
// /openapi/v3 lists the documents of custom resources
// (SetCustomResourceDefinitions) and of the group versions APIServices
// delegate to other servers (SetAggregatedV3, the backends' own documents
// the aggregator fetches) too; the v2 document has the custom resources
// but not the aggregated group versions.
//
// Documents are built on first request and their bytes cached, so the
// server starts as fast and idles as small as without them.
package openapi

//go:generate bash ../../hack/update-openapi.sh
