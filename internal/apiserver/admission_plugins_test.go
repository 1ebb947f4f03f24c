package apiserver

import (
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"

	hadmission "github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage/bolt"
)

// recordingPlugin records what the seam offers it; it labels every
// created or updated configmap and denies objects labelled deny=yes.
type recordingPlugin struct {
	*admission.Handler
	calls []string
}

func (p *recordingPlugin) record(phase string, a admission.Attributes) {
	opts := "<nil>"
	if o := a.GetOperationOptions(); o != nil {
		opts = reflect.TypeOf(o).Elem().Name()
	}
	p.calls = append(p.calls, fmt.Sprintf("%s %s %s/%s %s/%s %s obj=%t old=%t dryRun=%t %s user=%s",
		phase, a.GetOperation(), a.GetResource().Resource, a.GetSubresource(), a.GetNamespace(), a.GetName(),
		a.GetKind().Kind, a.GetObject() != nil, a.GetOldObject() != nil, a.IsDryRun(), opts, a.GetUserInfo().GetName()))
}

func (p *recordingPlugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	p.record("mutate", a)
	if cm, ok := a.GetObject().(*corev1.ConfigMap); ok {
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		cm.Labels["admitted"] = "yes"
	}
	return nil
}

func (p *recordingPlugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	p.record("validate", a)
	if acc, err := meta.Accessor(a.GetObject()); err == nil && acc.GetLabels()["deny"] == "yes" {
		return admission.NewForbidden(a, errors.New("denied by the test plugin"))
	}
	return nil
}

func newAdmissionServer(t *testing.T) (*Server, *recordingPlugin) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	chain := hadmission.NewChain()
	p := &recordingPlugin{Handler: admission.NewHandler(admission.Create, admission.Update, admission.Delete, admission.Connect)}
	chain.Register("Recording", p)
	s, err := New(Config{Store: store, Resources: catalog.Resources(), Admission: chain})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != 0 {
		t.Fatalf("bootstrap objects were admitted: %v", p.calls)
	}
	return s, p
}

// serveAs serves one request as user alice, bypassing authorization.
func serveAs(s *Server, method, path, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r = r.WithContext(auth.WithUser(r.Context(), &auth.User{Name: "alice", Groups: []string{auth.GroupAuthenticated}}))
	info := parseRequestInfo(r)
	w := httptest.NewRecorder()
	s.handler(info.group, info.version, info.resource).serve(w, r, info)
	return w
}

func TestAdmissionSeam(t *testing.T) {
	const (
		cms   = "/api/v1/namespaces/default/configmaps"
		json  = "application/json"
		merge = "application/merge-patch+json"
	)
	cm := func(name, labels string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","labels":{` + labels + `}}}`
	}
	deploy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1,
		"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`
	sa := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}`
	type req struct{ method, path, contentType, body string }
	tests := []struct {
		name  string
		setup []req
		req   req
		code  int
		calls []string
	}{
		{name: "create", req: req{"POST", cms, json, cm("a", "")}, code: 201, calls: []string{
			"mutate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice",
			"validate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice"}},
		{name: "create dry run", req: req{"POST", cms + "?dryRun=All", json, cm("a", "")}, code: 201, calls: []string{
			"mutate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=true CreateOptions user=alice",
			"validate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=true CreateOptions user=alice"}},
		{name: "validating denial", req: req{"POST", cms, json, cm("a", `"deny":"yes"`)}, code: 403, calls: []string{
			"mutate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice",
			"validate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice"}},
		{name: "update", setup: []req{{"POST", cms, json, cm("a", "")}}, req: req{"PUT", cms + "/a", json, cm("a", `"x":"y"`)}, code: 200, calls: []string{
			"mutate UPDATE configmaps/ default/a ConfigMap obj=true old=true dryRun=false UpdateOptions user=alice",
			"validate UPDATE configmaps/ default/a ConfigMap obj=true old=true dryRun=false UpdateOptions user=alice"}},
		{name: "patch", setup: []req{{"POST", cms, json, cm("a", "")}}, req: req{"PATCH", cms + "/a", merge, `{"data":{"k":"v"}}`}, code: 200, calls: []string{
			"mutate UPDATE configmaps/ default/a ConfigMap obj=true old=true dryRun=false UpdateOptions user=alice",
			"validate UPDATE configmaps/ default/a ConfigMap obj=true old=true dryRun=false UpdateOptions user=alice"}},
		{name: "apply creates", req: req{"PATCH", cms + "/a?fieldManager=m", "application/apply-patch+yaml", cm("a", "")}, code: 201, calls: []string{
			"mutate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice",
			"validate CREATE configmaps/ default/a ConfigMap obj=true old=false dryRun=false CreateOptions user=alice"}},
		{name: "delete", setup: []req{{"POST", cms, json, cm("a", "")}}, req: req{"DELETE", cms + "/a", "", ""}, code: 200, calls: []string{
			"mutate DELETE configmaps/ default/a ConfigMap obj=false old=false dryRun=false DeleteOptions user=alice",
			"validate DELETE configmaps/ default/a ConfigMap obj=false old=true dryRun=false DeleteOptions user=alice"}},
		{name: "deletecollection", setup: []req{{"POST", cms, json, cm("a", "")}, {"POST", cms, json, cm("b", "")}},
			req: req{"DELETE", cms, "", ""}, code: 200, calls: []string{
				"mutate DELETE configmaps/ default/ ConfigMap obj=false old=false dryRun=false DeleteOptions user=alice",
				"validate DELETE configmaps/ default/a ConfigMap obj=false old=true dryRun=false DeleteOptions user=alice",
				"validate DELETE configmaps/ default/b ConfigMap obj=false old=true dryRun=false DeleteOptions user=alice"}},
		{name: "status", setup: []req{{"POST", "/apis/apps/v1/namespaces/default/deployments", json, deploy}},
			req: req{"PATCH", "/apis/apps/v1/namespaces/default/deployments/d/status", merge, `{"status":{"replicas":1}}`}, code: 200, calls: []string{
				"mutate UPDATE deployments/status default/d Deployment obj=true old=true dryRun=false UpdateOptions user=alice",
				"validate UPDATE deployments/status default/d Deployment obj=true old=true dryRun=false UpdateOptions user=alice"}},
		{name: "scale", setup: []req{{"POST", "/apis/apps/v1/namespaces/default/deployments", json, deploy}},
			req: req{"PATCH", "/apis/apps/v1/namespaces/default/deployments/d/scale", merge, `{"spec":{"replicas":3}}`}, code: 200, calls: []string{
				"mutate UPDATE deployments/scale default/d Scale obj=true old=true dryRun=false UpdateOptions user=alice",
				"validate UPDATE deployments/scale default/d Scale obj=true old=true dryRun=false UpdateOptions user=alice"}},
		{name: "binding", setup: []req{{"POST", "/api/v1/namespaces/default/serviceaccounts", json, sa}, {"POST", "/api/v1/namespaces/default/pods", json, pod}},
			req:  req{"POST", "/api/v1/namespaces/default/pods/p/binding", json, `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"name":"n"}}`},
			code: 201, calls: []string{
				"mutate CREATE pods/binding default/p Binding obj=true old=false dryRun=false CreateOptions user=alice",
				"validate CREATE pods/binding default/p Binding obj=true old=false dryRun=false CreateOptions user=alice"}},
		{name: "eviction, and not the delete it makes", setup: []req{{"POST", "/api/v1/namespaces/default/serviceaccounts", json, sa}, {"POST", "/api/v1/namespaces/default/pods", json, pod}},
			req:  req{"POST", "/api/v1/namespaces/default/pods/p/eviction", json, `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p"}}`},
			code: 201, calls: []string{
				"mutate CREATE pods/eviction default/p Eviction obj=true old=false dryRun=false CreateOptions user=alice",
				"validate CREATE pods/eviction default/p Eviction obj=true old=false dryRun=false CreateOptions user=alice"}},
		{name: "exec connects", setup: []req{{"POST", "/api/v1/namespaces/default/serviceaccounts", json, sa}, {"POST", "/api/v1/namespaces/default/pods", json, pod}},
			req:  req{"POST", "/api/v1/namespaces/default/pods/p/exec?command=ls&container=c&stdout=true", "", ""},
			code: 400, calls: []string{ // 400: the pod has no node
				"mutate CONNECT pods/exec default/p PodExecOptions obj=true old=false dryRun=false <nil> user=alice",
				"validate CONNECT pods/exec default/p PodExecOptions obj=true old=false dryRun=false <nil> user=alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := newAdmissionServer(t)
			for _, r := range tt.setup {
				if w := serveAs(s, r.method, r.path, r.contentType, r.body); w.Code >= 300 {
					t.Fatalf("setup %s %s: %d %s", r.method, r.path, w.Code, w.Body)
				}
			}
			p.calls = nil
			w := serveAs(s, tt.req.method, tt.req.path, tt.req.contentType, tt.req.body)
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if !reflect.DeepEqual(p.calls, tt.calls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(p.calls, "\n"), strings.Join(tt.calls, "\n"))
			}
			if tt.code == http.StatusForbidden && !strings.Contains(w.Body.String(), "denied by the test plugin") {
				t.Errorf("denial body: %s", w.Body)
			}
		})
	}
}

// TestAdmissionSeamMutates checks that a mutating plugin's change is
// stored, and that typed objects do not keep the apiVersion and kind the
// plugins see.
func TestAdmissionSeamMutates(t *testing.T) {
	s, _ := newAdmissionServer(t)
	w := serveAs(s, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	obj, err := s.handler("", "v1", "configmaps").objs.get(context.Background(), "default", "a")
	if err != nil {
		t.Fatal(err)
	}
	cm := obj.(*corev1.ConfigMap)
	if cm.Labels["admitted"] != "yes" {
		t.Errorf("stored labels %v, want the plugin's", cm.Labels)
	}
}

// TestAdmissionSeamErrors checks that a plugin's error reaches the client
// as the plugin gave it.
func TestAdmissionSeamErrors(t *testing.T) {
	s, _ := newAdmissionServer(t)
	w := serveAs(s, "POST", "/api/v1/namespaces/default/configmaps", "application/json",
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"deny":"yes"}}}`)
	err := apierrors.FromObject(decodeStatus(t, w.Body.Bytes()))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `configmaps "a" is forbidden: denied by the test plugin`) {
		t.Errorf("error %v", err)
	}
}

func decodeStatus(t *testing.T, body []byte) *metav1.Status {
	t.Helper()
	st := &metav1.Status{}
	if err := stdjson.Unmarshal(body, st); err != nil {
		t.Fatal(err)
	}
	return st
}
