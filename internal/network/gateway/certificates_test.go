package gateway

import (
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestCertificateRequests(t *testing.T) {
	https := func(name, host string, refs ...gatewayv1.SecretObjectReference) gatewayv1.Listener {
		l := gatewayv1.Listener{Name: gatewayv1.SectionName(name), Port: 443, Protocol: gatewayv1.HTTPSProtocolType,
			TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: refs}}
		if host != "" {
			l.Hostname = hn(host)
		}
		return l
	}
	local := gatewayv1.SecretObjectReference{Name: "site"}
	granted := gatewayv1.SecretObjectReference{Name: "shared", Namespace: new(gatewayv1.Namespace("certs"))}
	refused := gatewayv1.SecretObjectReference{Name: "other", Namespace: new(gatewayv1.Namespace("elsewhere"))}
	notSecret := gatewayv1.SecretObjectReference{Name: "cm", Kind: new(gatewayv1.Kind("ConfigMap"))}
	grant := &gatewayv1.ReferenceGrant{ObjectMeta: meta("certs", "allow", 0), Spec: gatewayv1.ReferenceGrantSpec{
		From: []gatewayv1.ReferenceGrantFrom{{Group: Group, Kind: "Gateway", Namespace: "ns"}},
		To:   []gatewayv1.ReferenceGrantTo{{Kind: "Secret"}},
	}}
	other := &gatewayv1.Gateway{ObjectMeta: meta("ns", "theirs", 0), Spec: gatewayv1.GatewaySpec{GatewayClassName: "other",
		Listeners: []gatewayv1.Listener{https("a", "a.example.com", local)}}}
	s := snapshot(havreClass(), otherClass(), grant, other, gw("ns", "g",
		https("a", "a.example.com", local, notSecret),
		https("b", "*.example.com", granted, refused),
		https("any", "", local),
		httpListener("http", 80, "a.example.com"),
	))
	got := CertificateRequests(s)
	want := []string{"certs/shared *.example.com b", "ns/site a.example.com a"}
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %q", got, want)
	}
	for i, r := range got {
		if d := r.Secret.String() + " " + r.Hostname + " " + string(r.Listener); d != want[i] || r.Gateway.Name != "g" {
			t.Errorf("request %d: %q (gateway %s), want %q", i, d, r.Gateway, want[i])
		}
	}
}
