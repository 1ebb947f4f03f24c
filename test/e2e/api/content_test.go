package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// TestContentNegotiation checks that JSON, YAML and protobuf are accepted
// as request bodies and produced on request, as kube-apiserver does.
func TestContentNegotiation(t *testing.T) {
	s := startServer(t)
	ns := newNamespace(t, s.Clientset())
	client := s.HTTPClient()
	base := s.URL("/api/v1/namespaces/" + ns + "/configmaps")
	const (
		jsonCT  = "application/json"
		yamlCT  = "application/yaml"
		protoCT = "application/vnd.kubernetes.protobuf"
	)
	protoInfo, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), protoCT)
	if !ok {
		t.Fatal("client-go has no protobuf serializer")
	}
	protoEncoder := scheme.Codecs.EncoderForVersion(protoInfo.Serializer, corev1.SchemeGroupVersion)
	decode := func(t *testing.T, body []byte) runtime.Object {
		t.Helper()
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		if err != nil {
			t.Fatalf("decoding %.200q: %v", body, err)
		}
		return obj
	}
	protoBody, err := runtime.Encode(protoEncoder, configMap("from-proto", map[string]string{"enc": "protobuf"}))
	if err != nil {
		t.Fatal(err)
	}

	creates := []struct {
		name, contentType, accept string
		body                      []byte
	}{
		{"from-json", jsonCT, jsonCT, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-json"},"data":{"enc":"json"}}`)},
		{"from-yaml", yamlCT, yamlCT, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  enc: yaml\n")},
		{"from-proto", protoCT, protoCT, protoBody},
	}
	for _, c := range creates {
		t.Run("Create/"+c.name, func(t *testing.T) {
			r := do(t, client, "POST", base, c.contentType, c.accept, c.body)
			if r.Code != http.StatusCreated {
				t.Fatalf("POST %s: HTTP %d, want 201; body %.300q", c.contentType, r.Code, r.Body)
			}
			if !strings.HasPrefix(r.ContentType, c.accept) {
				t.Errorf("answer Content-Type %q, want %s", r.ContentType, c.accept)
			}
			body := r.Body
			if c.accept == yamlCT {
				if body, err = yaml.YAMLToJSON(r.Body); err != nil {
					t.Fatalf("answer is not YAML: %v", err)
				}
			}
			cm, ok := decode(t, body).(*corev1.ConfigMap)
			if !ok || cm.Name != c.name || cm.Namespace != ns || cm.UID == "" {
				t.Fatalf("answer decodes to %#v", cm)
			}
		})
	}

	for _, accept := range []string{jsonCT, yamlCT, protoCT} {
		t.Run("Get/"+accept, func(t *testing.T) {
			r := do(t, client, "GET", base+"/from-json", "", accept, nil)
			if r.Code != http.StatusOK || !strings.HasPrefix(r.ContentType, accept) {
				t.Fatalf("GET with Accept %s: HTTP %d Content-Type %q", accept, r.Code, r.ContentType)
			}
			body := r.Body
			switch accept {
			case yamlCT:
				if body, err = yaml.YAMLToJSON(r.Body); err != nil {
					t.Fatal(err)
				}
			case protoCT:
				if !bytes.HasPrefix(body, []byte("k8s\x00")) {
					t.Fatalf("protobuf answer lacks the k8s\\x00 prefix: %.40q", body)
				}
			}
			cm, ok := decode(t, body).(*corev1.ConfigMap)
			if !ok || cm.Name != "from-json" || cm.Data["enc"] != "json" {
				t.Fatalf("answer decodes to %#v", cm)
			}
		})
		t.Run("List/"+accept, func(t *testing.T) {
			r := do(t, client, "GET", base, "", accept, nil)
			if r.Code != http.StatusOK || !strings.HasPrefix(r.ContentType, accept) {
				t.Fatalf("LIST with Accept %s: HTTP %d Content-Type %q", accept, r.Code, r.ContentType)
			}
			body := r.Body
			if accept == yamlCT {
				if body, err = yaml.YAMLToJSON(r.Body); err != nil {
					t.Fatal(err)
				}
			}
			list, ok := decode(t, body).(*corev1.ConfigMapList)
			// The root CA publisher's ConfigMap may have joined the namespace.
			if !ok || len(configMapNames(list.Items)) != len(creates) || list.ResourceVersion == "" {
				t.Fatalf("answer decodes to %#v", list)
			}
		})
	}

	t.Run("WildcardAccept", func(t *testing.T) {
		r := do(t, client, "GET", base+"/from-json", "", "*/*", nil)
		if r.Code != http.StatusOK || !strings.HasPrefix(r.ContentType, jsonCT) {
			t.Fatalf("GET with Accept */*: HTTP %d Content-Type %q, want 200 JSON", r.Code, r.ContentType)
		}
	})

	t.Run("NotAcceptable", func(t *testing.T) {
		r := do(t, client, "GET", base+"/from-json", "", "application/xml", nil)
		if r.Code != http.StatusNotAcceptable {
			t.Fatalf("GET with Accept application/xml: HTTP %d, want 406; body %.300q", r.Code, r.Body)
		}
		if st := decodeStatus(t, r); st.Reason != metav1.StatusReasonNotAcceptable {
			t.Errorf("reason %q, want NotAcceptable", st.Reason)
		}
	})
}
