// Package aggregator is Havre's kube-aggregator: it proxies the group
// versions of APIServices backed by a Service (apiregistration.k8s.io/v1)
// to that Service's endpoints, over TLS verified with the APIService's
// caBundle, authenticated by the front-proxy client certificate and
// carrying the requester's identity in X-Remote-User, X-Remote-Group and
// X-Remote-Extra-* headers; it keeps the local APIServices of the served
// group versions (autoregister, crdregistration), publishes
// kube-system/extension-apiserver-authentication, and feeds the
// aggregated groups' resources to discovery and their OpenAPI v3 documents
// to /openapi/v3.
//
// Requests reach it after the API server's authentication and
// authorization, as in kube-apiserver, whose aggregator shares the
// handler chain; the aggregated server authorizes again itself (usually
// with SubjectAccessReviews).
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	proxyutil "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/transport"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	aggregatorinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions"
	apiservicelisters "k8s.io/kube-aggregator/pkg/client/listers/apiregistration/v1"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/pki"
	"github.com/havre/havre/internal/registry"
)

// DiscoverySink receives the resources of the aggregated group versions
// (those of available non-local APIServices), for /apis and aggregated
// discovery.
type DiscoverySink interface {
	SetAggregated(resources []*registry.Resource)
}

// Aggregator proxies aggregated group versions. Its zero value is not
// usable; see New.
type Aggregator struct {
	frontProxy   *pki.FrontProxy
	clusterCAPEM []byte
	sink         DiscoverySink
	openapiSink  OpenAPISink
	// builtin are the group versions the server serves itself.
	builtin []schema.GroupVersion

	mu         sync.RWMutex
	apis       apiservicelisters.APIServiceLister
	services   corelisters.ServiceLister
	slices     proxyutil.EndpointSliceGetter
	transports map[string]cachedTransport
	// discovered are the resources each proxied APIService listed.
	discovered map[string][]*registry.Resource
	// openapi are the OpenAPI v3 documents each proxied APIService's
	// backend served last.
	openapi map[string]openAPIDocument
	refresh chan struct{}
}

type cachedTransport struct {
	// spec is the APIService spec the transport was built for.
	spec apiregistrationv1.APIServiceSpec
	rt   http.RoundTripper
}

// New returns an aggregator presenting frontProxy's client certificate;
// builtin are the served resources, whose group versions get local
// APIServices.
func New(frontProxy *pki.FrontProxy, clusterCAPEM []byte, builtin []*registry.Resource) *Aggregator {
	a := &Aggregator{frontProxy: frontProxy, clusterCAPEM: clusterCAPEM,
		transports: map[string]cachedTransport{}, discovered: map[string][]*registry.Resource{},
		openapi: map[string]openAPIDocument{}, refresh: make(chan struct{}, 1)}
	seen := map[schema.GroupVersion]bool{}
	for _, r := range builtin {
		if gv := r.GroupVersion(); !seen[gv] {
			seen[gv] = true
			a.builtin = append(a.builtin, gv)
		}
	}
	return a
}

// SetDiscoverySink sets where the aggregated resources go.
func (a *Aggregator) SetDiscoverySink(s DiscoverySink) { a.sink = s }

// Start is the API server's post-start hook: it publishes the
// authentication ConfigMap, registers the local APIServices and starts the
// informers the proxy resolves with.
func (a *Aggregator) Start(ctx context.Context, loopback *rest.Config) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	aggClient, err := aggregatorclient.NewForConfig(loopback)
	if err != nil {
		return err
	}
	if err := a.publishAuthentication(ctx, client); err != nil {
		return fmt.Errorf("publishing %s/%s: %w", metav1.NamespaceSystem, AuthenticationConfigMap, err)
	}
	if err := a.registerBuiltin(ctx, aggClient); err != nil {
		return fmt.Errorf("registering the local APIServices: %w", err)
	}
	// The informers run for the server's life, not the hook's.
	runCtx := context.WithoutCancel(ctx)
	factory := informers.NewSharedInformerFactory(client, 0)
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	getter, err := proxyutil.NewEndpointSliceIndexerGetter(sliceInformer)
	if err != nil {
		return err
	}
	aggFactory := aggregatorinformers.NewSharedInformerFactory(aggClient, 0)
	apiInformer := aggFactory.Apiregistration().V1().APIServices()
	_, _ = apiInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.kick() },
		UpdateFunc: func(any, any) { a.kick() },
		DeleteFunc: func(any) { a.kick() },
	})
	a.mu.Lock()
	a.apis = apiInformer.Lister()
	a.services = factory.Core().V1().Services().Lister()
	a.slices = getter
	a.mu.Unlock()
	factory.Start(runCtx.Done())
	aggFactory.Start(runCtx.Done())
	factory.WaitForCacheSync(ctx.Done())
	aggFactory.WaitForCacheSync(ctx.Done())
	go a.registerCustomResources(runCtx, loopback, aggClient)
	go a.discoveryLoop(runCtx)
	return nil
}

func (a *Aggregator) kick() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// lookup returns the APIService serving gv, if the listers are up.
func (a *Aggregator) lookup(gv schema.GroupVersion) *apiregistrationv1.APIService {
	a.mu.RLock()
	lister := a.apis
	a.mu.RUnlock()
	if lister == nil {
		return nil
	}
	svc, err := lister.Get(gv.Version + "." + gv.Group)
	if err != nil {
		return nil
	}
	return svc
}

// ServeProxy serves r if its path is under /apis/<group>/<version> of a
// non-local APIService, and reports whether it did.
func (a *Aggregator) ServeProxy(w http.ResponseWriter, r *http.Request) bool {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 4)
	if len(parts) < 3 || parts[0] != "apis" {
		return false
	}
	api := a.lookup(schema.GroupVersion{Group: parts[1], Version: parts[2]})
	if api == nil || api.Spec.Service == nil {
		return false
	}
	if !helper.IsAPIServiceConditionTrue(api, apiregistrationv1.Available) {
		proxyError(w, "service unavailable", http.StatusServiceUnavailable)
		return true
	}
	user, ok := auth.UserFrom(r.Context())
	if !ok {
		proxyError(w, "missing user", http.StatusInternalServerError)
		return true
	}
	rt, err := a.transport(api)
	if err != nil {
		proxyError(w, err.Error(), http.StatusInternalServerError)
		return true
	}
	loc, err := a.resolve(api)
	if err != nil {
		slog.Warn("aggregator: resolving the service", "apiservice", api.Name, "err", err)
		proxyError(w, "service unavailable", http.StatusServiceUnavailable)
		return true
	}
	loc.Path = r.URL.Path
	loc.RawQuery = r.URL.Query().Encode()
	newReq, cancel := proxyutil.NewRequestForProxy(loc, r)
	defer cancel()
	// Credentials of the requester are not the backend's business.
	newReq.Header.Del("Authorization")
	for h := range newReq.Header {
		if strings.HasPrefix(h, "Impersonate-") {
			newReq.Header.Del(h)
		}
	}
	upgrade := httpstream.IsUpgradeRequest(r)
	rt = transport.NewAuthProxyRoundTripper(user.Name, user.UID, user.Groups, user.Extra, rt)
	if upgrade {
		// The upgrade path dials directly, without the round tripper.
		transport.SetAuthProxyHeaders(newReq, user.Name, user.UID, user.Groups, user.Extra)
	}
	h := utilproxy.NewUpgradeAwareHandler(loc, rt, true, upgrade, responder{w: w})
	h.ServeHTTP(w, newReq)
	return true
}

// responder writes a proxy failure, as upstream's: 503 with the error.
type responder struct{ w http.ResponseWriter }

func (r responder) Error(_ http.ResponseWriter, _ *http.Request, err error) {
	http.Error(r.w, err.Error(), http.StatusServiceUnavailable)
}

func proxyError(w http.ResponseWriter, msg string, code int) {
	http.Error(w, msg, code)
}

// resolve picks the backend address: an endpoint of the Service (an
// ExternalName Service's name), with the port the APIService names.
func (a *Aggregator) resolve(api *apiregistrationv1.APIService) (*url.URL, error) {
	a.mu.RLock()
	services, slices := a.services, a.slices
	a.mu.RUnlock()
	if services == nil {
		return nil, errors.New("not started")
	}
	ref := api.Spec.Service
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	svc, err := services.Services(ref.Namespace).Get(ref.Name)
	if err != nil {
		return nil, err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return proxyutil.ResolveCluster(services, ref.Namespace, ref.Name, port)
	}
	return proxyutil.ResolveEndpoint(services, slices, ref.Namespace, ref.Name, port)
}

// transport returns the round tripper of an APIService, built anew when
// its spec changed (not its status, which changes on every check).
func (a *Aggregator) transport(api *apiregistrationv1.APIService) (http.RoundTripper, error) {
	a.mu.RLock()
	c, ok := a.transports[api.Name]
	a.mu.RUnlock()
	if ok && apiequality.Semantic.DeepEqual(c.spec, api.Spec) {
		return c.rt, nil
	}
	rt, err := transport.New(a.transportConfig(api))
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if old, ok := a.transports[api.Name]; ok {
		utilnet.CloseIdleConnectionsFor(old.rt)
	}
	a.transports[api.Name] = cachedTransport{spec: *api.Spec.DeepCopy(), rt: rt}
	a.mu.Unlock()
	return rt, nil
}

// transportConfig is upstream's BuildTransportConfig: the Service's DNS
// name as server name, the caBundle (or insecureSkipTLSVerify), the
// front-proxy client certificate.
func (a *Aggregator) transportConfig(api *apiregistrationv1.APIService) *transport.Config {
	return &transport.Config{TLS: transport.TLSConfig{
		Insecure:   api.Spec.InsecureSkipTLSVerify,
		ServerName: api.Spec.Service.Name + "." + api.Spec.Service.Namespace + ".svc",
		CertData:   a.frontProxy.ClientCertPEM,
		KeyData:    a.frontProxy.ClientKeyPEM,
		CAData:     api.Spec.CABundle,
	}}
}

// CheckDiscovery is the availability controller's last check, as
// upstream's: GET /apis/<group>/<version> of the backend as
// system:kube-aggregator (system:masters) must answer 2xx or 3xx within
// 5 s; up to 5 attempts, one success suffices.
func (a *Aggregator) CheckDiscovery(ctx context.Context, api *apiregistrationv1.APIService) error {
	rt, err := transport.New(a.transportConfig(api))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	var last error
	for range 5 {
		u, err := a.resolve(api)
		if err != nil {
			return err
		}
		u.Path = "/apis/" + api.Spec.Group + "/" + api.Spec.Version
		if api.Name == "v1." {
			u.Path = "/api/" + api.Spec.Version
		}
		last = get(ctx, client, u)
		if last == nil {
			return nil
		}
	}
	return last
}

func get(ctx context.Context, client *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	transport.SetAuthProxyHeaders(req, "system:kube-aggregator", "", []string{"system:masters"}, nil)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("failing or missing response from %v: %w", u, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusMultipleChoices {
		return fmt.Errorf("failing or missing response from %v: bad status from %v: %d", u, u, resp.StatusCode)
	}
	return nil
}

// sortedNames returns a map's keys in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
