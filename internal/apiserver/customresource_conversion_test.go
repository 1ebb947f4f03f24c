package apiserver

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/havre/havre/internal/storage"
)

// hostPortWebhook is a TLS conversion webhook converting between v1
// ("hostPort": "host:port") and v2 ("host", "port"), as the e2e image
// test/images/crdconversion; it records the ConversionReview versions it
// was sent, and fails with 500 when failing is set.
type hostPortWebhook struct {
	*httptest.Server
	mu      sync.Mutex
	reviews []string
	calls   int
	failing bool
}

func newHostPortWebhook(t *testing.T) *hostPortWebhook {
	wh := &hostPortWebhook{}
	wh.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wh.mu.Lock()
		wh.calls++
		failing := wh.failing
		wh.mu.Unlock()
		if failing {
			http.Error(w, "webhook down", http.StatusInternalServerError)
			return
		}
		var rev struct {
			APIVersion string `json:"apiVersion"`
			Request    struct {
				UID               string           `json:"uid"`
				DesiredAPIVersion string           `json:"desiredAPIVersion"`
				Objects           []map[string]any `json:"objects"`
			} `json:"request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&rev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		wh.mu.Lock()
		wh.reviews = append(wh.reviews, rev.APIVersion)
		wh.mu.Unlock()
		var out []map[string]any
		for _, obj := range rev.Request.Objects {
			if strings.HasSuffix(rev.Request.DesiredAPIVersion, "/v2") {
				if hp, ok := obj["hostPort"].(string); ok {
					host, port, _ := strings.Cut(hp, ":")
					delete(obj, "hostPort")
					obj["host"], obj["port"] = host, port
				}
			} else if host, ok := obj["host"]; ok {
				obj["hostPort"] = fmt.Sprintf("%s:%s", host, obj["port"])
				delete(obj, "host")
				delete(obj, "port")
			}
			obj["apiVersion"] = rev.Request.DesiredAPIVersion
			out = append(out, obj)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": rev.APIVersion, "kind": "ConversionReview",
			"response": map[string]any{"uid": rev.Request.UID, "convertedObjects": out, "result": map[string]any{"status": "Success"}},
		})
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *hostPortWebhook) caBundle() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wh.Certificate().Raw})
}

// conversionCRD is a definition of two versions, v1 stored, converted by
// the webhook at url.
func conversionCRD(url string, caBundle []byte, reviewVersions ...string) *apiextensionsv1.CustomResourceDefinition {
	preserve := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object", XPreserveUnknownFields: ptrTo(true)}}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "things.stable.example.com", UID: "u2", Generation: 1},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "things", Kind: "Thing"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: preserve},
				{Name: "v2", Served: true, Schema: preserve},
			},
			Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
					ConversionReviewVersions: reviewVersions,
				},
			},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{
			AcceptedNames: apiextensionsv1.CustomResourceDefinitionNames{Plural: "things", Singular: "thing", Kind: "Thing", ListKind: "ThingList"},
			Conditions:    []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}},
		},
	}
}

func thing(version string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stable.example.com/" + version, "kind": "Thing",
		"metadata": map[string]any{"name": "t", "namespace": "default"},
	}}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

// A definition with conversion Webhook: objects written in v2 are stored
// in v1 through the webhook and answered in v2; stored v1 objects are read
// in v2 through it; v1 is not converted at all.
func TestCustomResourceWebhookConversion(t *testing.T) {
	wh := newHostPortWebhook(t)
	s := newStorageTestServer(t)
	crd := conversionCRD(wh.URL+"/crdconvert", wh.caBundle(), "v1", "v1beta1")
	v1, err := s.newCustomResourceHandler(crd, "v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.newCustomResourceHandler(crd, "v2")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := v2.objs.create(ctx, thing("v2", map[string]any{"host": "localhost", "port": "8080"}))
	if err != nil {
		t.Fatal(err)
	}
	u := out.(*unstructured.Unstructured)
	if u.GetAPIVersion() != "stable.example.com/v2" || u.Object["host"] != "localhost" || u.Object["port"] != "8080" || u.GetResourceVersion() == "" {
		t.Errorf("create answered %v", u.Object)
	}
	kv, err := s.cfg.Store.Get(ctx, v1.objs.key("default", "t"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kv.Value), `"hostPort":"localhost:8080"`) || !strings.Contains(string(kv.Value), `"apiVersion":"stable.example.com/v1"`) {
		t.Errorf("stored %s", kv.Value)
	}
	got, err := v2.objs.decode(kv)
	if err != nil {
		t.Fatal(err)
	}
	if u := got.(*unstructured.Unstructured); u.Object["host"] != "localhost" || u.Object["hostPort"] != nil {
		t.Errorf("read in v2: %v", u.Object)
	}
	wh.mu.Lock()
	calls, reviews := wh.calls, wh.reviews
	wh.mu.Unlock()
	if calls != 3 || reviews[0] != "apiextensions.k8s.io/v1" {
		t.Errorf("webhook called %d times (want 3: write, read back, read) with %v", calls, reviews)
	}
	// The storage version is not converted.
	got, err = v1.objs.decode(kv)
	if err != nil {
		t.Fatal(err)
	}
	if u := got.(*unstructured.Unstructured); u.Object["hostPort"] != "localhost:8080" {
		t.Errorf("read in v1: %v", u.Object)
	}
	wh.mu.Lock()
	if wh.calls != 3 {
		t.Errorf("v1 read called the webhook")
	}
	wh.mu.Unlock()

	// A failing webhook is a 500 naming the conversion, as upstream's.
	wh.mu.Lock()
	wh.failing = true
	wh.mu.Unlock()
	_, err = v2.objs.decode(kv)
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "conversion webhook for stable.example.com/v1, Kind=Thing failed") {
		t.Errorf("failing webhook: %v", err)
	}
	if st := toStatus(err); st.Code != http.StatusInternalServerError || !strings.HasPrefix(st.Message, "Internal error occurred: conversion webhook for") {
		t.Errorf("failing webhook status %d %q", st.Code, st.Message)
	}
}

// conversionReviewVersions picks the review's version: v1beta1 when only
// it is asked for.
func TestCustomResourceWebhookReviewVersion(t *testing.T) {
	wh := newHostPortWebhook(t)
	s := newCRServer(t)
	v2, err := s.newCustomResourceHandler(conversionCRD(wh.URL, wh.caBundle(), "v1beta1"), "v2")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"apiVersion":"stable.example.com/v1","kind":"Thing","metadata":{"name":"t","namespace":"default"},"hostPort":"h:1"}`)
	got, err := v2.objs.decode(storage.KeyValue{Key: "k", Value: data, ModRevision: 3})
	if err != nil {
		t.Fatal(err)
	}
	if u := got.(*unstructured.Unstructured); u.Object["host"] != "h" || u.GetResourceVersion() != "3" {
		t.Errorf("read %v", u.Object)
	}
	if len(wh.reviews) != 1 || wh.reviews[0] != "apiextensions.k8s.io/v1beta1" {
		t.Errorf("reviews %v", wh.reviews)
	}
}

// A caBundle that is not PEM fails the definition's conversions, not its
// storage version's reads.
func TestCustomResourceWebhookBadCABundle(t *testing.T) {
	s := newCRServer(t)
	crd := conversionCRD("https://127.0.0.1:1/convert", []byte("not a certificate"), "v1")
	v2, err := s.newCustomResourceHandler(crd, "v2")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"apiVersion":"stable.example.com/v1","kind":"Thing","metadata":{"name":"t","namespace":"default"}}`)
	if _, err := v2.objs.decode(storage.KeyValue{Key: "k", Value: data, ModRevision: 3}); !apierrors.IsInternalError(err) {
		t.Errorf("v2 read with a bad caBundle: %v", err)
	}
	v1, err := s.newCustomResourceHandler(crd, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v1.objs.decode(storage.KeyValue{Key: "k", Value: data, ModRevision: 3}); err != nil {
		t.Errorf("v1 read: %v", err)
	}
}

// A list page of mixed stored versions is converted in one
// ConversionReview holding only the objects stored in another version.
func TestCustomResourceWebhookListPage(t *testing.T) {
	wh := newHostPortWebhook(t)
	s := newCRServer(t)
	v2, err := s.newCustomResourceHandler(conversionCRD(wh.URL, wh.caBundle(), "v1"), "v2")
	if err != nil {
		t.Fatal(err)
	}
	kvs := []storage.KeyValue{
		{Key: "a", ModRevision: 4, Value: []byte(`{"apiVersion":"stable.example.com/v1","kind":"Thing","metadata":{"name":"a","namespace":"default"},"hostPort":"a:1"}`)},
		{Key: "b", ModRevision: 5, Value: []byte(`{"apiVersion":"stable.example.com/v2","kind":"Thing","metadata":{"name":"b","namespace":"default"},"host":"b","port":"2"}`)},
		{Key: "c", ModRevision: 6, Value: []byte(`{"apiVersion":"stable.example.com/v1","kind":"Thing","metadata":{"name":"c","namespace":"default"},"hostPort":"c:3"}`)},
	}
	objs, err := v2.objs.decodePage(kvs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		u := o.(*unstructured.Unstructured)
		got = append(got, fmt.Sprintf("%s %s %s:%s rv=%s", u.GetAPIVersion(), u.GetName(), u.Object["host"], u.Object["port"], u.GetResourceVersion()))
	}
	want := []string{"stable.example.com/v2 a a:1 rv=4", "stable.example.com/v2 b b:2 rv=5", "stable.example.com/v2 c c:3 rv=6"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("page:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if wh.calls != 1 {
		t.Errorf("%d webhook calls, want 1", wh.calls)
	}
}
