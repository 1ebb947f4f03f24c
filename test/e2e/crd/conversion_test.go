package crd_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// conversionImage is test/images/crdconversion: agnhost's
// crd-conversion-webhook (v1 "hostPort" ↔ v2 "host" + "port").
const conversionImage = "havre.test/crdconversion:e2e"

// The webhook's Service, as upstream's e2e names it.
const conversionService = "e2e-test-crd-conversion-webhook"

// TestCustomResourceConversionWebhook runs the conversion webhook in a pod
// behind a Service, as upstream's [sig-api-machinery]
// CustomResourceConversionWebhook specs do, and checks their behaviour in
// subtests named after them, then what they do not check: watch events,
// patches and the failing webhook's error.
func TestCustomResourceConversionWebhook(t *testing.T) {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/crdconversion", conversionImage)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", "crd-conversion-e2e"))
	cs := s.Clientset()
	s.WaitNodeReady(t, "crd-conversion-e2e", 90*time.Second)
	s.ImportImage(t, archive)
	ns := framework.NewNamespace(t, cs, "crd-webhook")
	caPEM := deployConversionWebhook(t, cs, ns)
	crdClient := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	dyn := s.Dynamic()

	t.Run("CustomResourceConversionWebhook [Privileged:ClusterAdmin] should be able to convert from CR v1 to CR v2", func(t *testing.T) {
		crd := createConversionCRD(t, s, crdClient, "e2e-test-crd-webhook-a", ns, caPEM)
		v1, v2 := conversionGVRs(crd)
		waitConverting(t, dyn, crd, ns)
		cr := conversionCR(crd, "v1", "cr-instance-1", map[string]any{"hostPort": "localhost:8080"})
		if _, err := dyn.Resource(v1).Namespace(ns).Create(ctx(t), cr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := dyn.Resource(v2).Namespace(ns).Get(ctx(t), "cr-instance-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetAPIVersion() != v2.GroupVersion().String() || got.Object["host"] != "localhost" || got.Object["port"] != "8080" || got.Object["hostPort"] != nil {
			t.Errorf("v1 object read in v2: %v", got.Object)
		}

		// Beyond upstream's spec: a write in v2 is stored in v1 and
		// answered in v2; a merge patch in v2; watch events in v2.
		w, err := dyn.Resource(v2).Namespace(ns).Watch(ctx(t), metav1.ListOptions{ResourceVersion: got.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		patched, err := dyn.Resource(v2).Namespace(ns).Patch(ctx(t), "cr-instance-1", types.MergePatchType, []byte(`{"port":"9090"}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if patched.Object["host"] != "localhost" || patched.Object["port"] != "9090" {
			t.Errorf("patched in v2: %v", patched.Object)
		}
		inV1, err := dyn.Resource(v1).Namespace(ns).Get(ctx(t), "cr-instance-1", metav1.GetOptions{})
		if err != nil || inV1.Object["hostPort"] != "localhost:9090" {
			t.Errorf("patch read in v1: %v %v", inV1, err)
		}
		select {
		case ev := <-w.ResultChan():
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type != "MODIFIED" || u.GetAPIVersion() != v2.GroupVersion().String() || u.Object["port"] != "9090" {
				t.Errorf("watch event %s %v", ev.Type, ev.Object)
			}
		case <-time.After(30 * time.Second):
			t.Error("no watch event")
		}
		// Server-side apply in v2: the webhook converts managedFields'
		// versions too.
		applied, err := dyn.Resource(v2).Namespace(ns).Apply(ctx(t), "cr-instance-1",
			conversionCR(crd, "v2", "cr-instance-1", map[string]any{"host": "example.org"}), metav1.ApplyOptions{FieldManager: "e2e-apply", Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if applied.Object["host"] != "example.org" || applied.Object["port"] != "9090" {
			t.Errorf("applied in v2: %v", applied.Object)
		}
		if _, err := dyn.Resource(v2).Namespace(ns).Patch(ctx(t), "cr-instance-1", types.MergePatchType, []byte(`{"host":"localhost"}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// kubectl reads it in the preferred version, v2.
		out := s.MustKubectl(t, "-n", ns, "get", crd.Spec.Names.Plural+"."+crd.Spec.Group, "cr-instance-1", "-o", "jsonpath={.host}:{.port}")
		if out != "localhost:9090" {
			t.Errorf("kubectl get: %q", out)
		}

		// A webhook that cannot be reached fails conversions with upstream's
		// 500, not reads in the storage version.
		bad, err := crdClient.ApiextensionsV1().CustomResourceDefinitions().Get(ctx(t), crd.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bad.Spec.Conversion.Webhook.ClientConfig.Service.Name = "no-such-service"
		if _, err := crdClient.ApiextensionsV1().CustomResourceDefinitions().Update(ctx(t), bad, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := dyn.Resource(v2).Namespace(ns).Get(ctx(t), "cr-instance-1", metav1.GetOptions{})
			var st apierrors.APIStatus
			if err == nil || !asAPIStatus(err, &st) {
				return false, nil
			}
			m := st.Status().Message
			if st.Status().Code != 500 || !strings.Contains(m, "conversion webhook for "+v1.GroupVersion().String()+", Kind="+crd.Spec.Names.Kind+" failed") {
				t.Logf("error while the definition changes: %v", err)
				return false, nil
			}
			return true, nil
		}, "conversion to fail with a 500")
		if _, err := dyn.Resource(v1).Namespace(ns).Get(ctx(t), "cr-instance-1", metav1.GetOptions{}); err != nil {
			t.Errorf("read in the storage version with a failing webhook: %v", err)
		}
	})

	t.Run("CustomResourceConversionWebhook [Privileged:ClusterAdmin] should be able to convert a non homogeneous list of CRs", func(t *testing.T) {
		crd := createConversionCRD(t, s, crdClient, "e2e-test-crd-webhook-b", ns, caPEM)
		v1, v2 := conversionGVRs(crd)
		waitConverting(t, dyn, crd, ns)
		cr1 := conversionCR(crd, "v1", "cr-instance-1", map[string]any{"hostPort": "localhost:8080"})
		if _, err := dyn.Resource(v1).Namespace(ns).Create(ctx(t), cr1, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// v2 becomes the storage version.
		crd, err := crdClient.ApiextensionsV1().CustomResourceDefinitions().Get(ctx(t), crd.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		crd.Spec.Versions[0].Storage, crd.Spec.Versions[1].Storage = false, true
		if crd, err = crdClient.ApiextensionsV1().CustomResourceDefinitions().Update(ctx(t), crd, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(crd.Status.StoredVersions, []string{"v1", "v2"}) {
			t.Errorf("storedVersions %v, want [v1 v2]", crd.Status.StoredVersions)
		}
		cr2 := conversionCR(crd, "v2", "cr-instance-2", map[string]any{"host": "localhost", "port": "8080"})
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			_, err := dyn.Resource(v2).Namespace(ns).Create(ctx(t), cr2, metav1.CreateOptions{})
			return err == nil, nil
		}, "create in v2")
		// cr-instance-2 is stored in v2 once the handlers have been rebuilt
		// for the new storage version; the lists below mix versions either
		// way since cr-instance-1 stays in v1.
		list, err := dyn.Resource(v1).Namespace(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 {
			t.Fatalf("v1 list has %d items", len(list.Items))
		}
		for _, it := range list.Items {
			if it.GetAPIVersion() != v1.GroupVersion().String() || it.Object["hostPort"] != "localhost:8080" || it.Object["host"] != nil {
				t.Errorf("v1 list item %v", it.Object)
			}
		}
		list, err = dyn.Resource(v2).Namespace(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 {
			t.Fatalf("v2 list has %d items", len(list.Items))
		}
		for _, it := range list.Items {
			if it.GetAPIVersion() != v2.GroupVersion().String() || it.Object["host"] != "localhost" || it.Object["port"] != "8080" || it.Object["hostPort"] != nil {
				t.Errorf("v2 list item %v", it.Object)
			}
		}
		// deletecollection converts what it answers too.
		if err := dyn.Resource(v1).Namespace(ns).DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		list, err = dyn.Resource(v2).Namespace(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("after deletecollection: %v %v", list, err)
		}
	})
}

// deployConversionWebhook runs test/images/crdconversion in a pod of ns
// behind the Service upstream's e2e uses (port 9443 → 9444), with a serving
// certificate for <service>.<ns>.svc signed by a CA of its own, and returns
// the CA (the definitions' caBundle).
func deployConversionWebhook(t *testing.T, cs kubernetes.Interface, ns string) []byte {
	t.Helper()
	caPEM, certPEM, keyPEM := servingCert(t, conversionService+"."+ns+".svc")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sample-webhook-secret"},
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx(t), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "sample-crd-conversion-webhook", "crd-webhook": "true"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-crd-conversion-webhook", Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64(1)),
			Containers: []corev1.Container{{
				Name: "sample-crd-conversion-webhook", Image: conversionImage, ImagePullPolicy: corev1.PullNever,
				Args: []string{"--tls-cert-file=/webhook.local.config/certificates/tls.crt",
					"--tls-private-key-file=/webhook.local.config/certificates/tls.key", "--port=9444"},
				Ports:        []corev1.ContainerPort{{ContainerPort: 9444}},
				VolumeMounts: []corev1.VolumeMount{{Name: "webhook-certs", MountPath: "/webhook.local.config/certificates", ReadOnly: true}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9444)}},
					PeriodSeconds: 1},
			}},
			Volumes: []corev1.Volume{{Name: "webhook-certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret.Name}}}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: conversionService, Labels: map[string]string{"test": "crd-webhook"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"crd-webhook": "true"},
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 9443, TargetPort: intstr.FromInt32(9444)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 120*time.Second, func() (bool, error) {
		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + conversionService})
		if err != nil {
			return false, nil
		}
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					return true, nil
				}
			}
		}
		return false, nil
	}, "the webhook's endpoints to be ready")
	return caPEM
}

// servingCert returns a CA and a certificate for dnsName it signed.
func servingCert(t *testing.T, dnsName string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e-crd-conversion-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// createConversionCRD creates, as upstream's spec does, a definition of
// stable.example.com with v1 (stored) and v2, both preserving unknown
// fields, converted by the webhook's Service at /crdconvert, and waits for
// it to be Established.
func createConversionCRD(t *testing.T, s *framework.Server, client apiextensionsclient.Interface, name, ns string, caPEM []byte) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object", XPreserveUnknownFields: ptr(true)}}
	plural := name + "s"
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + ".stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: name, Kind: "E2eTestCrdWebhook" + strings.ToUpper(name[len(name)-1:]), ListKind: "E2eTestCrdWebhook" + strings.ToUpper(name[len(name)-1:]) + "List"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schema},
				{Name: "v2", Served: true, Schema: schema},
			},
			Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig: &apiextensionsv1.WebhookClientConfig{
						CABundle: caPEM,
						Service:  &apiextensionsv1.ServiceReference{Namespace: ns, Name: conversionService, Path: ptr("/crdconvert"), Port: ptr(int32(9443))},
					},
					ConversionReviewVersions: []string{"v1", "v1beta1"},
				},
			},
		},
	}
	if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx(t), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	return waitEstablished(t, s, crd.Name)
}

func conversionGVRs(crd *apiextensionsv1.CustomResourceDefinition) (v1, v2 schema.GroupVersionResource) {
	gr := schema.GroupResource{Group: crd.Spec.Group, Resource: crd.Spec.Names.Plural}
	return gr.WithVersion("v1"), gr.WithVersion("v2")
}

func conversionCR(crd *apiextensionsv1.CustomResourceDefinition, version, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": crd.Spec.Group + "/" + version, "kind": crd.Spec.Names.Kind,
		"metadata": map[string]any{"name": name},
	}}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

// waitConverting waits until both versions are served and the webhook
// answers (as upstream's spec waits for the webhook to be ready) with a
// probe object created in v2, stored in v1, then deleted.
func waitConverting(t *testing.T, dyn dynamic.Interface, crd *apiextensionsv1.CustomResourceDefinition, ns string) {
	t.Helper()
	v1, v2 := conversionGVRs(crd)
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		if _, err := dyn.Resource(v1).Namespace(ns).List(ctx(t), metav1.ListOptions{}); err != nil {
			t.Logf("list in v1: %v", err)
			return false, nil
		}
		_, err := dyn.Resource(v2).Namespace(ns).Create(ctx(t), conversionCR(crd, "v2", "probe", nil), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Logf("create in v2: %v", err)
			return false, nil
		}
		return true, nil
	}, "the webhook to convert")
	if err := dyn.Resource(v2).Namespace(ns).Delete(ctx(t), "probe", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
