// Package api_test is the acceptance suite of Havre's API core: it drives
// the real havre binary over HTTPS with client-go (typed, dynamic,
// informers), raw HTTP and the upstream kubectl, and asserts the behaviour
// kube-apiserver has.
package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// startServer starts a server for one top-level test; e2e tests are skipped
// with -short.
func startServer(t *testing.T, opts ...framework.Option) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	// The suite checks the API's own semantics (status subresources,
	// generations) on workload objects their controllers would change.
	return framework.StartServer(t, append([]framework.Option{framework.WithoutWorkloadControllers()}, opts...)...)
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

// newNamespace creates a namespace with a generated name for one test.
func newNamespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	return framework.NewNamespace(t, cs, "e2e")
}

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
}

func mustCreateConfigMap(t testing.TB, cs kubernetes.Interface, ns string, cm *corev1.ConfigMap) *corev1.ConfigMap {
	t.Helper()
	out, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating configmap %s/%s: %v", ns, cm.Name, err)
	}
	return out
}

// createConfigMaps creates n configmaps named prefix-000.. with 8 workers.
func createConfigMaps(t testing.TB, cs kubernetes.Interface, ns, prefix string, n int, labels map[string]string) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	errs := make(chan error, n)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				cm := configMap(name, map[string]string{"k": name})
				cm.Labels = labels
				_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), cm, metav1.CreateOptions{})
				if err != nil {
					errs <- fmt.Errorf("creating %s: %w", name, err)
				}
			}
		}()
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return names
}

// statusOf returns the metav1.Status carried by a client-go error.
func statusOf(t testing.TB, err error) metav1.Status {
	t.Helper()
	var se apierrors.APIStatus
	if err == nil {
		t.Fatal("expected an error, got none")
	}
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) carries no metav1.Status", err, err)
	}
	return se.Status()
}

// expectStatus fails unless err is an API error with the given code and
// reason.
func expectStatus(t testing.TB, err error, code int32, reason metav1.StatusReason) metav1.Status {
	t.Helper()
	st := statusOf(t, err)
	if st.Code != code || st.Reason != reason {
		t.Fatalf("got %d %s (%q), want %d %s", st.Code, st.Reason, st.Message, code, reason)
	}
	return st
}

// rawResponse is one answer of a raw HTTP request.
type rawResponse struct {
	Code        int
	ContentType string
	Body        []byte
}

// do sends a raw request with the given client.
func do(t testing.TB, client *http.Client, method, url, contentType, accept string, body []byte) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return rawResponse{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data}
}

// decodeStatus parses a JSON metav1.Status body and checks its envelope.
func decodeStatus(t testing.TB, r rawResponse) metav1.Status {
	t.Helper()
	if !strings.HasPrefix(r.ContentType, "application/json") {
		t.Fatalf("status body has Content-Type %q, want application/json; body: %.500s", r.ContentType, r.Body)
	}
	var st metav1.Status
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("body is not a Status: %v; body: %.500s", err, r.Body)
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
		t.Fatalf("not a failure Status (kind %q apiVersion %q status %q): %.500s", st.Kind, st.APIVersion, st.Status, r.Body)
	}
	if int(st.Code) != r.Code {
		t.Fatalf("Status.code %d differs from the HTTP code %d", st.Code, r.Code)
	}
	return st
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rootCAConfigMap is the ConfigMap kube-controller-manager publishes in
// every namespace; tests that count configmaps ignore it, so that they hold
// whether or not the server publishes it.
const rootCAConfigMap = "kube-root-ca.crt"

// configMapNames returns the names of the items, without rootCAConfigMap.
func configMapNames(items []corev1.ConfigMap) []string {
	names := make([]string, 0, len(items))
	for _, cm := range items {
		if cm.Name != rootCAConfigMap {
			names = append(names, cm.Name)
		}
	}
	return names
}
