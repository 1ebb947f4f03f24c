package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/conversion"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/storage"
)

// crConversion converts custom resources between the versions of the
// definitions whose conversion strategy is Webhook: it holds upstream's
// converter factory (k8s.io/apiextensions-apiserver's conversion package,
// which sends ConversionReviews through k8s.io/apiserver's webhook client
// manager) and the resolver of webhook Services to their endpoints.
type crConversion struct {
	once     sync.Once
	factory  *conversion.CRConverterFactory
	err      error
	resolver serviceResolver
}

// converterFor returns the converter of a definition with conversion
// strategy Webhook, or nil for None.
func (c *crConversion) converterFor(crd *apiextensionsv1.CustomResourceDefinition) (runtime.ObjectConvertor, error) {
	if crd.Spec.Conversion == nil || crd.Spec.Conversion.Strategy != apiextensionsv1.WebhookConverter {
		return nil, nil
	}
	c.once.Do(func() {
		c.factory, c.err = conversion.NewCRConverterFactory(&c.resolver, nil)
	})
	if c.err != nil {
		return nil, c.err
	}
	safe, _, err := c.factory.NewConverter(crd)
	return safe, err
}

// serviceResolver resolves a webhook's Service to one of its ready
// endpoints, as kube-apiserver does for conversion webhooks
// (proxy.ResolveEndpoint over EndpointSlices), from informers the server
// starts on itself once it answers requests.
type serviceResolver struct {
	listers atomic.Pointer[serviceListers]
}

type serviceListers struct {
	services corelisters.ServiceLister
	slices   proxy.EndpointSliceGetter
}

func (r *serviceResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	l := r.listers.Load()
	if l == nil {
		return nil, errors.New("the service resolver has not started")
	}
	return proxy.ResolveEndpoint(l.services, l.slices, namespace, name, port)
}

// start is a post-start hook: it starts the informers of Services and
// EndpointSlices over the loopback config and waits for them to sync.
func (r *serviceResolver) start(ctx context.Context, loopback *rest.Config) error {
	cs, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	slices, err := proxy.NewEndpointSliceIndexerGetter(factory.Discovery().V1().EndpointSlices())
	if err != nil {
		return err
	}
	l := &serviceListers{services: factory.Core().V1().Services().Lister(), slices: slices}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("service resolver: %v informer did not sync: %w", typ, ctx.Err())
		}
	}
	r.listers.Store(l)
	return nil
}

// convertTo returns u in version gv: with conversion strategy None only its
// apiVersion changes; with Webhook the definition's webhook converts it (u
// itself is left alone). A failing webhook is an internal error, as
// upstream's ("conversion webhook for <kind> failed: ...").
func (cr *customResource) convertTo(u *unstructured.Unstructured, gv schema.GroupVersion) (*unstructured.Unstructured, error) {
	if u.GetAPIVersion() == gv.String() {
		return u, nil
	}
	if cr.convErr != nil {
		return nil, apierrors.NewInternalError(cr.convErr)
	}
	if cr.converter == nil {
		u.SetAPIVersion(gv.String())
		return u, nil
	}
	out, err := cr.converter.ConvertToVersion(u, gv)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	converted, ok := out.(*unstructured.Unstructured)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("conversion returned %T", out))
	}
	return converted, nil
}

// convertsOnWrite reports whether objects written in the handler's version
// change on their way to the store (so that the response is read back).
func (cr *customResource) convertsOnWrite() bool {
	return cr.converter != nil && cr.gvk.GroupVersion() != cr.storage
}

// decodeCustomResources decodes stored custom resources in the handler's
// version with one ConversionReview for all of those stored in another
// version, as upstream converts a list (the webhook is sent only the
// objects that need converting).
func (o *objects) decodeCustomResources(kvs []storage.KeyValue) ([]runtime.Object, error) {
	cr := o.custom
	target := cr.gvk.GroupVersion()
	list := &unstructured.UnstructuredList{Items: make([]unstructured.Unstructured, len(kvs))}
	list.SetGroupVersionKind(cr.storage.WithKind(cr.crd.Status.AcceptedNames.ListKind))
	convert := false
	for i, kv := range kvs {
		u := &list.Items[i]
		if err := u.UnmarshalJSON(kv.Value); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		if u.GetAPIVersion() == "" {
			u.SetAPIVersion(cr.storage.String())
		}
		convert = convert || u.GetAPIVersion() != target.String()
	}
	if convert {
		if cr.convErr != nil {
			return nil, apierrors.NewInternalError(cr.convErr)
		}
		out, err := cr.converter.ConvertToVersion(list, target)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		converted, ok := out.(*unstructured.UnstructuredList)
		if !ok || len(converted.Items) != len(kvs) {
			return nil, apierrors.NewInternalError(fmt.Errorf("conversion returned %T", out))
		}
		list = converted
	}
	objs := make([]runtime.Object, len(kvs))
	for i := range list.Items {
		u := &list.Items[i]
		if err := setResourceVersion(u, kvs[i].ModRevision); err != nil {
			return nil, err
		}
		objs[i] = u
	}
	return objs, nil
}
