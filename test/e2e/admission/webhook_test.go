package admission_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

const (
	webhookImage = "havre.test/webhook:e2e"
	serviceName  = "e2e-test-webhook"
	// nsLabel marks the namespaces the tests' webhooks apply to (their
	// namespaceSelector), so that the server's own writes elsewhere are
	// left alone.
	nsLabel = "webhook-e2e-ns"
)

// webhookServer is the test webhook running in the cluster.
type webhookServer struct {
	s      *framework.Server
	cs     kubernetes.Interface
	ns     string // where the webhook runs
	caPEM  []byte
	target string // a namespace the webhooks apply to (labelled nsLabel)
	other  string // a namespace they do not apply to
}

// startWebhook starts a server with its agent and deploys the webhook
// image behind Service e2e-test-webhook, with a serving certificate for
// the Service's DNS name signed by a CA of the test's.
func startWebhook(t *testing.T) *webhookServer {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/webhook", webhookImage)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", "admission-e2e"))
	cs := s.Clientset()
	framework.Eventually(t, 90*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(framework.RequestContext(t), "admission-e2e", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}, "node Ready")
	s.ImportImage(t, archive)

	w := &webhookServer{s: s, cs: cs, ns: framework.NewNamespace(t, cs, "webhook")}
	caPEM, certPEM, keyPEM := serving(t, serviceName+"."+w.ns+".svc")
	w.caPEM = caPEM
	ctx := framework.RequestContext(t)
	if _, err := cs.CoreV1().Secrets(w.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-certs"},
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "sample-webhook"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-webhook-deployment"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(1)),
					Containers: []corev1.Container{{
						Name: "sample-webhook", Image: webhookImage, ImagePullPolicy: corev1.PullNever,
						Args:         []string{"--tls-cert-file=/certs/tls.crt", "--tls-private-key-file=/certs/tls.key", "--port=8444"},
						Ports:        []corev1.ContainerPort{{ContainerPort: 8444}},
						VolumeMounts: []corev1.VolumeMount{{Name: "certs", MountPath: "/certs", ReadOnly: true}},
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Scheme: corev1.URISchemeHTTPS, Path: "/healthz", Port: intstr.FromInt32(8444)}}},
					}},
					Volumes: []corev1.Volume{{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "webhook-certs"}}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(w.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(w.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 8443, TargetPort: intstr.FromInt32(8444)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 120*time.Second, func() (bool, error) {
		slices, err := cs.DiscoveryV1().EndpointSlices(w.ns).List(framework.RequestContext(t), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + serviceName})
		if err != nil {
			return false, err
		}
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					return true, nil
				}
			}
		}
		return false, nil
	}, "a ready endpoint of the webhook Service")

	w.target = framework.NewNamespace(t, cs, "target")
	ns, err := cs.CoreV1().Namespaces().Get(ctx, w.target, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels[nsLabel] = "true"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.other = framework.NewNamespace(t, cs, "other")
	return w
}

// serving returns a CA and a serving certificate and key for host.
func serving(t *testing.T, host string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook-e2e-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// clientConfig points at path of the webhook Service.
func (w *webhookServer) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{
		Service:  &admissionregistrationv1.ServiceReference{Namespace: w.ns, Name: serviceName, Path: &path, Port: new(int32(8443))},
		CABundle: w.caPEM,
	}
}

func rule(resources ...string) []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: resources},
	}}
}

var (
	sideEffectsNone = new(admissionregistrationv1.SideEffectClassNone)
	onlyTarget      = &metav1.LabelSelector{MatchLabels: map[string]string{nsLabel: "true"}}
)

// validating creates a ValidatingWebhookConfiguration and waits until the
// server calls it, removing it at the end of the test.
func (w *webhookServer) validating(t *testing.T, name string, hooks ...admissionregistrationv1.ValidatingWebhook) {
	t.Helper()
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(framework.RequestContext(t), c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func (w *webhookServer) mutating(t *testing.T, name string, hooks ...admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	c := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := w.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(framework.RequestContext(t), c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
}

// eventuallyDenied retries a create until the webhook (just registered)
// answers it, and checks its message.
func eventuallyDenied(t *testing.T, create func() error, want string) error {
	t.Helper()
	var last error
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		last = create()
		return last != nil && strings.Contains(last.Error(), want), nil
	}, "a create denied with %q", want)
	return last
}

func TestAdmissionWebhook(t *testing.T) {
	w := startWebhook(t)
	cms := func(ns string) func(*corev1.ConfigMap) error {
		return func(cm *corev1.ConfigMap) error {
			_, err := w.cs.CoreV1().ConfigMaps(ns).Create(framework.RequestContext(t), cm, metav1.CreateOptions{})
			return err
		}
	}

	t.Run("should be able to deny pod and configmap creation", func(t *testing.T) {
		w.validating(t, "deny-unwanted-pod-container-name-and-label",
			admissionregistrationv1.ValidatingWebhook{Name: "deny-unwanted-pod-container-name-and-label.k8s.io",
				ClientConfig: w.clientConfig("/pods"), Rules: rule("pods"), SideEffects: sideEffectsNone,
				NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1", "v1beta1"}},
			admissionregistrationv1.ValidatingWebhook{Name: "deny-unwanted-configmap-data.k8s.io",
				ClientConfig: w.clientConfig("/configmaps"), Rules: rule("configmaps"), SideEffects: sideEffectsNone,
				NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1", "v1beta1"}})
		bad := map[string]string{"webhook-e2e-test": "webhook-disallow"}
		i := 0
		err := eventuallyDenied(t, func() error {
			i++
			return cms(w.target)(configMap("disallowed-configmap-"+string(rune('a'+i%26)), bad))
		}, "the configmap contains unwanted key and value")
		if !apierrors.IsBadRequest(err) && !apierrors.IsForbidden(err) {
			t.Errorf("denial: %v (reason %s)", err, apierrors.ReasonForError(err))
		}
		if !strings.Contains(err.Error(), `admission webhook "deny-unwanted-configmap-data.k8s.io" denied the request`) {
			t.Errorf("denial message: %v", err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "disallowed-pod"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "webhook-disallow", Image: "does-not-matter"}}}}
		_, err = w.cs.CoreV1().Pods(w.target).Create(framework.RequestContext(t), pod, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "the pod contains unwanted container name") {
			t.Errorf("pod create: %v, want the webhook's denial", err)
		}
		if err := cms(w.target)(configMap("allowed-configmap", map[string]string{"fine": "yes"})); err != nil {
			t.Errorf("allowed configmap: %v", err)
		}
		// namespaceSelector: another namespace is not the webhook's.
		if err := cms(w.other)(configMap("disallowed-elsewhere", bad)); err != nil {
			t.Errorf("configmap outside the webhook's namespaces: %v", err)
		}
		// An update to disallowed data is denied too.
		cm, err := w.cs.CoreV1().ConfigMaps(w.target).Get(framework.RequestContext(t), "allowed-configmap", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data = bad
		if _, err := w.cs.CoreV1().ConfigMaps(w.target).Update(framework.RequestContext(t), cm, metav1.UpdateOptions{}); err == nil ||
			!strings.Contains(err.Error(), "the configmap contains unwanted key and value") {
			t.Errorf("update to disallowed data: %v", err)
		}
		// A dry run is offered to webhooks with sideEffects None, and denied.
		if _, err := w.cs.CoreV1().ConfigMaps(w.target).Create(framework.RequestContext(t), configMap("dry-run", bad),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "unwanted key and value") {
			t.Errorf("dry-run create: %v, want the webhook's denial", err)
		}
	})

	t.Run("should mutate configmap", func(t *testing.T) {
		hook := func(name string) admissionregistrationv1.MutatingWebhook {
			return admissionregistrationv1.MutatingWebhook{Name: name, ClientConfig: w.clientConfig("/mutating-configmaps"),
				Rules: rule("configmaps"), SideEffects: sideEffectsNone, NamespaceSelector: onlyTarget,
				AdmissionReviewVersions: []string{"v1", "v1beta1"}}
		}
		w.mutating(t, "mutate-configmap", hook("adding-configmap-data-stage-1.k8s.io"), hook("adding-configmap-data-stage-2.k8s.io"))
		var got *corev1.ConfigMap
		i := 0
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			i++
			name := "to-be-mutated-" + string(rune('a'+i%26))
			cm, err := w.cs.CoreV1().ConfigMaps(w.target).Create(framework.RequestContext(t), configMap(name, map[string]string{"mutation-start": "yes"}), metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			got = cm
			return cm.Data["mutation-stage-1"] == "yes", nil
		}, "a mutated configmap")
		want := map[string]string{"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"}
		if !equalMaps(got.Data, want) {
			t.Errorf("data %v, want %v", got.Data, want)
		}
		// A dry run answers the mutated object and stores nothing.
		dry, err := w.cs.CoreV1().ConfigMaps(w.target).Create(framework.RequestContext(t), configMap("dry-run-mutated", nil),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil || dry.Data["mutation-stage-1"] != "yes" {
			t.Errorf("dry-run create: %v, data %v", err, dry)
		}
		if _, err := w.cs.CoreV1().ConfigMaps(w.target).Get(framework.RequestContext(t), "dry-run-mutated", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry-run configmap stored: %v", err)
		}
		// Outside the namespaceSelector nothing changes.
		cm, err := w.cs.CoreV1().ConfigMaps(w.other).Create(framework.RequestContext(t), configMap("not-mutated", map[string]string{"a": "b"}), metav1.CreateOptions{})
		if err != nil || len(cm.Data) != 1 {
			t.Errorf("configmap outside the selector: %v, %v", err, cm)
		}
	})

	t.Run("should mutate pod and apply defaults after mutation", func(t *testing.T) {
		w.mutating(t, "adding-init-container", admissionregistrationv1.MutatingWebhook{Name: "adding-init-container.k8s.io",
			ClientConfig: w.clientConfig("/mutating-pods"), Rules: rule("pods"), SideEffects: sideEffectsNone,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1", "v1beta1"}})
		var pod *corev1.Pod
		i := 0
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			i++
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "webhook-to-be-mutated-" + string(rune('a'+i%26))}, Spec: corev1.PodSpec{
				NodeName:   "nowhere", // never runs
				Containers: []corev1.Container{{Name: "example", Image: webhookImage}}}}
			out, err := w.cs.CoreV1().Pods(w.target).Create(framework.RequestContext(t), p, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			pod = out
			return len(out.Spec.InitContainers) == 1, nil
		}, "a pod with the webhook's init container")
		c := pod.Spec.InitContainers[0]
		if c.Name != "webhook-added-init-container" || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile ||
			c.TerminationMessagePath != "/dev/termination-log" || c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("init container not defaulted: %+v", c)
		}
	})

	t.Run("should unconditionally reject operations on fail closed webhook", func(t *testing.T) {
		// A Service with no endpoints: the call fails, failurePolicy decides.
		if _, err := w.cs.CoreV1().Services(w.ns).Create(framework.RequestContext(t), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "no-endpoints"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "none"}, Ports: []corev1.ServicePort{{Port: 443}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cc := func() admissionregistrationv1.WebhookClientConfig {
			c := w.clientConfig("/configmaps")
			c.Service.Name = "no-endpoints"
			c.Service.Port = new(int32(443))
			return c
		}
		ignore, fail := admissionregistrationv1.Ignore, admissionregistrationv1.Fail
		w.validating(t, "fail-open", admissionregistrationv1.ValidatingWebhook{Name: "fail-open.k8s.io", ClientConfig: cc(),
			Rules: rule("configmaps"), SideEffects: sideEffectsNone, FailurePolicy: &ignore,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}})
		time.Sleep(2 * time.Second) // the configuration reaches the server's informer
		if err := cms(w.target)(configMap("fail-open", nil)); err != nil {
			t.Errorf("failurePolicy Ignore: %v", err)
		}
		w.validating(t, "fail-closed", admissionregistrationv1.ValidatingWebhook{Name: "fail-closed.k8s.io", ClientConfig: cc(),
			Rules: rule("configmaps"), SideEffects: sideEffectsNone, FailurePolicy: &fail,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}})
		err := eventuallyDenied(t, func() error { return cms(w.target)(configMap("fail-closed", nil)) }, `failed calling webhook "fail-closed.k8s.io"`)
		if !apierrors.IsInternalError(err) {
			t.Errorf("fail closed: %v (reason %s), want an internal error", err, apierrors.ReasonForError(err))
		}
	})

	t.Run("should not be able to mutate or prevent deletion of webhook configuration objects", func(t *testing.T) {
		all := []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{"admissionregistration.k8s.io"}, APIVersions: []string{"*"},
				Resources: []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}},
		}}
		w.validating(t, "deny-webhook-configuration-deletions", admissionregistrationv1.ValidatingWebhook{
			Name: "deny-webhook-configuration-deletions.k8s.io", ClientConfig: w.clientConfig("/always-deny"),
			Rules: all, SideEffects: sideEffectsNone, AdmissionReviewVersions: []string{"v1"}})
		time.Sleep(2 * time.Second)
		name := "dummy-validating-webhook-configuration"
		c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "dummy.k8s.io", ClientConfig: w.clientConfig("/always-deny"),
				Rules: rule("nothing"), SideEffects: sideEffectsNone, AdmissionReviewVersions: []string{"v1"}}}}
		if _, err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(framework.RequestContext(t), c, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating a webhook configuration past an always-deny webhook: %v", err)
		}
		if err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(framework.RequestContext(t), name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting it: %v", err)
		}
	})

	t.Run("should honor timeout", func(t *testing.T) {
		slow := func(name string, timeout int32, policy admissionregistrationv1.FailurePolicyType) admissionregistrationv1.ValidatingWebhook {
			return admissionregistrationv1.ValidatingWebhook{Name: name, ClientConfig: w.clientConfig("/always-allow-delay-5s"),
				Rules: rule("configmaps"), SideEffects: sideEffectsNone, FailurePolicy: &policy, TimeoutSeconds: &timeout,
				NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}}
		}
		w.validating(t, "slow-fail-closed", slow("allow-configmap-with-delay-webhook.k8s.io", 1, admissionregistrationv1.Fail))
		eventuallyDenied(t, func() error { return cms(w.target)(configMap("slow-"+fmt.Sprint(time.Now().UnixNano()), nil)) }, "deadline exceeded")
		_ = w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(framework.RequestContext(t), "slow-fail-closed", metav1.DeleteOptions{})
		w.validating(t, "slow-fail-open", slow("allow-configmap-with-delay-webhook.k8s.io", 1, admissionregistrationv1.Ignore))
		time.Sleep(2 * time.Second)
		if err := cms(w.target)(configMap("slow-ignored", nil)); err != nil {
			t.Errorf("timeout with failurePolicy Ignore: %v", err)
		}
	})

	t.Run("should be able to create and update validating webhook configurations with match conditions", func(t *testing.T) {
		w.validating(t, "deny-with-match-conditions", admissionregistrationv1.ValidatingWebhook{Name: "deny-configmaps.k8s.io",
			ClientConfig: w.clientConfig("/configmaps"), Rules: rule("configmaps"), SideEffects: sideEffectsNone,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "skip-me", Expression: "object.metadata.name != 'skip-me'"}}})
		bad := map[string]string{"webhook-e2e-test": "webhook-disallow"}
		eventuallyDenied(t, func() error { return cms(w.target)(configMap("cm-"+fmt.Sprint(time.Now().UnixNano()), bad)) }, "unwanted key and value")
		if err := cms(w.target)(configMap("skip-me", bad)); err != nil {
			t.Errorf("object the match condition excludes: %v", err)
		}
	})

	t.Run("listing validating webhooks should work", func(t *testing.T) {
		for i := range 2 {
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("listed-%d", i), Labels: map[string]string{"e2e-list-test-uuid": "x"}},
				Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "deny-configmaps.k8s.io",
					ClientConfig: w.clientConfig("/configmaps"), Rules: rule("configmaps"), SideEffects: sideEffectsNone,
					NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}}}}
			if _, err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(framework.RequestContext(t), c, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		list, err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(framework.RequestContext(t), metav1.ListOptions{LabelSelector: "e2e-list-test-uuid=x"})
		if err != nil || len(list.Items) != 2 {
			t.Fatalf("list: %v, %d items", err, len(list.Items))
		}
		bad := map[string]string{"webhook-e2e-test": "webhook-disallow"}
		eventuallyDenied(t, func() error { return cms(w.target)(configMap("listed-"+fmt.Sprint(time.Now().UnixNano()), bad)) }, "unwanted key and value")
		if err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().DeleteCollection(framework.RequestContext(t), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "e2e-list-test-uuid=x"}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			return cms(w.target)(configMap("after-delete-"+fmt.Sprint(time.Now().UnixNano()), bad)) == nil, nil
		}, "configmaps allowed once the configurations are gone")
	})

	t.Run("should mutate custom resource and deny custom resource creation, update and deletion", func(t *testing.T) {
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-test-webhook-crds.webhook.example.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "webhook.example.com", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "e2e-test-webhook-crds", Kind: "E2eTestWebhookCrd", ListKind: "E2eTestWebhookCrdList", Singular: "e2e-test-webhook-crd"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
						Properties: map[string]apiextensionsv1.JSONSchemaProps{"data": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true,
							Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}}}}}},
			},
		}
		ext := apiextensionsclient.NewForConfigOrDie(w.s.RESTConfig())
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(framework.RequestContext(t), crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
		})
		crRule := []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"webhook.example.com"}, APIVersions: []string{"v1"}, Resources: []string{"e2e-test-webhook-crds"}},
		}}
		w.mutating(t, "mutate-custom-resource", admissionregistrationv1.MutatingWebhook{Name: "mutate-custom-resource-data-stage-1.k8s.io",
			ClientConfig: w.clientConfig("/mutating-custom-resource"), Rules: crRule, SideEffects: sideEffectsNone,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}})
		w.validating(t, "deny-custom-resource", admissionregistrationv1.ValidatingWebhook{Name: "deny-unwanted-custom-resource-data.k8s.io",
			ClientConfig: w.clientConfig("/custom-resource"), Rules: crRule, SideEffects: sideEffectsNone,
			NamespaceSelector: onlyTarget, AdmissionReviewVersions: []string{"v1"}})
		gvr := schema.GroupVersionResource{Group: "webhook.example.com", Version: "v1", Resource: "e2e-test-webhook-crds"}
		cr := func(name string, data map[string]any) *unstructured.Unstructured {
			return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "webhook.example.com/v1", "kind": "E2eTestWebhookCrd",
				"metadata": map[string]any{"name": name}, "data": data}}
		}
		crs := w.s.Dynamic().Resource(gvr).Namespace(w.target)
		var got *unstructured.Unstructured
		var last error
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			out, err := crs.Create(framework.RequestContext(t), cr("cr-"+fmt.Sprint(time.Now().UnixNano()), map[string]any{"mutation-start": "yes"}), metav1.CreateOptions{})
			if err != nil {
				if last == nil || last.Error() != err.Error() {
					t.Logf("creating a custom resource: %v", err)
				}
				last = err
				return false, nil // the resource is being served
			}
			got = out
			data, _, _ := unstructured.NestedStringMap(out.Object, "data")
			return data["mutation-stage-1"] == "yes", nil
		}, "a mutated custom resource")
		if data, _, _ := unstructured.NestedStringMap(got.Object, "data"); data["mutation-start"] != "yes" {
			t.Errorf("data %v", data)
		}
		_, err := crs.Create(framework.RequestContext(t), cr("denied", map[string]any{"webhook-e2e-test": "webhook-disallow"}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "the custom resource contains unwanted data") {
			t.Errorf("denied custom resource: %v", err)
		}
		got.Object["data"] = map[string]any{"webhook-e2e-test": "webhook-disallow"}
		if _, err := crs.Update(framework.RequestContext(t), got, metav1.UpdateOptions{}); err == nil ||
			!strings.Contains(err.Error(), "the custom resource contains unwanted data") {
			t.Errorf("update to unwanted data: %v", err)
		}
	})

	t.Run("should be able to deny attaching pod", func(t *testing.T) {
		w.validating(t, "deny-attaching-pod", admissionregistrationv1.ValidatingWebhook{Name: "deny-attaching-pod.k8s.io",
			ClientConfig: w.clientConfig("/pods/attach"), SideEffects: sideEffectsNone, AdmissionReviewVersions: []string{"v1"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Connect},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/attach"}},
			}}})
		pods, err := w.cs.CoreV1().Pods(w.ns).List(framework.RequestContext(t), metav1.ListOptions{LabelSelector: "app=sample-webhook"})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("webhook pods: %v", err)
		}
		name := pods.Items[0].Name
		var out string
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			stdout, stderr, _ := w.s.Kubectl("-n", w.ns, "attach", name, "-c", "sample-webhook", "--pod-running-timeout=5s")
			out = stdout + stderr
			return strings.Contains(out, "attaching to pod '"+name+"' is not allowed"), nil
		}, "kubectl attach denied by the webhook")
	})

	t.Run("webhook configurations are validated", func(t *testing.T) {
		unknown := admissionregistrationv1.SideEffectClassUnknown
		c := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "invalid"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "invalid", ClientConfig: w.clientConfig("/pods"),
				Rules: rule("pods"), SideEffects: &unknown, AdmissionReviewVersions: []string{"v1"},
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "bad", Expression: "object.metadata.name =="}}}}}
		_, err := w.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(framework.RequestContext(t), c, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("invalid configuration: %v, want 422", err)
		}
		for _, want := range []string{"webhooks[0].name", "webhooks[0].sideEffects", "webhooks[0].matchConditions[0].expression"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
