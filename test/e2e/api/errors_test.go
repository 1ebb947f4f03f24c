package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestErrorResponses checks the HTTP code and the metav1.Status reason of
// kube-apiserver's answers to bad requests.
func TestErrorResponses(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	ns := newNamespace(t, cs)
	client := s.HTTPClient()
	nsURL := s.URL("/api/v1/namespaces/" + ns)

	// An object whose resourceVersion is stale after one more update.
	stale := mustCreateConfigMap(t, cs, ns, configMap("existing", map[string]string{"v": "1"}))
	fresh := stale.DeepCopy()
	fresh.Data["v"] = "2"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx(t), fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	const (
		jsonCT  = "application/json"
		yamlCT  = "application/yaml"
		protoCT = "application/vnd.kubernetes.protobuf"
	)
	cmJSON := func(name, extra string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q%s}}`, name, extra)
	}
	// Sizes. kube-apiserver refuses a request body over 3 MiB before
	// decoding it (413), and a ConfigMap whose data exceed 1 MiB in
	// validation (422). An object that passes validation but exceeds
	// etcd's 1.5 MiB request limit gets a 500 "etcdserver: request is too
	// large" from kube-apiserver (kubernetes#112152, an acknowledged bug);
	// Havre's contract answers 413 there instead, which is asserted.
	bigConfigMap := func(n int) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":%q}}`, strings.Repeat("x", n))
	}
	bigPod := func(n int) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big"},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"BIG","value":%q}]}]}}`,
			strings.Repeat("x", n))
	}
	hasCause := func(field string, typ metav1.CauseType) func(*testing.T, metav1.Status) {
		return func(t *testing.T, st metav1.Status) {
			t.Helper()
			if st.Details == nil {
				t.Fatalf("no details in %+v", st)
			}
			for _, c := range st.Details.Causes {
				if (field == "" || c.Field == field) && (typ == "" || c.Type == typ) {
					return
				}
			}
			t.Errorf("details.causes %+v lack field %q type %q", st.Details.Causes, field, typ)
		}
	}

	for _, tc := range []struct {
		name        string
		method      string
		url         string
		contentType string
		body        string
		code        int
		reason      metav1.StatusReason
		check       func(*testing.T, metav1.Status)
	}{
		{name: "malformed JSON", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "malformed YAML", method: "POST", url: nsURL + "/configmaps", contentType: yamlCT,
			body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n  bad: {\n", code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "protobuf without the magic prefix", method: "POST", url: nsURL + "/configmaps", contentType: protoCT,
			body: "this is not protobuf", code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "protobuf with a corrupt envelope", method: "POST", url: nsURL + "/configmaps", contentType: protoCT,
			body: "k8s\x00\xff\xff\xff\xff\xff\x0a\x03\x01", code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "unknown resource", method: "GET", url: nsURL + "/widgets",
			code: 404, reason: metav1.StatusReasonNotFound},
		{name: "unknown group", method: "GET", url: s.URL("/apis/widgets.example.com/v1/widgets"),
			code: 404, reason: metav1.StatusReasonNotFound},
		{name: "unknown version", method: "GET", url: s.URL("/apis/apps/v9/deployments"),
			code: 404, reason: metav1.StatusReasonNotFound},
		{name: "Secret posted to configmaps", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong-kind"},"data":{}}`, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "name differs from the URL", method: "PUT", url: nsURL + "/configmaps/existing", contentType: jsonCT,
			body: cmJSON("other", ""), code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "namespace differs from the URL", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: cmJSON("x", `,"namespace":"elsewhere"`), code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "bad label selector", method: "GET", url: nsURL + "/configmaps?labelSelector=" + url.QueryEscape("app in (x"),
			code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "bad field selector", method: "GET", url: nsURL + "/configmaps?fieldSelector=" + url.QueryEscape("metadata.name"),
			code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "unsupported field label", method: "GET", url: nsURL + "/configmaps?fieldSelector=" + url.QueryEscape("spec.foo=bar"),
			code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "unsupported field label on pods", method: "GET", url: nsURL + "/pods?fieldSelector=" + url.QueryEscape("spec.bogus=1"),
			code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "stale resourceVersion on update", method: "PUT", url: nsURL + "/configmaps/existing", contentType: jsonCT,
			body: cmJSON("existing", fmt.Sprintf(`,"resourceVersion":%q,"uid":%q,"creationTimestamp":%q`,
				stale.ResourceVersion, stale.UID, stale.CreationTimestamp.UTC().Format(time.RFC3339))), code: 409, reason: metav1.StatusReasonConflict},
		{name: "pod without containers", method: "POST", url: nsURL + "/pods", contentType: jsonCT,
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"empty"},"spec":{}}`, code: 422, reason: metav1.StatusReasonInvalid,
			check: hasCause("spec.containers", metav1.CauseTypeFieldValueRequired)},
		{name: "bad name", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: cmJSON("Bad_Name", ""), code: 422, reason: metav1.StatusReasonInvalid,
			check: hasCause("metadata.name", metav1.CauseTypeFieldValueInvalid)},
		{name: "configmap data over 1 MiB", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: bigConfigMap(1200 * 1024), code: 422, reason: metav1.StatusReasonInvalid,
			check: hasCause("", metav1.CauseTypeTooLong)},
		{name: "object over the 1.5 MiB storage limit", method: "POST", url: nsURL + "/pods", contentType: jsonCT,
			body: bigPod(1600 * 1024), code: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "body over 3 MiB", method: "POST", url: nsURL + "/configmaps", contentType: jsonCT,
			body: bigConfigMap(3*1024*1024 + 1), code: 413, reason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "unsupported patch content type", method: "PATCH", url: nsURL + "/configmaps/existing", contentType: "text/plain",
			body: `{"data":{"v":"3"}}`, code: 415, reason: metav1.StatusReasonUnsupportedMediaType},
		{name: "deletecollection on namespaces", method: "DELETE", url: s.URL("/api/v1/namespaces"),
			code: 405, reason: metav1.StatusReasonMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, client, tc.method, tc.url, tc.contentType, jsonCT, []byte(tc.body))
			if r.Code != tc.code {
				t.Fatalf("%s %s: HTTP %d, want %d; body: %.500s", tc.method, tc.url, r.Code, tc.code, r.Body)
			}
			st := decodeStatus(t, r)
			if st.Reason != tc.reason {
				t.Errorf("reason %q (%s), want %q", st.Reason, st.Message, tc.reason)
			}
			if st.Message == "" {
				t.Error("Status has no message")
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}

	// An update needs neither uid nor creationTimestamp in the body: the
	// server keeps the stored ones (only resourceVersion is checked).
	t.Run("update without uid and creationTimestamp", func(t *testing.T) {
		cur, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "existing", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, client, "PUT", nsURL+"/configmaps/existing", jsonCT, jsonCT,
			[]byte(cmJSON("existing", fmt.Sprintf(`,"resourceVersion":%q},"data":{"v":"2"`, cur.ResourceVersion))))
		if r.Code != http.StatusOK {
			t.Fatalf("HTTP %d, want 200; body %.500s", r.Code, r.Body)
		}
		got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "existing", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.UID != cur.UID || !got.CreationTimestamp.Equal(&cur.CreationTimestamp) {
			t.Errorf("uid/creationTimestamp changed: %s %v -> %s %v", cur.UID, cur.CreationTimestamp, got.UID, got.CreationTimestamp)
		}
	})

	// Nothing of the refused requests was stored.
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := configMapNames(list.Items); !equalStrings(got, []string{"existing"}) {
		t.Errorf("configmaps after the refused requests: %v", got)
	}
	if pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Errorf("pods after the refused requests: %d (%v)", len(pods.Items), err)
	}
	if cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "existing", metav1.GetOptions{}); err != nil || cm.Data["v"] != "2" {
		t.Errorf("existing configmap changed by refused requests: %v %v", cm.Data, err)
	}

	t.Run("Unauthenticated", func(t *testing.T) {
		anon := s.AnonymousHTTPClient()
		badCfg := rest.AnonymousClientConfig(s.RESTConfig())
		badCfg.BearerToken = "not-a-valid-token"
		badToken, err := rest.HTTPClientFor(badCfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			client *http.Client
			method string
			path   string
		}{
			{"anonymous list", anon, "GET", "/api/v1/namespaces/default/configmaps"},
			{"anonymous create", anon, "POST", "/api/v1/namespaces/default/configmaps"},
			{"anonymous discovery", anon, "GET", "/api"},
			{"anonymous group discovery", anon, "GET", "/apis"},
			{"invalid bearer token", badToken, "GET", "/api/v1/namespaces"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := do(t, tc.client, tc.method, s.URL(tc.path), jsonCT, jsonCT, []byte(cmJSON("anon", "")))
				if r.Code != http.StatusUnauthorized {
					t.Fatalf("HTTP %d, want 401; body: %.300s", r.Code, r.Body)
				}
				if st := decodeStatus(t, r); st.Reason != metav1.StatusReasonUnauthorized {
					t.Errorf("reason %q, want Unauthorized", st.Reason)
				}
			})
		}
		r := do(t, anon, "GET", s.URL("/readyz"), "", "", nil)
		if r.Code != http.StatusOK || strings.TrimSpace(string(r.Body)) != "ok" {
			t.Errorf("anonymous /readyz: %d %q, want 200 ok", r.Code, r.Body)
		}
	})
}
