package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// Fuzz targets for what strangers can send to the API: request bodies in
// JSON, YAML and protobuf, the four patch types, and label and field
// selectors. Whatever the bytes, the answer is a success or a 4xx
// metav1.Status, never a panic or a 500. Run each longer with
// `go test ./internal/apiserver -run '^$' -fuzz '^FuzzX$' -fuzztime 5m`
// (hack/fuzz.sh runs them all); a finding goes to testdata/fuzz and
// stays a regression test.

var fuzzKinds = []string{
	"/api/v1/namespaces/default/configmaps",
	"/api/v1/namespaces/default/pods",
	"/apis/apps/v1/namespaces/default/deployments",
	"/api/v1/namespaces/default/services",
}

var fuzzBodyTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}

var fuzzPatchTypes = []string{"application/json-patch+json", "application/merge-patch+json",
	"application/strategic-merge-patch+json", "application/apply-patch+yaml"}

// fuzzServer is a store-backed server with the default ServiceAccount
// (pods wait for it otherwise) and one object of each fuzzed kind, named
// "x", for the patches.
func fuzzServer(f *testing.F) *Server {
	s := newStoreServer(f)
	for _, path := range []string{"/api/v1/namespaces/default/serviceaccounts"} {
		if w := serveAs(s, "POST", path, "application/json", `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}`); w.Code != 201 {
			f.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	for i, body := range fuzzSeeds(f) {
		if w := serveAs(s, "POST", fuzzKinds[i], "application/json", body); w.Code != 201 {
			f.Fatalf("%s: %d %s", fuzzKinds[i], w.Code, w.Body)
		}
	}
	return s
}

// fuzzSeeds are valid objects of fuzzKinds, in JSON, named "x".
func fuzzSeeds(f *testing.F) []string {
	labels := map[string]string{"app": "x"}
	objs := []runtime.Object{
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "x"}, Data: map[string]string{"k": "v"}},
		&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: "x"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "x"},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}},
	}
	var out []string
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// checkAnswer fails on a 5xx, and on an error that is not a Status.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, what string) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: %d %s", what, w.Code, w.Body)
	}
	if w.Code >= 400 {
		var st metav1.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Kind != "Status" || st.Code != int32(w.Code) {
			t.Fatalf("%s: %d with a body that is not its Status: %s", what, w.Code, w.Body)
		}
	}
}

func FuzzCreateBody(f *testing.F) {
	s := fuzzServer(f)
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	for i, body := range fuzzSeeds(f) {
		f.Add(uint8(i), uint8(0), []byte(body))
		f.Add(uint8(i), uint8(1), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: y-\ndata:\n  a: b\n"))
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(body), nil, nil)
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if err := pb.Encode(obj, &buf); err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), uint8(2), buf.Bytes())
		f.Add(uint8(i), uint8(2), buf.Bytes()[:buf.Len()/2])
	}
	f.Add(uint8(0), uint8(0), []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"k":1}}}`))
	f.Add(uint8(0), uint8(1), []byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, kind, bodyType uint8, body []byte) {
		path := fuzzKinds[int(kind)%len(fuzzKinds)]
		ct := fuzzBodyTypes[int(bodyType)%len(fuzzBodyTypes)]
		checkAnswer(t, serveAs(s, "POST", path, ct, string(body)), "POST "+path+" "+ct)
	})
}

func FuzzPatch(f *testing.F) {
	s := fuzzServer(f)
	seeds := fuzzSeeds(f)
	for i := range fuzzKinds {
		f.Add(uint8(i), uint8(0), []byte(`[{"op":"add","path":"/metadata/labels/a","value":"b"}]`))
		f.Add(uint8(i), uint8(0), []byte(`[{"op":"move","from":"/metadata","path":"/metadata/x"}]`))
		f.Add(uint8(i), uint8(1), []byte(`{"metadata":{"labels":{"a":null,"b":"c"}}}`))
		f.Add(uint8(i), uint8(2), []byte(`{"spec":{"containers":[{"name":"c","$patch":"delete"}]},"metadata":{"$setElementOrder/finalizers":["a"]}}`))
		f.Add(uint8(i), uint8(3), []byte(seeds[i]))
	}
	f.Fuzz(func(t *testing.T, kind, patchType uint8, body []byte) {
		path := fuzzKinds[int(kind)%len(fuzzKinds)] + "/x?fieldManager=fuzz"
		ct := fuzzPatchTypes[int(patchType)%len(fuzzPatchTypes)]
		checkAnswer(t, serveAs(s, "PATCH", path, ct, string(body)), "PATCH "+path+" "+ct)
	})
}

func FuzzListSelectors(f *testing.F) {
	s := fuzzServer(f)
	for _, sel := range [][2]string{
		{"app=x", "metadata.name=x"}, {"app in (x,y),!b", "spec.nodeName!="}, {"a notin ()", "status.phase=Running,metadata.namespace=default"},
		{"=", "=="}, {"a,,b", "x"}, {"app", "metadata.name=x=y"}, {"a>1", `metadata.name=\,`},
	} {
		for i := range fuzzKinds {
			f.Add(uint8(i), sel[0], sel[1])
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, label, field string) {
		q := url.Values{"labelSelector": {label}, "fieldSelector": {field}}
		path := fuzzKinds[int(kind)%len(fuzzKinds)] + "?" + q.Encode()
		w := serveAs(s, "GET", path, "", "")
		checkAnswer(t, w, "GET "+path)
		if w.Code != 200 && w.Code != 400 {
			t.Fatalf("GET %s: %d %s, want 200 or 400", path, w.Code, w.Body)
		}
	})
}
