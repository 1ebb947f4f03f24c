package networking

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var ctx = context.Background()

// want is an expected validation error: its path and type.
type want struct {
	field string
	typ   field.ErrorType
}

// checkErrors fails unless errs holds exactly the wanted (field, type)
// pairs, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	got := map[want]int{}
	for _, e := range errs {
		got[want{e.Field, e.Type}]++
	}
	for _, w := range wants {
		if got[w] == 0 {
			t.Errorf("missing error %s %q; got %v", w.typ, w.field, errs)
			continue
		}
		got[w]--
	}
	for w, n := range got {
		if n > 0 {
			t.Errorf("unexpected error %s %q; all: %v", w.typ, w.field, errs)
		}
	}
}

func validIngress() *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: new("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com", "*.example.com"}, SecretName: "shop-tls"}},
			Rules: []networkingv1.IngressRule{{
				Host: "shop.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
					{Path: "/api", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: "api", Port: networkingv1.ServiceBackendPort{Name: "http"}}}},
				}}},
			}},
		},
	}
}

func TestIngressValidate(t *testing.T) {
	path0 := "spec.rules[0].http.paths[0]"
	for _, tc := range []struct {
		name   string
		mutate func(*networkingv1.Ingress)
		want   []want
	}{
		{"valid", func(*networkingv1.Ingress) {}, nil},
		{"no pathType", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil },
			[]want{{path0 + ".pathType", field.ErrorTypeRequired}}},
		{"bad pathType", func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].PathType = new(networkingv1.PathType("Regex"))
		},
			[]want{{path0 + ".pathType", field.ErrorTypeNotSupported}}},
		{"relative path", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "api" },
			[]want{{path0 + ".path", field.ErrorTypeInvalid}}},
		{"path with //", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "/a//b" },
			[]want{{path0 + ".path", field.ErrorTypeInvalid}}},
		{"no paths", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths = nil },
			[]want{{"spec.rules[0].http.paths", field.ErrorTypeRequired}}},
		{"IP host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }, []want{{"spec.rules[0].host", field.ErrorTypeInvalid}}},
		{"bad host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "Shop_Example" }, []want{{"spec.rules[0].host", field.ErrorTypeInvalid}}},
		{"no backend", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend.Service = nil },
			[]want{{path0 + ".backend", field.ErrorTypeInvalid}}},
		{"no port", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Number = 0 },
			[]want{{path0 + ".backend", field.ErrorTypeRequired}}},
		{"bad port", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Number = 70000 },
			[]want{{path0 + ".backend.service.port.number", field.ErrorTypeInvalid}}},
		{"bad service name", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "1web" },
			[]want{{path0 + ".backend.service.name", field.ErrorTypeInvalid}}},
		{"nothing", func(i *networkingv1.Ingress) { i.Spec.Rules, i.Spec.TLS = nil, nil }, []want{{"spec", field.ErrorTypeInvalid}}},
		{"bad tls secret", func(i *networkingv1.Ingress) { i.Spec.TLS[0].SecretName = "Shop TLS" }, []want{{"spec.tls[0].secretName", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := validIngress()
			tc.mutate(ing)
			checkErrors(t, IngressStrategy{}.Validate(ctx, ing), tc.want...)
		})
	}
	ing := validIngress()
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "1.2.3"}}
	checkErrors(t, IngressStrategy{}.ValidateStatusUpdate(ctx, ing, validIngress()), want{"status.loadBalancer.ingress[0].ip", field.ErrorTypeInvalid})
}

func TestIngressClass(t *testing.T) {
	s := IngressClassStrategy{}
	ic := &networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{APIGroup: new("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}}}
	s.Default(ic)
	if *ic.Spec.Parameters.Scope != "Cluster" {
		t.Errorf("scope = %q", *ic.Spec.Parameters.Scope)
	}
	checkErrors(t, s.Validate(ctx, ic))
	bad := ic.DeepCopy()
	bad.Spec.Controller = ""
	bad.Spec.Parameters.Namespace = new("default")
	checkErrors(t, s.Validate(ctx, bad), want{"spec.controller", field.ErrorTypeRequired}, want{"spec.parameters.namespace", field.ErrorTypeForbidden})
	upd := ic.DeepCopy()
	upd.Spec.Controller = "example.com/other"
	checkErrors(t, s.ValidateUpdate(ctx, upd, ic), want{"spec.controller", field.ErrorTypeInvalid})
}

func TestNetworkPolicy(t *testing.T) {
	s := NetworkPolicyStrategy{}
	np := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: new(intstr.FromInt32(5432))}},
		}},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
			CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}}},
	}}
	s.Default(np)
	if len(np.Spec.PolicyTypes) != 2 || *np.Spec.Ingress[0].Ports[0].Protocol != "TCP" {
		t.Errorf("defaults: %+v", np.Spec)
	}
	checkErrors(t, s.Validate(ctx, np))

	bad := np.DeepCopy()
	bad.Spec.Ingress[0].From = append(bad.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{})
	bad.Spec.Ingress[0].Ports[0].EndPort = new(int32(5000))
	bad.Spec.Egress[0].To[0].IPBlock.Except = []string{"192.168.0.0/16"}
	bad.Spec.PolicyTypes = []networkingv1.PolicyType{"Ingress", "Sideways"}
	checkErrors(t, s.ValidateUpdate(ctx, bad, np),
		want{"spec.ingress[0].from[1]", field.ErrorTypeRequired},
		want{"spec.ingress[0].ports[0].endPort", field.ErrorTypeInvalid},
		want{"spec.egress[0].to[0].ipBlock.except[0]", field.ErrorTypeInvalid},
		want{"spec.policyTypes[1]", field.ErrorTypeNotSupported})
}
