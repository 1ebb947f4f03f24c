package gateway_test

import (
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/havre/havre/internal/network/gateway/gatewayapi"
	"github.com/havre/havre/test/framework"
)

// TestInstalledAtStart: a fresh server serves upstream's standard
// channel, Established, with upstream's CEL rules and its
// ValidatingAdmissionPolicy in force, and the GatewayClass havre.
func TestInstalledAtStart(t *testing.T) {
	s := framework.StartServer(t, framework.WithoutWorkloadControllers())
	ext := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	gw := gatewayclient.NewForConfigOrDie(s.RESTConfig())
	want, err := gatewayapi.Definitions()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every definition is Established and its storage version served", func(t *testing.T) {
		for _, crd := range want {
			framework.Eventually(t, 30*time.Second, func() (bool, error) {
				got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx(t), crd.Name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				for _, c := range got.Status.Conditions {
					if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
						return got.Annotations["gateway.networking.k8s.io/bundle-version"] == gatewayapi.BundleVersion, nil
					}
				}
				return false, nil
			}, "%s Established", crd.Name)
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: crd.Spec.Names.Plural}
				framework.Eventually(t, 30*time.Second, func() (bool, error) {
					_, err := s.Dynamic().Resource(gvr).List(ctx(t), metav1.ListOptions{Limit: 1})
					return err == nil, nil
				}, "%s served", gvr)
			}
		}
	})

	t.Run("the GatewayClass havre exists", func(t *testing.T) {
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			c, err := gw.GatewayV1().GatewayClasses().Get(ctx(t), "havre", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			return c.Spec.ControllerName == "havre.io/gateway-controller", nil
		}, "GatewayClass havre")
	})

	t.Run("the safe-upgrades policy is installed and denies old bundles", func(t *testing.T) {
		if _, err := s.Clientset().AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx(t), gatewayapi.PolicyName, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Clientset().AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx(t), gatewayapi.PolicyName, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		old := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "things.gateway.networking.k8s.io",
				Annotations: map[string]string{"gateway.networking.k8s.io/bundle-version": "v1.2.0", "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api"}},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "gateway.networking.k8s.io", Scope: apiextensionsv1.ClusterScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "things", Kind: "Thing"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}},
			},
		}
		// The policy is loaded by the admission plugin shortly after start.
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx(t), old, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil {
				return false, nil
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Installing CRDs with version before v1.5.0 is prohibited by default") {
				t.Fatalf("create of a v1.2.0 definition: %v", err)
			}
			return true, nil
		}, "the policy denies a v1.2.0 definition")
	})

	t.Run("upstream's CEL rules are enforced", func(t *testing.T) {
		ns := framework.NewNamespace(t, s.Clientset(), "gw-cel")
		g := &gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "dup", Namespace: ns},
			Spec: gatewayv1.GatewaySpec{GatewayClassName: "havre", Listeners: []gatewayv1.Listener{
				{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
				{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType},
			}},
		}
		_, err := gw.GatewayV1().Gateways(ns).Create(ctx(t), g, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Listener name must be unique within the Gateway") {
			t.Fatalf("a Gateway with two listeners named http: %v, want upstream's rule", err)
		}
		g.Spec.Listeners[1].Name = "alt"
		g.Spec.Listeners = append(g.Spec.Listeners, gatewayv1.Listener{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType,
			TLS: &gatewayv1.ListenerTLSConfig{Mode: new(gatewayv1.TLSModePassthrough)}})
		_, err = gw.GatewayV1().Gateways(ns).Create(ctx(t), g, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "tls mode must be Terminate for protocol HTTPS") {
			t.Fatalf("an HTTPS listener in Passthrough mode: %v, want upstream's rule", err)
		}
		g.Spec.Listeners = g.Spec.Listeners[:2]
		if _, err := gw.GatewayV1().Gateways(ns).Create(ctx(t), g, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Defaults from the schema.
		got, err := gw.GatewayV1().Gateways(ns).Get(ctx(t), "dup", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ar := got.Spec.Listeners[0].AllowedRoutes; ar == nil || ar.Namespaces == nil || ar.Namespaces.From == nil || *ar.Namespaces.From != gatewayv1.NamespacesFromSame {
			t.Errorf("listener allowedRoutes %+v, want the schema's default (from Same)", ar)
		}
	})
}
