package gateway

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

var newGateway = gw

func TestSource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := kubefake.NewClientset(svc("ns", "web"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	// Created through the client: the fake's tracker guesses "gatewaies"
	// for objects given to NewSimpleClientset.
	gw := gatewayfake.NewSimpleClientset(havreClass())
	if _, err := gw.GatewayV1().Gateways("ns").Create(ctx, newGateway("ns", "g", httpListener("http", 80, "")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kf, gf := informers.NewSharedInformerFactory(kube, 0), gatewayinformers.NewSharedInformerFactory(gw, 0)
	src := NewSource(gf, kf)
	kf.Start(ctx.Done())
	gf.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), src.Synced()...) {
		t.Fatal("caches not synced")
	}
	if tab := src.Build(); len(tab.Listeners) != 1 || tab.Listeners[0].Port != 80 || len(tab.Listeners[0].Hosts) != 0 {
		t.Fatalf("table %+v, want the HTTP listener, empty", tab.Listeners)
	}
	for len(src.Changed()) > 0 {
		<-src.Changed()
	}
	rt := httpRoute("ns", "r", 0, []gatewayv1.ParentReference{parent("", "g")}, []gatewayv1.Hostname{"a.example.com"},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}})
	if _, err := gw.GatewayV1().HTTPRoutes("ns").Create(ctx, rt, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no change notified")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tab := src.Build()
		if len(tab.Listeners[0].Hosts) == 1 && tab.Listeners[0].Hosts[0].Hostname == "a.example.com" {
			if b := tab.Listeners[0].Hosts[0].Routes[0].Backends[0]; b.Service.Name != "web" || b.PortName != "http" || b.Invalid != "" {
				t.Errorf("backend %+v", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %+v", tab.Listeners[0].Hosts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
