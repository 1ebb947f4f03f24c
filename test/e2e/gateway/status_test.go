package gateway_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/havre/havre/test/framework"
)

// condition returns "Status/Reason" of a condition, or "".
func condition(conds []metav1.Condition, t string) string {
	c := apimeta.FindStatusCondition(conds, t)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// TestStatuses: the gateway controller writes GatewayClass, Gateway,
// listener and route statuses as Gateway API asks, addresses included.
func TestStatuses(t *testing.T) {
	s := framework.StartServer(t, framework.WithoutWorkloadControllers())
	cs := s.Clientset()
	gw := gatewayclient.NewForConfigOrDie(s.RESTConfig())

	t.Run("GatewayClass havre is Accepted with a SupportedVersion", func(t *testing.T) {
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			c, err := gw.GatewayV1().GatewayClasses().Get(ctx(t), "havre", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			return condition(c.Status.Conditions, "Accepted") == "True/Accepted" &&
				condition(c.Status.Conditions, "SupportedVersion") == "True/SupportedVersion" &&
				len(c.Status.SupportedFeatures) == 4 && c.Status.SupportedFeatures[2].Name == "HTTPRoute", nil
		}, "GatewayClass havre Accepted")
	})

	ns := framework.NewNamespace(t, cs, "gw-status")
	other := framework.NewNamespace(t, cs, "gw-status-other")
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{ns, other} {
		_, err := cs.CoreV1().Services(n).Create(ctx(t), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}, Selector: map[string]string{"app": "web"}}}, metav1.CreateOptions{})
		mustCreate(err)
	}
	_, err := gw.GatewayV1().Gateways(ns).Create(ctx(t), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "edge"},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "havre", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, Hostname: new(gatewayv1.Hostname("*.example.test"))},
			{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType, TLS: &gatewayv1.ListenerTLSConfig{
				CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "missing"}}}},
		}},
	}, metav1.CreateOptions{})
	mustCreate(err)
	route := func(name string, hosts []gatewayv1.Hostname, backendNS string) *gatewayv1.HTTPRoute {
		ref := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: "web", Port: new(gatewayv1.PortNumber(80))}}}
		if backendNS != "" {
			ref.Namespace = new(gatewayv1.Namespace(backendNS))
		}
		return &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "edge", SectionName: new(gatewayv1.SectionName("http"))}}},
			Hostnames:       hosts,
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{ref}}},
		}}
	}
	for _, r := range []*gatewayv1.HTTPRoute{
		route("good", []gatewayv1.Hostname{"app.example.test"}, ""),
		route("elsewhere", []gatewayv1.Hostname{"app.other.test"}, ""),
		route("cross", nil, other),
	} {
		_, err := gw.GatewayV1().HTTPRoutes(ns).Create(ctx(t), r, metav1.CreateOptions{})
		mustCreate(err)
	}

	routeConds := func(name string) (accepted, resolved string) {
		r, err := gw.GatewayV1().HTTPRoutes(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil || len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != "havre.io/gateway-controller" {
			return "", ""
		}
		c := r.Status.Parents[0].Conditions
		return condition(c, "Accepted"), condition(c, "ResolvedRefs")
	}
	t.Run("routes: Accepted, NoMatchingListenerHostname, RefNotPermitted", func(t *testing.T) {
		want := map[string][2]string{
			"good":      {"True/Accepted", "True/ResolvedRefs"},
			"elsewhere": {"False/NoMatchingListenerHostname", "True/ResolvedRefs"},
			"cross":     {"True/Accepted", "False/RefNotPermitted"},
		}
		for name, w := range want {
			framework.Eventually(t, 30*time.Second, func() (bool, error) {
				a, r := routeConds(name)
				return a == w[0] && r == w[1], nil
			}, "route %s: Accepted %s, ResolvedRefs %s", name, w[0], w[1])
		}
	})

	t.Run("a ReferenceGrant resolves the cross-namespace backend", func(t *testing.T) {
		_, err := gw.GatewayV1().ReferenceGrants(other).Create(ctx(t), &gatewayv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Name: "allow"},
			Spec: gatewayv1.ReferenceGrantSpec{
				From: []gatewayv1.ReferenceGrantFrom{{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute", Namespace: gatewayv1.Namespace(ns)}},
				To:   []gatewayv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
			}}, metav1.CreateOptions{})
		mustCreate(err)
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			a, r := routeConds("cross")
			return a == "True/Accepted" && r == "True/ResolvedRefs", nil
		}, "route cross resolved")
	})

	gateway := func() *gatewayv1.Gateway {
		g, err := gw.GatewayV1().Gateways(ns).Get(ctx(t), "edge", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	t.Run("the Gateway's listeners: attachedRoutes and conditions; no address without an ingress node", func(t *testing.T) {
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			g := gateway()
			if len(g.Status.Listeners) != 2 {
				return false, nil
			}
			h, s := g.Status.Listeners[0], g.Status.Listeners[1]
			return h.AttachedRoutes == 2 && s.AttachedRoutes == 0 &&
				condition(h.Conditions, "Programmed") == "True/Programmed" && condition(h.Conditions, "Accepted") == "True/Accepted" &&
				condition(s.Conditions, "ResolvedRefs") == "False/InvalidCertificateRef" && condition(s.Conditions, "Programmed") == "False/Invalid" &&
				condition(g.Status.Conditions, "Accepted") == "True/Accepted" &&
				condition(g.Status.Conditions, "Programmed") == "False/AddressNotAssigned" && len(g.Status.Addresses) == 0, nil
		}, "Gateway status")
		g := gateway()
		if c := apimeta.FindStatusCondition(g.Status.Conditions, "Accepted"); c.ObservedGeneration != g.Generation {
			t.Errorf("observedGeneration %d, generation %d", c.ObservedGeneration, g.Generation)
		}
		if k := g.Status.Listeners[0].SupportedKinds; len(k) != 2 || k[0].Kind != "HTTPRoute" || k[1].Kind != "GRPCRoute" {
			t.Errorf("supportedKinds %+v", k)
		}
	})

	t.Run("a ready node running the proxy gives the Gateway its address", func(t *testing.T) {
		node, err := cs.CoreV1().Nodes().Create(ctx(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-e2e",
			Labels: map[string]string{"havre.io/ingress-proxy": "true"}}}, metav1.CreateOptions{})
		mustCreate(err)
		t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(ctx(t), node.Name, metav1.DeleteOptions{}) })
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.7"}}
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx(t), node, metav1.UpdateOptions{})
		mustCreate(err)
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			g := gateway()
			return len(g.Status.Addresses) == 1 && g.Status.Addresses[0].Value == "192.0.2.7" &&
				condition(g.Status.Conditions, "Programmed") == "True/Programmed", nil
		}, "Gateway address 192.0.2.7")
	})

	t.Run("statuses follow a change: the route moves to a hostname of the listener", func(t *testing.T) {
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			r, err := gw.GatewayV1().HTTPRoutes(ns).Get(ctx(t), "elsewhere", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			r.Spec.Hostnames = []gatewayv1.Hostname{"other.example.test"}
			_, err = gw.GatewayV1().HTTPRoutes(ns).Update(ctx(t), r, metav1.UpdateOptions{})
			return err == nil, nil
		}, "route updated")
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			a, _ := routeConds("elsewhere")
			return a == "True/Accepted" && gateway().Status.Listeners[0].AttachedRoutes == 3, nil
		}, "route elsewhere accepted, 3 routes attached")
	})

	t.Run("a GRPCRoute attaches too", func(t *testing.T) {
		_, err := gw.GatewayV1().GRPCRoutes(ns).Create(ctx(t), &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "rpc"},
			Spec: gatewayv1.GRPCRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "edge", SectionName: new(gatewayv1.SectionName("http"))}}},
				Hostnames:       []gatewayv1.Hostname{"rpc.example.test"},
				Rules: []gatewayv1.GRPCRouteRule{{
					Matches:     []gatewayv1.GRPCRouteMatch{{Method: &gatewayv1.GRPCMethodMatch{Service: new("echo.Echo"), Method: new("Say")}}},
					BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: new(gatewayv1.PortNumber(80))}}}},
				}},
			}}, metav1.CreateOptions{})
		mustCreate(err)
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			r, err := gw.GatewayV1().GRPCRoutes(ns).Get(ctx(t), "rpc", metav1.GetOptions{})
			if err != nil || len(r.Status.Parents) != 1 {
				return false, nil
			}
			c := r.Status.Parents[0].Conditions
			return condition(c, "Accepted") == "True/Accepted" && condition(c, "ResolvedRefs") == "True/ResolvedRefs" &&
				gateway().Status.Listeners[0].AttachedRoutes == 4, nil
		}, "GRPCRoute rpc accepted, 4 routes attached")
	})
}
