package openapi

import (
	"reflect"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/havre/havre/internal/registry"
)

// servedScheme holds every served Go type: client-go's built-in kinds and
// apiextensions.k8s.io's CustomResourceDefinition.
var servedScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	return s
}()

// definitionNamer names definitions and marks the top-level types with
// x-kubernetes-group-version-kind, as kube-apiserver's DefinitionNamer does:
// every kind a Go type is registered as, restricted to the served group
// versions and subresource kinds. kubectl finds a kind's schema by it.
type definitionNamer struct {
	extensions map[string]spec.Extensions
}

func newDefinitionNamer(resources []*registry.Resource) *definitionNamer {
	servedGVs := map[schema.GroupVersion]bool{}
	subKinds := map[schema.GroupVersionKind]bool{}
	for _, res := range resources {
		servedGVs[res.GroupVersion()] = true
		for _, sub := range res.Subresources {
			subKinds[sub.Kind] = true
		}
	}
	byName := map[string][]schema.GroupVersionKind{}
	for gvk, t := range servedScheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || (!servedGVs[gvk.GroupVersion()] && !subKinds[gvk]) {
			continue
		}
		name := util.GetCanonicalTypeName(reflect.New(t).Interface())
		byName[name] = append(byName[name], gvk)
	}
	n := &definitionNamer{extensions: make(map[string]spec.Extensions, len(byName))}
	for name, list := range byName {
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
		value := make([]any, len(list))
		for i, gvk := range list {
			value[i] = gvkExtension(gvk)
		}
		n.extensions[name] = spec.Extensions{extensionGVK: value}
	}
	return n
}

// name is the builders' GetDefinitionName. The generated definitions are
// keyed by their OpenAPI model names already (io.k8s.api.core.v1.Pod).
func (n *definitionNamer) name(name string) (string, spec.Extensions) {
	return name, n.extensions[name]
}

// apiextensionsPrefix and apiregistrationPrefix are the model-name
// prefixes of apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1.
const (
	apiextensionsPrefix   = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
	apiregistrationPrefix = "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1."
)

// APIExtensionsSchemas returns the OpenAPI v3 schemas of
// apiextensions.k8s.io/v1, apiregistration.k8s.io/v1 and of the
// apimachinery types they use, keyed by model name, with
// x-kubernetes-group-version-kind on the kinds: what a structured-merge-diff
// type converter needs for CustomResourceDefinitions and APIServices, which
// client-go's embedded schema lacks.
func APIExtensionsSchemas() map[string]*spec.Schema {
	defs := GetOpenAPIDefinitions(func(name string) spec.Ref {
		return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(name))
	})
	out := map[string]*spec.Schema{}
	for name, def := range defs {
		if !strings.HasPrefix(name, apiextensionsPrefix) && !strings.HasPrefix(name, apiregistrationPrefix) &&
			!strings.HasPrefix(name, "io.k8s.apimachinery.") {
			continue
		}
		s := def.Schema
		if kind, ok := strings.CutPrefix(name, apiextensionsPrefix); ok && (kind == "CustomResourceDefinition" || kind == "CustomResourceDefinitionList") {
			s.AddExtension(extensionGVK, []any{gvkExtension(apiextensionsv1.SchemeGroupVersion.WithKind(kind))})
		}
		if kind, ok := strings.CutPrefix(name, apiregistrationPrefix); ok && (kind == "APIService" || kind == "APIServiceList") {
			s.AddExtension(extensionGVK, []any{gvkExtension(apiregistrationv1.SchemeGroupVersion.WithKind(kind))})
		}
		out[name] = &s
	}
	return out
}
