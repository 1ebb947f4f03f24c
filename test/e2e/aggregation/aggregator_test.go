// Package aggregation_test checks API aggregation end to end against the
// havre binary: an APIService delegating wardle.example.com/v1alpha1 to
// test/images/aggregated (run as a process beside the server, behind an
// ExternalName Service), its Available condition, the proxy with the
// front-proxy client certificate and the requester's identity, discovery,
// OpenAPI v3, and the group's removal with the APIService.
package aggregation_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/havre/havre/internal/pki"
	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

var ctx = framework.RequestContext

var flunders = schema.GroupVersionResource{Group: "wardle.example.com", Version: "v1alpha1", Resource: "flunders"}

// buildBackend builds test/images/aggregated.
func buildBackend(t *testing.T) string {
	t.Helper()
	root, err := framework.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "aggregated")
	cmd := exec.Command("go", "build", "-o", bin, "./test/images/aggregated")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the aggregated server: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func condition(t *testing.T, client aggregatorclient.Interface, name string) *apiregistrationv1.APIServiceCondition {
	t.Helper()
	api, err := client.ApiregistrationV1().APIServices().Get(ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return helper.GetAPIServiceConditionByType(api, apiregistrationv1.Available)
}

func waitReason(t *testing.T, client aggregatorclient.Interface, name string, status apiregistrationv1.ConditionStatus, reason string) {
	t.Helper()
	var last *apiregistrationv1.APIServiceCondition
	err := framework.WaitFor(60*time.Second, func() (bool, error) {
		last = condition(t, client, name)
		return last != nil && last.Status == status && last.Reason == reason, nil
	})
	if err != nil {
		t.Fatalf("APIService %s: want Available=%s (%s), have %+v", name, status, reason, last)
	}
}

// TestAggregatorProxiesToBackend registers the sample API, as upstream's
// "[sig-api-machinery] Aggregator Should be able to support the 1.17
// Sample API Server using the current Aggregator [Conformance]" does, with
// the sample server as a process behind an ExternalName Service rather
// than a Deployment: the APIService's Available condition goes through
// ServiceNotFound and FailedDiscoveryCheck to Passed, kubectl lists and
// gets flunders answered by the backend with the requester's identity
// (impersonated ones too, after Havre's own authorization), watches
// stream, the group is in legacy and aggregated discovery, its OpenAPI v3
// document in /openapi/v3 (kubectl explain flunders prints the backend's
// descriptions), and deleting the APIService takes them out.
func TestAggregatorProxiesToBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	backend := buildBackend(t)
	s := framework.StartServer(t, framework.WithoutWorkloadControllers())
	cs := s.Clientset()
	agg, err := aggregatorclient.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := framework.NewNamespace(t, cs, "aggregator")

	// What aggregated servers read to trust the front proxy.
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx(t), "extension-apiserver-authentication", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"requestheader-allowed-names":        `["front-proxy-client"]`,
		"requestheader-username-headers":     `["X-Remote-User"]`,
		"requestheader-group-headers":        `["X-Remote-Group"]`,
		"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
	} {
		if cm.Data[k] != want {
			t.Errorf("%s = %q, want %q", k, cm.Data[k], want)
		}
	}
	if !strings.Contains(cm.Data["client-ca-file"], "BEGIN CERTIFICATE") || !strings.Contains(cm.Data["requestheader-client-ca-file"], "BEGIN CERTIFICATE") ||
		cm.Data["client-ca-file"] == cm.Data["requestheader-client-ca-file"] {
		t.Fatalf("client-ca-file and requestheader-client-ca-file must be two CAs: %v", cm.Data)
	}

	// The backend's serving certificate, for the Service's DNS name.
	dir := t.TempDir()
	serving, err := pki.SelfSignedServing("sample-api", []string{"sample-api." + ns + ".svc"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serving.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(serving.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile := write("tls.crt", certPEM), write("tls.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	caFile := write("front-proxy-ca.crt", []byte(cm.Data["requestheader-client-ca-file"]))
	port := freePort(t)

	// Registered before its Service exists.
	apiName := "v1alpha1.wardle.example.com"
	_, err = agg.ApiregistrationV1().APIServices().Create(ctx(t), &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: apiName},
		Spec: apiregistrationv1.APIServiceSpec{
			Service: &apiregistrationv1.ServiceReference{Namespace: ns, Name: "sample-api", Port: new(int32(port))},
			Group:   "wardle.example.com", Version: "v1alpha1", CABundle: certPEM,
			GroupPriorityMinimum: 2000, VersionPriority: 200,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agg.ApiregistrationV1().APIServices().Delete(context.Background(), apiName, metav1.DeleteOptions{})
	})
	waitReason(t, agg, apiName, apiregistrationv1.ConditionFalse, "ServiceNotFound")
	if c := condition(t, agg, apiName); c.Message != fmt.Sprintf("service/sample-api in %q is not present", ns) {
		t.Errorf("message %q", c.Message)
	}
	if out, _, err := s.Kubectl("get", "flunders", "-n", ns); err == nil {
		t.Errorf("flunders served while the APIService is unavailable:\n%s", out)
	}

	_, err = cs.CoreV1().Services(ns).Create(ctx(t), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-api"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitReason(t, agg, apiName, apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck")

	cmd := exec.Command(backend, "-port", fmt.Sprint(port), "-cert", certFile, "-key", keyFile, "-requestheader-client-ca-file", caFile)
	logFile, err := os.Create(filepath.Join(dir, "backend.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("backend log:\n%s", b)
		}
	})
	waitReason(t, agg, apiName, apiregistrationv1.ConditionTrue, "Passed")
	out, _, err := s.Kubectl("get", "apiservice", apiName)
	if err != nil || !strings.Contains(out, ns+"/sample-api") || !strings.Contains(out, "True") {
		t.Errorf("kubectl get apiservice: %v\n%s", err, out)
	}

	// kubectl get, answered by the backend as the admin.
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, _, err = s.Kubectl("get", "flunders", "-n", ns)
		return err == nil, nil
	}, "kubectl get flunders")
	if !strings.Contains(out, "alpha") || !strings.Contains(out, "beta") || !strings.Contains(out, pki.AdminUser) {
		t.Errorf("kubectl get flunders:\n%s", out)
	}
	obj, err := s.Dynamic().Resource(flunders).Namespace(ns).Get(ctx(t), "alpha", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var who struct {
		User   string   `json:"user"`
		Groups []string `json:"groups"`
	}
	if err := json.Unmarshal([]byte(obj.GetAnnotations()["wardle.example.com/requester"]), &who); err != nil {
		t.Fatal(err)
	}
	if who.User != pki.AdminUser || !slices.Contains(who.Groups, "system:masters") || !slices.Contains(who.Groups, "system:authenticated") {
		t.Errorf("requester forwarded: %+v", who)
	}

	// An impersonated user is authorized by Havre first, then forwarded.
	if out, stderr, err := s.Kubectl("get", "flunders", "-n", ns, "--as", "alice", "--as-group", "wardlers"); err == nil || !strings.Contains(stderr, "forbidden") {
		t.Errorf("alice without a role: %v\n%s%s", err, out, stderr)
	}
	_, err = cs.RbacV1().Roles(ns).Create(ctx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "flunder-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"wardle.example.com"}, Resources: []string{"flunders"}, Verbs: []string{"get", "list", "watch"}}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "flunder-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flunder-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "wardlers"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, _, err = s.Kubectl("get", "flunder", "alpha", "-n", ns, "--as", "alice", "--as-group", "wardlers", "-o", "json")
		return err == nil, nil
	}, "alice's kubectl get flunder")
	if !strings.Contains(out, `\"user\":\"alice\"`) || !strings.Contains(out, `wardlers`) {
		t.Errorf("alice's requester not forwarded:\n%s", out)
	}

	// Watches stream through the proxy.
	w, err := s.Dynamic().Resource(flunders).Namespace(ns).Watch(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added {
			t.Errorf("first watch event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Error("no watch event through the proxy")
	}
	w.Stop()

	// Discovery: the legacy group list and aggregated discovery.
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, _, err = s.Kubectl("api-resources", "--api-group", "wardle.example.com")
		return err == nil && strings.Contains(out, "flunders"), nil
	}, "flunders in kubectl api-resources: %s", out)
	groups, err := cs.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "wardle.example.com" }) {
		t.Errorf("wardle.example.com not in /apis")
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/apis").SetHeader("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").DoRaw(ctx(t))
	if err != nil || !strings.Contains(string(raw), `"flunders"`) {
		t.Errorf("aggregated discovery lacks flunders: %v", err)
	}

	// OpenAPI v3: the backend's document, listed in /openapi/v3, is what
	// kubectl explain reads.
	const openAPIName = "apis/wardle.example.com/v1alpha1"
	for _, tt := range []struct{ field, want string }{
		{"flunders", "Flunder is the example kind of the aggregated test server"},
		{"flunders", "Spec is what the flunder refers to."},
		{"flunders.spec", "Reference names the user who asked for the flunder, as the front proxy said."},
	} {
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			out, stderr, err := s.Kubectl("explain", tt.field)
			if err != nil || !strings.Contains(out, tt.want) {
				return false, fmt.Errorf("%v: %s%s", err, out, stderr)
			}
			return true, nil
		}, "kubectl explain %s lacks %q", tt.field, tt.want)
	}
	if !slices.Contains(openAPIV3Names(t, s), openAPIName) {
		t.Errorf("%s not in /openapi/v3", openAPIName)
	}

	// Deleting the APIService takes the group out.
	if err := agg.ApiregistrationV1().APIServices().Delete(ctx(t), apiName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		return !slices.Contains(openAPIV3Names(t, s), openAPIName), nil
	}, "%s still in /openapi/v3 after the APIService's deletion", openAPIName)
	if raw, err := cs.Discovery().RESTClient().Get().AbsPath("/openapi/v3/" + openAPIName).DoRaw(ctx(t)); err == nil {
		t.Errorf("/openapi/v3/%s still served after the APIService's deletion:\n%.200s", openAPIName, raw)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		groups, err := cs.Discovery().ServerGroups()
		if err != nil {
			return false, err
		}
		return !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "wardle.example.com" }), nil
	}, "wardle.example.com still in /apis after the APIService's deletion")
	if _, _, err := s.Kubectl("get", "flunders", "-n", ns); err == nil {
		t.Error("flunders still served after the APIService's deletion")
	}
}

// openAPIV3Names returns the names of the documents /openapi/v3 lists.
func openAPIV3Names(t *testing.T, s *framework.Server) []string {
	t.Helper()
	raw, err := s.Clientset().Discovery().RESTClient().Get().AbsPath("/openapi/v3").DoRaw(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range index.Paths {
		names = append(names, name)
	}
	return names
}

// TestLocalAPIServices checks the APIServices of the served group
// versions, as kube-apiserver's autoregister and crdregistration keep
// them: kubectl get apiservices lists them Local and Available.
func TestLocalAPIServices(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t, framework.WithoutWorkloadControllers())
	out, _, err := s.Kubectl("get", "apiservices")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NAME", "SERVICE", "AVAILABLE", "AGE", "v1.", "v1.apps", "v1.apiregistration.k8s.io", "v2.autoscaling"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get apiservices lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 3 || f[1] != "Local" || f[2] != "True" {
			t.Errorf("not Local and available: %q", line)
		}
	}
	// A CustomResourceDefinition's group versions get theirs
	// (crdregistration), and lose them with it.
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.toys.example.com
spec:
  group: toys.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
`
	if _, stderr, err := s.KubectlStdin(crd, "create", "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		out, _, err := s.Kubectl("get", "apiservice", "v1beta1.toys.example.com", "-o", "jsonpath={.metadata.labels.kube-aggregator\\.kubernetes\\.io/automanaged} {.spec.groupPriorityMinimum} {.status.conditions[0].reason}")
		return err == nil && out == "true 1000 Local", nil
	}, "the custom resources' APIService")
	if _, stderr, err := s.Kubectl("delete", "crd", "gadgets.toys.example.com"); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		_, stderr, err := s.Kubectl("get", "apiservice", "v1beta1.toys.example.com")
		return err != nil && strings.Contains(stderr, "NotFound"), nil
	}, "the custom resources' APIService gone with its definition")

	// Validation as upstream's: the name must be version.group.
	_, stderr, err := s.KubectlStdin(`apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1.wrong.example.com
spec:
  group: example.com
  version: v1
  groupPriorityMinimum: 100
  versionPriority: 10
`, "create", "-f", "-")
	if err == nil || !strings.Contains(stderr, "must be `spec.version+\".\"+spec.group`") {
		t.Errorf("misnamed APIService: %v %s", err, stderr)
	}
}
