package ingress

import (
	"context"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func TestIngressTranslation(t *testing.T) {
	prefix, exact, impl := networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific
	cert := selfSigned(t, "secure.example")
	certPEM, keyPEM := pemPair(t, cert)
	h2c := "kubernetes.io/h2c"
	objs := []any{
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "havre", Annotations: map[string]string{DefaultClassAnnotation: "true"}},
			Spec: networkingv1.IngressClassSpec{Controller: routes.IngressController}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "grpc"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "g", Port: 50051, AppProtocol: &h2c}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", CreationTimestamp: metav1.NewTime(time.Unix(100, 0))},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To("havre"),
				DefaultBackend:   &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "def", Port: networkingv1.ServiceBackendPort{Number: 80}}},
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{"secure.example"}, SecretName: "secure-tls"}, {Hosts: []string{"pending.example"}}},
				Rules: []networkingv1.IngressRule{
					{Host: "secure.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
						{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}},
						{Path: "/exact", PathType: &exact, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 8080}}}},
					}}}},
					{Host: "*.wild.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
						{Path: "/rpc", PathType: &impl, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "grpc", Port: networkingv1.ServiceBackendPort{Number: 50051}}}},
						{Path: "/bucket", PathType: &prefix, Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "StorageBucket", Name: "b"}}},
					}}}},
				},
			}},
		// Classless: served (havre is the default class).
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "classless", CreationTimestamp: metav1.NewTime(time.Unix(200, 0))},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "secure.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/other", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "other", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
			}}}}}}},
		// Another controller's: not served.
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nginx", Annotations: map[string]string{IngressClassAnnotation: "nginx"}},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "nginx.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "x", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
			}}}}}}},
	}
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	var mwCalls int
	parser := func(ing *networkingv1.Ingress) (func(http.Handler) http.Handler, Tuning, []string) {
		mwCalls++
		if ing.Name != "classless" {
			return nil, Tuning{}, nil
		}
		return func(h http.Handler) http.Handler { return h }, Tuning{SSLRedirect: ptr.To(false), Apply: func(r *routes.Route) error { r.MaxBodyBytes = 7; return nil }}, nil
	}
	src := NewIngressSource(factory, parser)
	for _, o := range objs {
		add(t, factory, o)
	}
	tb := src.Build()
	if len(tb.Listeners) != 2 {
		t.Fatalf("listeners: %+v", tb.Listeners)
	}
	httpL, httpsL := tb.Listeners[0], tb.Listeners[1]
	var names []string
	for _, h := range httpL.Hosts {
		names = append(names, h.Hostname)
	}
	if want := []string{"secure.example", "*.wild.example", ""}; !equal(names, want) {
		t.Errorf("hosts %q, want %q", names, want)
	}
	secure := httpL.Hosts[0]
	if !secure.RedirectToHTTPS || httpsL.Hosts[0].RedirectToHTTPS {
		t.Errorf("redirect: http %v https %v", secure.RedirectToHTTPS, httpsL.Hosts[0].RedirectToHTTPS)
	}
	// secure.example: "/" web:http, "/exact" web:8080, /other (classless, tuned).
	if len(secure.Routes) != 3 {
		t.Fatalf("secure.example routes: %d", len(secure.Routes))
	}
	r0, r1, r2 := secure.Routes[0], secure.Routes[1], secure.Routes[2]
	if r0.Matches[0].PathType != routes.PathPrefix || r0.Backends[0].PortName != "http" || r0.Origin != (routes.Origin{Kind: "Ingress", Namespace: "ns", Name: "web", Rule: 0}) {
		t.Errorf("route 0: %+v", r0)
	}
	if r1.Matches[0].PathType != routes.PathExact || r1.Backends[0].Port != 8080 {
		t.Errorf("route 1: %+v", r1)
	}
	if r2.Origin.Name != "classless" || r2.MaxBodyBytes != 7 || r2.Middleware == nil {
		t.Errorf("route 2: %+v", r2)
	}
	wild := httpL.Hosts[1]
	if !wild.WildcardOneLabel || !wild.Matches("a.wild.example") || wild.Matches("a.b.wild.example") {
		t.Errorf("Ingress wildcards match one label: %+v", wild)
	}
	// /bucket (resource backend) is left out; defaultBackend added as "/".
	if len(wild.Routes) != 2 || wild.Routes[0].Backends[0].Protocol != routes.ProtoH2C || wild.Routes[1].Backends[0].Service != (types.NamespacedName{Namespace: "ns", Name: "def"}) {
		t.Errorf("wildcard routes: %+v", wild.Routes)
	}
	if len(httpsL.Certificates) != 1 || httpsL.Certificates[0].Hosts[0] != "secure.example" {
		t.Errorf("certificates: %+v", httpsL.Certificates)
	}
	if mwCalls == 0 {
		t.Error("annotation parser not called")
	}
	// A later Ingress opting out of the redirect for its own TLS host.
}

func add(t *testing.T, factory informers.SharedInformerFactory, o any) {
	t.Helper()
	var err error
	switch o := o.(type) {
	case *networkingv1.Ingress:
		err = factory.Networking().V1().Ingresses().Informer().GetStore().Add(o)
	case *networkingv1.IngressClass:
		err = factory.Networking().V1().IngressClasses().Informer().GetStore().Add(o)
	case *corev1.Service:
		err = factory.Core().V1().Services().Informer().GetStore().Add(o)
	case *corev1.Secret:
		err = factory.Core().V1().Secrets().Informer().GetStore().Add(o)
	case *discoveryv1.EndpointSlice:
		err = factory.Discovery().V1().EndpointSlices().Informer().GetStore().Add(o)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSliceEndpoints(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	e := NewSliceEndpoints(factory)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}, {Name: "admin", Port: 81}}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}, {Name: ptr.To("admin"), Port: ptr.To[int32](9000)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}},
			{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	removed := make(chan struct{}, 10)
	e.OnRemoved(func() { removed <- struct{}{} })
	must(client.CoreV1().Services("ns").Create(ctx, svc, metav1.CreateOptions{}))
	must(client.DiscoveryV1().EndpointSlices("ns").Create(ctx, slice, metav1.CreateOptions{}))
	waitFor(t, func() bool {
		p, _ := e.Lookup(types.NamespacedName{Namespace: "ns", Name: "web"}, 80, "")
		return p != nil && len(p.Addrs) == 1
	})
	p, _ := e.Lookup(types.NamespacedName{Namespace: "ns", Name: "web"}, 80, "")
	if p.Addrs[0] != "10.0.0.1:8080" {
		t.Errorf("ready: %v", p.Addrs)
	}
	if p, _ := e.Lookup(types.NamespacedName{Namespace: "ns", Name: "web"}, 0, "admin"); p == nil || p.Addrs[0] != "10.0.0.1:9000" {
		t.Errorf("by name: %v", p)
	}
	// The ready endpoint goes: the terminating one still serving is used.
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	must(client.DiscoveryV1().EndpointSlices("ns").Update(ctx, slice, metav1.UpdateOptions{}))
	waitFor(t, func() bool {
		p, _ := e.Lookup(types.NamespacedName{Namespace: "ns", Name: "web"}, 80, "")
		return p != nil && len(p.Addrs) == 1 && p.Addrs[0] == "10.0.0.2:8080"
	})
	select {
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Error("no removal notice")
	}
	if _, found := e.Lookup(types.NamespacedName{Namespace: "ns", Name: "nope"}, 80, ""); found {
		t.Error("unknown service found")
	}
}

func must[T any](_ T, err error) {
	if err != nil {
		panic(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
