package aggregator

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiservicelisters "k8s.io/kube-aggregator/pkg/client/listers/apiregistration/v1"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/pki"
)

// TestServeProxy proxies to a backend behind an ExternalName Service: the
// backend sees the front-proxy client certificate and the requester in
// X-Remote-* headers, never the requester's credentials; unavailable
// APIServices answer 503 and local ones are left to the server.
func TestServeProxy(t *testing.T) {
	var seen *http.Request
	a, apis, spec := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		_, _ = w.Write([]byte("from backend"))
	}))
	for _, api := range []*apiregistrationv1.APIService{
		{ObjectMeta: metav1.ObjectMeta{Name: "v1.wardle.example.com", ResourceVersion: "1"},
			Spec: spec("wardle.example.com", "v1"), Status: apiregistrationv1.APIServiceStatus{Conditions: available}},
		{ObjectMeta: metav1.ObjectMeta{Name: "v2.wardle.example.com", ResourceVersion: "1"}, Spec: spec("wardle.example.com", "v2")},
		{ObjectMeta: metav1.ObjectMeta{Name: "v1.apps"}, Spec: apiregistrationv1.APIServiceSpec{Group: "apps", Version: "v1"},
			Status: apiregistrationv1.APIServiceStatus{Conditions: available}},
	} {
		_ = apis.Add(api)
	}

	serve := func(path string) (*httptest.ResponseRecorder, bool) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer secret")
		r = r.WithContext(auth.WithUser(r.Context(), &auth.User{Name: "alice", Groups: []string{"devs", "system:authenticated"},
			Extra: map[string][]string{"scopes": {"a", "b"}}}))
		w := httptest.NewRecorder()
		return w, a.ServeProxy(w, r)
	}
	w, ok := serve("/apis/wardle.example.com/v1/namespaces/x/flunders?limit=5")
	if !ok || w.Code != http.StatusOK || w.Body.String() != "from backend" {
		t.Fatalf("proxied: %v %d %q", ok, w.Code, w.Body.String())
	}
	if seen.URL.Path != "/apis/wardle.example.com/v1/namespaces/x/flunders" || seen.URL.Query().Get("limit") != "5" {
		t.Errorf("backend saw %s", seen.URL)
	}
	if cn := seen.TLS.PeerCertificates[0].Subject.CommonName; cn != pki.FrontProxyClientName {
		t.Errorf("client certificate %q", cn)
	}
	if seen.Header.Get("Authorization") != "" {
		t.Error("the requester's credentials reached the backend")
	}
	if u, g, e := seen.Header.Get("X-Remote-User"), seen.Header.Values("X-Remote-Group"), seen.Header.Values("X-Remote-Extra-Scopes"); u != "alice" ||
		len(g) != 2 || g[0] != "devs" || len(e) != 2 {
		t.Errorf("X-Remote headers: %v", seen.Header)
	}

	if w, ok := serve("/apis/wardle.example.com/v2/flunders"); !ok || w.Code != http.StatusServiceUnavailable {
		t.Errorf("unavailable APIService: %v %d", ok, w.Code)
	}
	if _, ok := serve("/apis/apps/v1/deployments"); ok {
		t.Error("a local APIService was proxied")
	}
	if _, ok := serve("/apis/wardle.example.com"); ok {
		t.Error("the group document was proxied")
	}
}

var available = []apiregistrationv1.APIServiceCondition{{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue}}

// newBackend starts handler as a backend that requires the front-proxy
// client certificate, behind the ExternalName Service ns/api, and returns
// an aggregator whose APIServices are in apis and spec, the spec of an
// APIService of that Service.
func newBackend(t *testing.T, handler http.Handler) (a *Aggregator, apis cache.Indexer, spec func(group, version string) apiregistrationv1.APIServiceSpec) {
	t.Helper()
	bundle, err := pki.Ensure(t.TempDir(), pki.Options{Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := bundle.EnsureFrontProxy()
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.SelfSignedServing("api", []string{"api.ns.svc"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(fp.CAPEM)
	backend := httptest.NewUnstartedServer(handler)
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	backend.StartTLS()
	t.Cleanup(backend.Close)
	_, portStr, _ := net.SplitHostPort(backend.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	p32 := int32(port)
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serving.Certificate[0]})

	apis = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	services := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = services.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1", Ports: []corev1.ServicePort{{Port: p32}}}})
	a = New(fp, bundle.CAPEM, nil)
	a.apis = apiservicelisters.NewAPIServiceLister(apis)
	a.services = corelisters.NewServiceLister(services)
	return a, apis, func(group, version string) apiregistrationv1.APIServiceSpec {
		return apiregistrationv1.APIServiceSpec{Group: group, Version: version, CABundle: caBundle,
			Service: &apiregistrationv1.ServiceReference{Namespace: "ns", Name: "api", Port: &p32}}
	}
}
