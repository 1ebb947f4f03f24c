// Package crd runs the CustomResourceDefinition controllers of
// kube-apiserver's apiextensions server, from k8s.io/apiextensions-apiserver
// itself: the naming controller (status.acceptedNames and NamesAccepted,
// with upstream's conflict reasons), the establishing controller
// (Established once the names are accepted) and the finalizer that deletes
// every custom resource of a deleted definition before releasing it
// (customresourcecleanup.apiextensions.k8s.io).
package crd

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsinformers "k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions"
	"k8s.io/apiextensions-apiserver/pkg/controller/establish"
	"k8s.io/apiextensions-apiserver/pkg/controller/finalizer"
	"k8s.io/apiextensions-apiserver/pkg/controller/status"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/dynamic"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Controllers are the three CRD controllers on one informer.
type Controllers struct {
	factory      apiextensionsinformers.SharedInformerFactory
	naming       *status.NamingConditionController
	establishing *establish.EstablishingController
	finalizer    *finalizer.CRDFinalizer
}

// New builds the controllers over config; dyn deletes custom resources.
func New(config *restclient.Config, dyn dynamic.Interface) (*Controllers, error) {
	client, err := apiextensionsclient.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	factory := apiextensionsinformers.NewSharedInformerFactory(client, 0)
	inf := factory.Apiextensions().V1().CustomResourceDefinitions()
	c := &Controllers{
		factory:      factory,
		naming:       status.NewNamingConditionController(klog.Background(), inf, client.ApiextensionsV1()),
		establishing: establish.NewEstablishingController(inf, client.ApiextensionsV1()),
		finalizer:    finalizer.NewCRDFinalizer(inf, client.ApiextensionsV1(), dynamicGetter{dyn}),
	}
	// As the apiextensions server's handler does for one server: a CRD
	// whose names are accepted is established at once.
	queue := func(obj any) {
		if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok &&
			isTrue(crd, apiextensionsv1.NamesAccepted) && !isTrue(crd, apiextensionsv1.Established) {
			c.establishing.QueueCRD(crd.Name, 0)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    queue,
		UpdateFunc: func(_, obj any) { queue(obj) },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs the controllers until ctx is done.
func (c *Controllers) Run(ctx context.Context) {
	c.factory.Start(ctx.Done())
	go c.naming.RunWithContext(ctx)
	go c.establishing.RunWithContext(ctx)
	go c.finalizer.RunWithContext(2, ctx)
	<-ctx.Done()
	c.factory.Shutdown()
}

func isTrue(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// dynamicGetter gives the finalizer the custom resources of a definition
// through the API (as the dynamic client sees them).
type dynamicGetter struct{ dyn dynamic.Interface }

func (g dynamicGetter) GetCustomResourceListerCollectionDeleter(crd *apiextensionsv1.CustomResourceDefinition) (finalizer.ListerCollectionDeleter, error) {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: crd.Status.AcceptedNames.Plural}
			return &resourceDeleter{res: g.dyn.Resource(gvr), namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped}, nil
		}
	}
	return nil, fmt.Errorf("no storage version")
}

// resourceDeleter lists and deletes one resource's objects.
type resourceDeleter struct {
	rest.TableConvertor
	res        dynamic.NamespaceableResourceInterface
	namespaced bool
}

func (d *resourceDeleter) NewList() runtime.Object { return &unstructured.UnstructuredList{} }

func (d *resourceDeleter) List(ctx context.Context, _ *metainternalversion.ListOptions) (runtime.Object, error) {
	return d.res.List(ctx, metav1.ListOptions{})
}

func (d *resourceDeleter) DeleteCollection(ctx context.Context, _ rest.ValidateObjectFunc, _ *metav1.DeleteOptions, _ *metainternalversion.ListOptions) (runtime.Object, error) {
	var ri dynamic.ResourceInterface = d.res
	if ns, ok := genericapirequest.NamespaceFrom(ctx); ok && d.namespaced && ns != "" {
		ri = d.res.Namespace(ns)
	}
	return nil, ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
}

// definitions is the resource of CustomResourceDefinitions.
var definitions = apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")

// Served returns the resource (in its storage version) of every
// established definition, namespaced ones only if namespaced is set.
func Served(ctx context.Context, dyn dynamic.Interface, namespacedOnly bool) ([]schema.GroupVersionResource, error) {
	list, err := dyn.Resource(definitions).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []schema.GroupVersionResource
	for _, item := range list.Items {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, crd); err != nil {
			return nil, err
		}
		if !isTrue(crd, apiextensionsv1.Established) || (namespacedOnly && crd.Spec.Scope != apiextensionsv1.NamespaceScoped) {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage {
				out = append(out, schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: crd.Status.AcceptedNames.Plural})
			}
		}
	}
	return out, nil
}

// Resource is the storage version of an established definition's resource.
type Resource struct {
	schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// Watch calls fn with the resources of the established definitions once
// they are listed and after every change of a definition, until ctx is
// done; calls are serialised.
func Watch(ctx context.Context, config *restclient.Config, fn func([]Resource)) error {
	client, err := apiextensionsclient.NewForConfig(config)
	if err != nil {
		return err
	}
	factory := apiextensionsinformers.NewSharedInformerFactory(client, 0)
	inf := factory.Apiextensions().V1().CustomResourceDefinitions()
	lister := inf.Lister()
	var mu sync.Mutex
	var last []Resource
	changed := func(any) {
		mu.Lock()
		defer mu.Unlock()
		crds, err := lister.List(labels.Everything())
		if err != nil {
			return
		}
		var out []Resource
		for _, crd := range crds {
			if !isTrue(crd, apiextensionsv1.Established) {
				continue
			}
			for _, v := range crd.Spec.Versions {
				if v.Storage {
					out = append(out, Resource{
						GroupVersionResource: schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: crd.Status.AcceptedNames.Plural},
						Kind:                 crd.Status.AcceptedNames.Kind, Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
					})
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
		if last != nil && slices.Equal(out, last) {
			return
		}
		last = out
		if last == nil {
			last = []Resource{}
		}
		fn(out)
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, obj any) { changed(obj) }, DeleteFunc: changed,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	return nil
}
