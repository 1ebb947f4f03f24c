package certificates

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// GatewayResource is Gateway API's Gateway, served once its
// CustomResourceDefinition is installed.
var GatewayResource = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}

// gatewayPrefix marks a Gateway's key in the queue.
const gatewayPrefix = "Gateway:"

// AddGatewayInformer makes the controller keep the certificates of the
// HTTPS listeners of Gateways of class havre (GatewayClassName): a
// listener with a hostname, TLS mode Terminate and a first certificateRef
// naming a Secret of the Gateway's namespace gets that Secret issued for
// its hostname, as an Ingress tls entry does. inf is an informer of
// GatewayResource (unstructured); it is started by the caller.
func (c *Controller) AddGatewayInformer(inf cache.SharedIndexInformer) error {
	c.mu.Lock()
	c.gateways = inf
	c.mu.Unlock()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueGateway,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*unstructured.Unstructured), cur.(*unstructured.Unstructured)
			if o.GetGeneration() != n.GetGeneration() {
				c.enqueueGateway(cur)
			}
		},
	})
	return err
}

func (c *Controller) enqueueGateway(obj any) {
	if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(gatewayPrefix + k)
	}
}

// gatewayCert is what one listener asks for.
type gatewayCert struct {
	secret string
	host   string
}

// gatewayCerts lists the certificates a Gateway's listeners ask for.
func gatewayCerts(gw *unstructured.Unstructured) []gatewayCert {
	if class, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName"); class != GatewayClassName {
		return nil
	}
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	var out []gatewayCert
	for _, l := range listeners {
		m, ok := l.(map[string]any)
		if !ok {
			continue
		}
		proto, _, _ := unstructured.NestedString(m, "protocol")
		host, _, _ := unstructured.NestedString(m, "hostname")
		mode, _, _ := unstructured.NestedString(m, "tls", "mode")
		refs, _, _ := unstructured.NestedSlice(m, "tls", "certificateRefs")
		if proto != "HTTPS" || host == "" || (mode != "" && mode != "Terminate") || len(refs) == 0 {
			continue
		}
		ref, ok := refs[0].(map[string]any)
		if !ok {
			continue
		}
		group, _, _ := unstructured.NestedString(ref, "group")
		kind, _, _ := unstructured.NestedString(ref, "kind")
		name, _, _ := unstructured.NestedString(ref, "name")
		ns, _, _ := unstructured.NestedString(ref, "namespace")
		if group != "" || (kind != "" && kind != "Secret") || name == "" || (ns != "" && ns != gw.GetNamespace()) {
			continue
		}
		out = append(out, gatewayCert{secret: name, host: strings.ToLower(host)})
	}
	return out
}

// syncGateway keeps the certificates of the Gateway key names.
func (c *Controller) syncGateway(ctx context.Context, key string) error {
	c.mu.Lock()
	inf := c.gateways
	c.mu.Unlock()
	if inf == nil {
		return nil
	}
	obj, exists, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return err
	}
	gw := obj.(*unstructured.Unstructured)
	// Listeners sharing a Secret share its certificate: one issuance for
	// all their hostnames.
	bySecret := map[string][]string{}
	var order []string
	for _, gc := range gatewayCerts(gw) {
		if _, ok := bySecret[gc.secret]; !ok {
			order = append(order, gc.secret)
		}
		bySecret[gc.secret] = normalize(append(bySecret[gc.secret], gc.host))
	}
	var errs []error
	var next time.Time
	for _, secret := range order {
		at, err := c.syncEntry(ctx, gw, gw.GetNamespace(), secret, bySecret[secret])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if !next.IsZero() {
		c.queue.AddAfter(gatewayPrefix+key, max(next.Sub(c.clock.Now()), time.Second))
	}
	return joinErrs(errs)
}

// gatewaysUsing lists the keys of the Gateways of namespace ns whose
// listeners name the Secret.
func (c *Controller) gatewaysUsing(ns, secret string) []string {
	c.mu.Lock()
	inf := c.gateways
	c.mu.Unlock()
	if inf == nil {
		return nil
	}
	objs, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	var keys []string
	for _, o := range objs {
		gw, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		for _, gc := range gatewayCerts(gw) {
			if gc.secret == secret {
				keys = append(keys, gatewayPrefix+gw.GetNamespace()+"/"+gw.GetName())
				break
			}
		}
	}
	return keys
}
