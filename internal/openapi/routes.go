package openapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/kube-openapi/pkg/common"

	"github.com/havre/havre/internal/registry"
)

// The routes below describe Havre's REST API the way kube-apiserver's
// endpoint installer (k8s.io/apiserver/pkg/endpoints/installer.go) describes
// its own to kube-openapi's builders: same paths, operation IDs, actions,
// parameters (taken from the options types), content types and responses.
// kube-openapi's builder (v2) and builder3 (v3) turn them, with the
// generated definitions, into documents.

// Extensions on operations.
const (
	extensionGVK    = "x-kubernetes-group-version-kind"
	extensionAction = "x-kubernetes-action"
)

// Content types.
var (
	mediaTypes          = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	mediaTypesWatch     = append(append([]string{}, mediaTypes...), "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
	mediaTypesLog       = append([]string{"text/plain"}, mediaTypes...)
	mediaTypesAny       = []string{"*/*"}
	mediaTypesJSON      = []string{"application/json"}
	mediaTypesPatch     = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	connectMethods      = []string{"GET", "POST"}
	proxyMethods        = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
	connectSubresources = map[string]bool{registry.Exec: true, registry.Attach: true, registry.PortForward: true, registry.Proxy: true}
	stringResponse      = ""
	prettyParameter     = queryParam("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).", "string")
	namespaceParam      = pathParam("namespace", "object name and auth scope, such as for teams and projects")
)

// parameter implements common.Parameter.
type parameter struct {
	name, description, dataType string
	kind                        common.ParameterKind
	required                    bool
}

func (p *parameter) Name() string               { return p.name }
func (p *parameter) Description() string        { return p.description }
func (p *parameter) Required() bool             { return p.required }
func (p *parameter) Kind() common.ParameterKind { return p.kind }
func (p *parameter) DataType() string           { return p.dataType }
func (p *parameter) AllowMultiple() bool        { return false }

func queryParam(name, description, dataType string) common.Parameter {
	return &parameter{name: name, description: description, dataType: dataType, kind: common.QueryParameterKind}
}

func pathParam(name, description string) common.Parameter {
	return &parameter{name: name, description: description, dataType: "string", kind: common.PathParameterKind, required: true}
}

func bodyParam(required bool) common.Parameter {
	return &parameter{name: "body", kind: common.BodyParameterKind, required: required}
}

// response implements common.StatusCodeResponse.
type response struct {
	code    int
	message string
	model   any
}

func (r response) Code() int       { return r.code }
func (r response) Message() string { return r.message }
func (r response) Model() any      { return r.model }

func responses(model any, codes ...int) []common.StatusCodeResponse {
	out := make([]common.StatusCodeResponse, len(codes))
	for i, c := range codes {
		out[i] = response{code: c, message: http.StatusText(c), model: model}
	}
	return out
}

// route implements common.Route.
type route struct {
	method, path string
	operationID  string
	tag          string
	description  string
	params       []common.Parameter
	consumes     []string
	produces     []string
	metadata     map[string]any
	body         any
	responses    []common.StatusCodeResponse
}

func (r *route) Method() string                                   { return r.method }
func (r *route) Path() string                                     { return r.path }
func (r *route) OperationName() string                            { return r.operationID }
func (r *route) Parameters() []common.Parameter                   { return r.params }
func (r *route) Description() string                              { return r.description }
func (r *route) Consumes() []string                               { return r.consumes }
func (r *route) Produces() []string                               { return r.produces }
func (r *route) Metadata() map[string]any                         { return r.metadata }
func (r *route) RequestPayloadSample() any                        { return r.body }
func (r *route) ResponsePayloadSample() any                       { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse { return r.responses }

// operationIDAndTags is the builders' GetOperationIDAndTagsFromRoute.
func operationIDAndTags(r common.Route) (string, []string, error) {
	rt, ok := r.(*route)
	if !ok {
		return "", nil, fmt.Errorf("unexpected route type %T", r)
	}
	return rt.operationID, []string{rt.tag}, nil
}

// container implements common.RouteContainer: the routes of one document
// part (a group/version, or a discovery path).
type container struct {
	root   string
	routes []common.Route
}

func (c *container) RootPath() string                   { return c.root }
func (c *container) PathParameters() []common.Parameter { return nil }
func (c *container) Routes() []common.Route             { return c.routes }

// camel makes an operation ID fragment of s the way kube-apiserver does:
// letters only, a capital after every dropped character, the first letter
// capitalised when upper is true.
func camel(s string, upper bool) string {
	var b strings.Builder
	capitalise := upper
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalise {
				r = unicode.ToUpper(r)
				capitalise = false
			}
			b.WriteRune(r)
		} else {
			capitalise = true
		}
	}
	return b.String()
}

// groupName is a group's name in operation IDs and tags: "core" for the
// legacy group, without the .k8s.io suffix otherwise.
func groupName(group string) string {
	if group == "" {
		return "core"
	}
	return strings.TrimSuffix(group, ".k8s.io")
}

// gvPrefix is the path of a group/version, "/api/v1" or "/apis/<g>/<v>".
func gvPrefix(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// gvkExtension is the value of x-kubernetes-group-version-kind.
func gvkExtension(gvk schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// newObject returns a zero object of a kind, for its definition name.
func newObject(gvk schema.GroupVersionKind) (runtime.Object, error) {
	obj, err := servedScheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("openapi: no Go type for %v: %w", gvk, err)
	}
	return obj, nil
}

// documented is implemented by the API types with generated field docs.
type documented interface{ SwaggerDoc() map[string]string }

// optionParams returns the query parameters of an options type (ListOptions,
// DeleteOptions, PodLogOptions, ...): its scalar fields, by JSON name, with
// their documentation, as kube-apiserver's AddObjectParams does. Struct
// fields (TypeMeta, preconditions, times) are not query parameters.
func optionParams(obj any, exclude ...string) []common.Parameter {
	var docs map[string]string
	if d, ok := obj.(documented); ok {
		docs = d.SwaggerDoc()
	}
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var params []common.Parameter
fields:
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || f.Anonymous {
			continue
		}
		for _, e := range exclude {
			if name == e {
				continue fields
			}
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		var dataType string
		switch ft.Kind() {
		case reflect.String:
			dataType = "string"
		case reflect.Bool:
			dataType = "boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			dataType = "integer"
		case reflect.Float32, reflect.Float64:
			dataType = "number"
		default:
			continue
		}
		params = append(params, queryParam(name, docs[name], dataType))
	}
	return params
}

// optionSets are the query parameters of the standard verbs.
type optionSets struct {
	list, deleteCollection, delete, create, update, patch []common.Parameter
}

// standardOptions computes the option sets on first use, not at start-up.
var standardOptions = sync.OnceValue(func() optionSets {
	return optionSets{
		list:             optionParams(&metav1.ListOptions{}),
		deleteCollection: append(optionParams(&metav1.ListOptions{}, "watch", "allowWatchBookmarks"), optionParams(&metav1.DeleteOptions{})...),
		delete:           optionParams(&metav1.DeleteOptions{}),
		create:           optionParams(&metav1.CreateOptions{}),
		update:           optionParams(&metav1.UpdateOptions{}),
		patch:            optionParams(&metav1.PatchOptions{}),
	}
})

// connectOptions returns the options type of a connect subresource's kind.
func connectOptions(kind string) any {
	switch kind {
	case "PodExecOptions":
		return &corev1.PodExecOptions{}
	case "PodAttachOptions":
		return &corev1.PodAttachOptions{}
	case "PodPortForwardOptions":
		return &corev1.PodPortForwardOptions{}
	case "PodProxyOptions":
		return &corev1.PodProxyOptions{}
	case "NodeProxyOptions":
		return &corev1.NodeProxyOptions{}
	case "ServiceProxyOptions":
		return &corev1.ServiceProxyOptions{}
	}
	return nil
}

// with returns params, then more, then pretty, in a new slice.
func with(params []common.Parameter, more ...common.Parameter) []common.Parameter {
	return append(append(append([]common.Parameter{}, params...), more...), prettyParameter)
}

// resourceRoutes returns the routes of one resource and its subresources.
func resourceRoutes(res *registry.Resource) ([]common.Route, error) {
	opts := standardOptions()
	gv := res.GroupVersion()
	gvk := res.GroupVersionKind()
	obj, err := newObject(gvk)
	if err != nil {
		return nil, err
	}
	// Resources that are only created (reviews) have no list kind.
	var list runtime.Object
	if res.HasVerb("list") {
		if list, err = newObject(res.ListGroupVersionKind()); err != nil {
			return nil, err
		}
	}
	group := groupName(gv.Group)
	tag := camel(group, false) + "_" + camel(gv.Version, false)
	idGV := camel(group, true) + camel(gv.Version, true)
	kind := res.Kind
	prefix := gvPrefix(gv)

	namespaced := ""
	var scopeParams []common.Parameter
	collection := prefix + "/" + res.Resource
	watchCollection := prefix + "/watch/" + res.Resource
	if res.Namespaced {
		namespaced = "Namespaced"
		scopeParams = []common.Parameter{namespaceParam}
		collection = prefix + "/namespaces/{namespace}/" + res.Resource
		watchCollection = prefix + "/watch/namespaces/{namespace}/" + res.Resource
	}
	item := collection + "/{name}"
	itemParams := append([]common.Parameter{pathParam("name", "name of the "+kind)}, scopeParams...)

	var routes []common.Route
	add := func(method, path, verb, suffix, action, desc string, gvk schema.GroupVersionKind, params []common.Parameter) *route {
		r := &route{
			method: method, path: path, tag: tag, description: desc, params: params,
			operationID: verb + idGV + suffix,
			produces:    mediaTypes,
			metadata:    map[string]any{extensionAction: action, extensionGVK: gvkExtension(gvk)},
		}
		routes = append(routes, r)
		return r
	}
	deleted := any(&metav1.Status{})
	if res.Resource == "pods" && gv.Group == "" {
		// Pods are deleted gracefully: DELETE answers with the pod.
		deleted = obj
	}

	for _, verb := range res.Verbs {
		switch verb {
		case "list":
			r := add("GET", collection, "list", namespaced+kind, "list", "list or watch objects of kind "+kind, gvk, with(opts.list, scopeParams...))
			r.produces, r.responses = mediaTypesWatch, responses(list, 200)
			if res.Namespaced {
				r := add("GET", prefix+"/"+res.Resource, "list", kind+"ForAllNamespaces", "list", "list or watch objects of kind "+kind, gvk, with(opts.list))
				r.produces, r.responses = mediaTypesWatch, responses(list, 200)
			}
		case "watch":
			r := add("GET", watchCollection, "watch", namespaced+kind+"List", "watchlist",
				"watch individual changes to a list of "+kind+". deprecated: use the 'watch' parameter with a list operation instead.", gvk, with(opts.list, scopeParams...))
			r.produces, r.responses = mediaTypesWatch, responses(&metav1.WatchEvent{}, 200)
			r = add("GET", watchCollection+"/{name}", "watch", namespaced+kind, "watch",
				"watch changes to an object of kind "+kind+". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
				gvk, with(opts.list, itemParams...))
			r.produces, r.responses = mediaTypesWatch, responses(&metav1.WatchEvent{}, 200)
			if res.Namespaced {
				r := add("GET", prefix+"/watch/"+res.Resource, "watch", kind+"ListForAllNamespaces", "watchlist",
					"watch individual changes to a list of "+kind+". deprecated: use the 'watch' parameter with a list operation instead.", gvk, with(opts.list))
				r.produces, r.responses = mediaTypesWatch, responses(&metav1.WatchEvent{}, 200)
			}
		case "create":
			r := add("POST", collection, "create", namespaced+kind, "post", "create "+article(kind)+" "+kind, gvk, with(opts.create, append(scopeParams, bodyParam(true))...))
			r.consumes, r.body, r.responses = mediaTypesAny, obj, responses(obj, 200, 201, 202)
		case "deletecollection":
			r := add("DELETE", collection, "delete", "Collection"+namespaced+kind, "deletecollection", "delete collection of "+kind, gvk, with(opts.deleteCollection, append(scopeParams, bodyParam(false))...))
			r.consumes, r.body, r.responses = mediaTypesAny, &metav1.DeleteOptions{}, responses(&metav1.Status{}, 200)
		case "get":
			r := add("GET", item, "read", namespaced+kind, "get", "read the specified "+kind, gvk, with(nil, itemParams...))
			r.responses = responses(obj, 200)
		case "update":
			r := add("PUT", item, "replace", namespaced+kind, "put", "replace the specified "+kind, gvk, with(opts.update, append(itemParams, bodyParam(true))...))
			r.consumes, r.body, r.responses = mediaTypesAny, obj, responses(obj, 200, 201)
		case "patch":
			r := add("PATCH", item, "patch", namespaced+kind, "patch", "partially update the specified "+kind, gvk, with(opts.patch, append(itemParams, bodyParam(true))...))
			r.consumes, r.body, r.responses = mediaTypesPatch, &metav1.Patch{}, responses(obj, 200, 201)
		case "delete":
			r := add("DELETE", item, "delete", namespaced+kind, "delete", "delete "+article(kind)+" "+kind, gvk, with(opts.delete, append(itemParams, bodyParam(false))...))
			r.consumes, r.body, r.responses = mediaTypesAny, &metav1.DeleteOptions{}, responses(deleted, 200, 202)
		}
	}

	for _, sub := range res.Subresources {
		subObj, err := newObject(sub.Kind)
		if err != nil {
			return nil, err
		}
		path := item + "/" + sub.Name
		suffix := namespaced + kind + camel(sub.Name, true)
		params := append([]common.Parameter{pathParam("name", "name of the "+sub.Kind.Kind)}, scopeParams...)
		switch {
		case connectSubresources[sub.Name]:
			connect := connectOptions(sub.Kind.Kind)
			if connect == nil {
				return nil, fmt.Errorf("openapi: no options type for connect subresource %s/%s (%s)", res.Resource, sub.Name, sub.Kind.Kind)
			}
			methods := connectMethods
			if sub.Name == registry.Proxy {
				methods = proxyMethods
			}
			// Connect routes take no pretty parameter.
			optParams := optionParams(connect)
			for _, m := range methods {
				method := camel(strings.ToLower(m), true)
				desc := "connect " + m + " requests to " + sub.Name + " of " + kind
				r := add(m, path, "connect", method+suffix, "connect", desc, sub.Kind, append(append([]common.Parameter{}, optParams...), params...))
				r.consumes, r.produces, r.responses = mediaTypesAny, mediaTypesAny, responses(stringResponse, 200)
				if sub.Name == registry.Proxy {
					r := add(m, path+"/{path}", "connect", method+suffix+"WithPath", "connect", desc, sub.Kind,
						append(append([]common.Parameter{}, optParams...), append(params, pathParam("path", "path to the resource"))...))
					r.consumes, r.produces, r.responses = mediaTypesAny, mediaTypesAny, responses(stringResponse, 200)
				}
			}
		case sub.Name == registry.Log:
			r := add("GET", path, "read", suffix, "get", "read log of the specified "+kind, sub.Kind, with(optionParams(&corev1.PodLogOptions{}), params...))
			r.produces, r.responses = mediaTypesLog, responses(stringResponse, 200)
		default:
			for _, verb := range sub.Verbs {
				switch verb {
				case "get":
					r := add("GET", path, "read", suffix, "get", "read "+sub.Name+" of the specified "+kind, sub.Kind, with(nil, params...))
					r.responses = responses(subObj, 200)
				case "update":
					r := add("PUT", path, "replace", suffix, "put", "replace "+sub.Name+" of the specified "+kind, sub.Kind, with(opts.update, append(params, bodyParam(true))...))
					r.consumes, r.body, r.responses = mediaTypesAny, subObj, responses(subObj, 200, 201)
				case "patch":
					r := add("PATCH", path, "patch", suffix, "patch", "partially update "+sub.Name+" of the specified "+kind, sub.Kind, with(opts.patch, append(params, bodyParam(true))...))
					r.consumes, r.body, r.responses = mediaTypesPatch, &metav1.Patch{}, responses(subObj, 200, 201)
				case "create":
					r := add("POST", path, "create", suffix, "post", "create "+sub.Name+" of "+article(kind)+" "+kind, sub.Kind, with(opts.create, append(params, bodyParam(true))...))
					r.consumes, r.body, r.responses = mediaTypesAny, subObj, responses(subObj, 200, 201, 202)
				default:
					return nil, fmt.Errorf("openapi: unsupported verb %q of subresource %s/%s", verb, res.Resource, sub.Name)
				}
			}
		}
	}
	return routes, nil
}

// article is "a" or "an", as kube-apiserver's descriptions ("create an
// Ingress") use.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an"
	}
	return "a"
}

// discoveryRoute is the route of a discovery document (/api/, /apis/,
// /apis/<g>/, /apis/<g>/<v>/, /version/).
func discoveryRoute(path, id, tag, desc string, model any, produces []string) *route {
	return &route{
		method: "GET", path: path, operationID: id, tag: tag, description: desc,
		consumes: produces, produces: produces, responses: responses(model, 200),
	}
}

func groupVersionResourcesRoute(gv schema.GroupVersion) *route {
	group := groupName(gv.Group)
	return discoveryRoute(gvPrefix(gv)+"/", "get"+camel(group, true)+camel(gv.Version, true)+"APIResources",
		camel(group, false)+"_"+camel(gv.Version, false), "get available resources", &metav1.APIResourceList{}, mediaTypes)
}

func groupRoute(group string) *route {
	return discoveryRoute("/apis/"+group+"/", "get"+camel(groupName(group), true)+"APIGroup", camel(groupName(group), false),
		"get information of a group", &metav1.APIGroup{}, mediaTypes)
}

func coreVersionsRoute() *route {
	return discoveryRoute("/api/", "getCoreAPIVersions", "core", "get available API versions", &metav1.APIVersions{}, mediaTypes)
}

func groupsRoute() *route {
	return discoveryRoute("/apis/", "getAPIVersions", "apis", "get available API versions", &metav1.APIGroupList{}, mediaTypes)
}

func versionRoute() *route {
	return discoveryRoute("/version/", "getCodeVersion", "version", "get the code version", &version.Info{}, mediaTypesJSON)
}
