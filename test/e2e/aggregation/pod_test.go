package aggregation_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/havre/havre/internal/pki"
	"github.com/havre/havre/test/framework"
)

const backendImage = "havre.local/e2e-aggregated:v1"

// TestAggregatorWithBackendPod runs test/images/aggregated as a pod behind
// a ClusterIP Service, as upstream's sample API server conformance test
// deploys it: the APIService is unavailable (MissingEndpoints) until the
// pod is ready, then Passed, and kubectl get flunders reaches the pod
// through the Service's endpoints.
func TestAggregatorWithBackendPod(t *testing.T) {
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/aggregated", backendImage)
	s := framework.StartServer(t, framework.WithAgent())
	cs := s.Clientset()
	framework.Eventually(t, 90*time.Second, func() (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
		if err != nil || len(nodes.Items) == 0 {
			return false, err
		}
		for _, c := range nodes.Items[0].Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}, "node Ready")
	s.ImportImage(t, archive)
	agg, err := aggregatorclient.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := framework.NewNamespace(t, cs, "aggregator-pod")

	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx(t), "extension-apiserver-authentication", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.SelfSignedServing("sample-api", []string{"sample-api." + ns + ".svc"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serving.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(serving.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sample-api"},
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
			"requestheader-client-ca-file": []byte(cm.Data["requestheader-client-ca-file"])}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Services(ns).Create(ctx(t), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-api"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "sample-api"},
			Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apiName := "v1alpha1.wardle.example.com"
	_, err = agg.ApiregistrationV1().APIServices().Create(ctx(t), &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: apiName},
		Spec: apiregistrationv1.APIServiceSpec{
			Service: &apiregistrationv1.ServiceReference{Namespace: ns, Name: "sample-api"},
			Group:   "wardle.example.com", Version: "v1alpha1", CABundle: certPEM,
			GroupPriorityMinimum: 2000, VersionPriority: 200,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agg.ApiregistrationV1().APIServices().Delete(ctx(t), apiName, metav1.DeleteOptions{})
	})
	var last *apiregistrationv1.APIServiceCondition
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		last = condition(t, agg, apiName)
		return last != nil && last.Status == apiregistrationv1.ConditionFalse &&
			(last.Reason == "MissingEndpoints" || last.Reason == "EndpointsNotFound"), nil
	}, "APIService without ready endpoints")

	_, err = cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-api", Labels: map[string]string{"app": "sample-api"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "api", Image: backendImage, ImagePullPolicy: corev1.PullNever,
				Args: []string{"-port", "8443", "-cert", "/certs/tls.crt", "-key", "/certs/tls.key",
					"-requestheader-client-ca-file", "/certs/requestheader-client-ca-file"},
				Ports:        []corev1.ContainerPort{{ContainerPort: 8443}},
				VolumeMounts: []corev1.VolumeMount{{Name: "certs", MountPath: "/certs"}}}},
			Volumes: []corev1.Volume{{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sample-api"}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitReason(t, agg, apiName, apiregistrationv1.ConditionTrue, "Passed")
	var out string
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, _, err = s.Kubectl("get", "flunders", "-n", ns)
		return err == nil, nil
	}, "kubectl get flunders")
	if !strings.Contains(out, "alpha") || !strings.Contains(out, pki.AdminUser) {
		t.Errorf("kubectl get flunders:\n%s", out)
	}
}
