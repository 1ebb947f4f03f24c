package certificates

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/certs/clusterissuer"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// TestPrivateNamesRenewed: an Ingress of class havre with private hosts
// gets its Secret from the cluster issuer at once, renewed on a fake
// clock when a third of its lifetime is left; other classes are ignored,
// and a Secret that is not kubernetes.io/tls is not overwritten.
func TestPrivateNamesRenewed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := testingclock.NewFakeClock(time.Now())
	class := routes.IngressClassName
	other := "nginx"
	client := fake.NewClientset(
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Spec: networkingv1.IngressClassSpec{Controller: routes.IngressController}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns1"}, Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"web.test", "*.web.test"}}, {Hosts: []string{"api.test"}, SecretName: "api-cert"}, {Hosts: []string{"x.test"}, SecretName: "opaque"}},
		}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "ns1"}, Spec: networkingv1.IngressSpec{
			IngressClassName: &other, TLS: []networkingv1.IngressTLS{{Hosts: []string{"theirs.test"}}},
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "ns1"}, Data: map[string][]byte{"k": []byte("v")}},
	)
	f := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	c, err := New(client, f, rec, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	go c.Run(ctx, 2)

	get := func(name string) *corev1.Secret {
		s, err := client.CoreV1().Secrets("ns1").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return s
	}
	var first *corev1.Secret
	eventually(t, func() bool {
		first = get(routes.DefaultTLSSecretName("web", 0))
		return first != nil && get("api-cert") != nil
	})
	if first.Type != corev1.SecretTypeTLS || first.Annotations[IssuerAnnotation] != IssuerCluster {
		t.Fatalf("Secret: type %s, annotations %v", first.Type, first.Annotations)
	}
	leaf := parseLeaf(first)
	if leaf == nil || !covers(leaf, []string{"web.test", "*.web.test", "www.web.test"}) {
		t.Fatalf("certificate does not cover the hosts: %v", leaf)
	}
	// The Events of the three TLS entries are recorded as each is synced,
	// so the refusal of "opaque" may come after both Secrets are written.
	waitEvents(t, rec, "Normal Issuing", "Normal Issued", "Warning Failed Secret opaque exists")
	if get(routes.DefaultTLSSecretName("theirs", 0)) != nil {
		t.Error("an Ingress of another class got a certificate")
	}
	if s := get("opaque"); s.Type == corev1.SecretTypeTLS || string(s.Data["k"]) != "v" {
		t.Error("a Secret of another type was overwritten")
	}

	// Not renewed before two thirds of its lifetime, renewed after. The
	// sync that wrote the Secret asks the work queue to look again at the
	// renewal time; the clock is stepped once that delay is armed (a fake
	// clock timer next to the queue's heartbeat ticker): a step between
	// the sync reading the time and the queue reading it would push the
	// delay past the renewal time.
	eventually(t, func() bool { return clk.Waiters() >= 2 })
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	clk.Step(lifetime/2 - 10*time.Minute)
	time.Sleep(200 * time.Millisecond)
	if s := get(first.Name); parseLeaf(s).SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatal("renewed at half its lifetime")
	}
	clk.Step(lifetime/6 + 10*time.Minute)
	eventually(t, func() bool {
		// The work queue's timers (its retry backoff, and a delay armed
		// while the clock was being stepped) run on the fake clock too:
		// a second of it per poll lets them fire.
		clk.Step(time.Second)
		s := get(first.Name)
		return parseLeaf(s).SerialNumber.Cmp(leaf.SerialNumber) != 0
	})
	renewed := parseLeaf(get(first.Name))
	if !renewed.NotAfter.After(leaf.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after %v", renewed.NotAfter, leaf.NotAfter)
	}
}

func TestServedAndPrivate(t *testing.T) {
	if !clusterissuer.IsPrivate("*.web.test") || clusterissuer.IsPrivate("www.example.com") {
		t.Fatal("IsPrivate")
	}
	client := fake.NewClientset(&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "havre",
		Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: routes.IngressController}})
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, f, record.NewFakeRecorder(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	other := "traefik"
	for _, tc := range []struct {
		ing  *networkingv1.Ingress
		want bool
	}{
		{&networkingv1.Ingress{}, true},
		{&networkingv1.Ingress{Spec: networkingv1.IngressSpec{IngressClassName: &other}}, false},
		{&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/ingress.class": "havre"}}}, true},
		{&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/ingress.class": "nginx"}}}, false},
	} {
		if got := c.Served(tc.ing); got != tc.want {
			t.Errorf("Served(%+v) = %v", tc.ing.ObjectMeta, got)
		}
	}
}

// waitEvents collects the recorder's Events until every wanted one has
// been seen, and returns them all.
func waitEvents(t *testing.T, rec *record.FakeRecorder, want ...string) string {
	t.Helper()
	var b strings.Builder
	missing := func() []string {
		var m []string
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				m = append(m, w)
			}
		}
		return m
	}
	deadline := time.After(10 * time.Second)
	for len(missing()) > 0 {
		select {
		case e := <-rec.Events:
			b.WriteString(e + "\n")
		case <-deadline:
			t.Fatalf("no %q Event in:\n%s", missing(), b.String())
		}
	}
	return b.String()
}

func eventually(t *testing.T, f func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met in 10s")
}

// TestGatewayListeners: an HTTPS listener of a Gateway of class havre
// gets its certificateRef Secret issued for its hostname; other classes,
// HTTP listeners and cross-namespace references are left alone.
func TestGatewayListeners(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listener := func(name, proto, host, secret, ns string) map[string]any {
		ref := map[string]any{"kind": "Secret", "name": secret}
		if ns != "" {
			ref["namespace"] = ns
		}
		return map[string]any{"name": name, "protocol": proto, "hostname": host, "port": int64(443),
			"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{ref}}}
	}
	gw := func(name, class string, listeners ...any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": name, "namespace": "ns1"},
			"spec":     map[string]any{"gatewayClassName": class, "listeners": listeners},
		}}
	}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{GatewayResource: "GatewayList"})
	for _, g := range []*unstructured.Unstructured{
		gw("edge", "havre", listener("a", "HTTPS", "gw.test", "gw-cert", ""), listener("b", "HTTPS", "www.gw.test", "gw-cert", ""),
			listener("c", "HTTP", "plain.test", "plain-cert", ""), listener("d", "HTTPS", "x.test", "other-ns-cert", "ns2")),
		gw("theirs", "other", listener("a", "HTTPS", "theirs.test", "theirs-cert", "")),
	} {
		if _, err := dyn.Resource(GatewayResource).Namespace("ns1").Create(ctx, g, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client := fake.NewClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, f, record.NewFakeRecorder(100), Options{})
	if err != nil {
		t.Fatal(err)
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(dyn, GatewayResource, "", 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil).Informer()
	if err := c.AddGatewayInformer(inf); err != nil {
		t.Fatal(err)
	}
	go inf.Run(ctx.Done())
	f.Start(ctx.Done())
	go c.Run(ctx, 1)
	var s *corev1.Secret
	eventually(t, func() bool {
		s, err = client.CoreV1().Secrets("ns1").Get(ctx, "gw-cert", metav1.GetOptions{})
		return err == nil
	})
	leaf := parseLeaf(s)
	if leaf == nil || !covers(leaf, []string{"gw.test", "www.gw.test"}) {
		t.Fatalf("gw-cert does not cover the listeners' hostnames: %v", leaf)
	}
	time.Sleep(200 * time.Millisecond)
	for _, name := range []string{"plain-cert", "theirs-cert", "other-ns-cert"} {
		for _, ns := range []string{"ns1", "ns2"} {
			if _, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				t.Errorf("Secret %s/%s was issued", ns, name)
			}
		}
	}
}
