// Command webhook is the admission webhook of Havre's end-to-end tests: it
// serves admission.k8s.io/v1 AdmissionReviews over TLS, mirroring the
// behaviours of upstream's agnhost webhook that the AdmissionWebhook
// conformance specs use.
//
//	/always-allow-delay-5s  allows after 5 s (timeouts)
//	/always-deny            denies everything: "this webhook denies all requests"
//	/configmaps             denies ConfigMaps with data or label
//	                        webhook-e2e-test=webhook-disallow
//	/pods                   denies pods with a container named *webhook-disallow*
//	                        or labelled webhook-e2e-test=webhook-disallow
//	/mutating-configmaps    adds data mutation-stage-1=yes (then mutation-stage-2=yes)
//	/mutating-pods          adds the init container webhook-added-init-container
//	/add-label              adds the label added-label=yes
//	/custom-resource        denies custom resources with data
//	                        webhook-e2e-test=webhook-disallow
//	/mutating-custom-resource  adds data mutation-stage-1=yes (then stage-2)
//	/pods/attach            denies CONNECT to pods/attach
//	/healthz                "ok" (plain HTTPS, for readiness probes)
//
// Every review is logged on stdout, one JSON request a line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	disallowKey   = "webhook-e2e-test"
	disallowValue = "webhook-disallow"
)

// admitFunc decides one request.
type admitFunc func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

func main() {
	cert := flag.String("tls-cert-file", "/certs/tls.crt", "serving certificate (PEM)")
	key := flag.String("tls-private-key-file", "/certs/tls.key", "serving key (PEM)")
	port := flag.Int("port", 8443, "port to serve HTTPS on")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	handle := func(path string, f admitFunc) { mux.HandleFunc(path, serve(f)) }
	handle("/always-allow-delay-5s", func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		time.Sleep(5 * time.Second)
		return allowed()
	})
	handle("/always-deny", func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return denied("this webhook denies all requests")
	})
	handle("/configmaps", admitConfigMaps)
	handle("/pods", admitPods)
	handle("/mutating-configmaps", mutateData)
	handle("/mutating-custom-resource", mutateData)
	handle("/mutating-pods", mutatePods)
	handle("/add-label", addLabel)
	handle("/custom-resource", admitCustomResource)
	handle("/pods/attach", denyAttach)
	log.Printf("serving admission reviews on :%d", *port)
	log.Fatal(http.ListenAndServeTLS(fmt.Sprintf(":%d", *port), *cert, *key, mux))
}

// serve decodes an AdmissionReview, decides it and answers with the
// request's uid.
func serve(admit admitFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, "content type "+ct+", want application/json", http.StatusUnsupportedMediaType)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
			return
		}
		line, _ := json.Marshal(review.Request)
		fmt.Println(string(line))
		resp := admit(review.Request)
		resp.UID = review.Request.UID
		out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func allowed() *admissionv1.AdmissionResponse { return &admissionv1.AdmissionResponse{Allowed: true} }

func denied(msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Message: msg}}
}

// object is what the reviews here look at: metadata and a data map.
type object struct {
	metav1.ObjectMeta `json:"metadata"`
	Data              map[string]any `json:"data"`
}

func decodeObject(raw []byte) (*object, error) {
	var o object
	if len(raw) == 0 {
		return &o, nil
	}
	err := json.Unmarshal(raw, &o)
	return &o, err
}

func admitConfigMaps(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource.Resource != "configmaps" {
		return allowed()
	}
	o, err := decodeObject(req.Object.Raw)
	if err != nil {
		return denied(err.Error())
	}
	if v, _ := o.Data[disallowKey].(string); v == disallowValue {
		return denied("the configmap contains unwanted key and value")
	}
	if o.Labels[disallowKey] == disallowValue {
		return denied("the configmap contains unwanted label")
	}
	return allowed()
}

func admitCustomResource(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	o, err := decodeObject(req.Object.Raw)
	if err != nil {
		return denied(err.Error())
	}
	if v, _ := o.Data[disallowKey].(string); v == disallowValue {
		return denied("the custom resource contains unwanted data")
	}
	return allowed()
}

func admitPods(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource.Resource != "pods" || req.SubResource != "" {
		return allowed()
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return denied(err.Error())
	}
	var msg string
	for _, c := range pod.Spec.Containers {
		if strings.Contains(c.Name, disallowValue) {
			msg += "the pod contains unwanted container name; "
		}
	}
	if pod.Labels[disallowKey] == disallowValue {
		msg += "the pod contains unwanted label; "
	}
	if msg != "" {
		return denied(strings.TrimSpace(msg))
	}
	return allowed()
}

// patched allows with a JSON patch.
func patched(ops ...map[string]any) *admissionv1.AdmissionResponse {
	body, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: body, PatchType: &pt}
}

func mutateData(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	o, err := decodeObject(req.Object.Raw)
	if err != nil {
		return denied(err.Error())
	}
	if o.Data == nil {
		return patched(map[string]any{"op": "add", "path": "/data", "value": map[string]string{"mutation-stage-1": "yes"}})
	}
	if _, ok := o.Data["mutation-stage-1"]; !ok {
		return patched(map[string]any{"op": "add", "path": "/data/mutation-stage-1", "value": "yes"})
	}
	return patched(map[string]any{"op": "add", "path": "/data/mutation-stage-2", "value": "yes"})
}

func mutatePods(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource.Resource != "pods" || req.SubResource != "" {
		return allowed()
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return denied(err.Error())
	}
	init := map[string]any{"name": "webhook-added-init-container", "image": "webhook-added-image", "resources": map[string]any{}}
	if len(pod.Spec.InitContainers) == 0 {
		return patched(map[string]any{"op": "add", "path": "/spec/initContainers", "value": []any{init}})
	}
	return patched(map[string]any{"op": "add", "path": "/spec/initContainers/-", "value": init})
}

func addLabel(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	o, err := decodeObject(req.Object.Raw)
	if err != nil {
		return denied(err.Error())
	}
	if o.Labels == nil {
		return patched(map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]string{"added-label": "yes"}})
	}
	return patched(map[string]any{"op": "add", "path": "/metadata/labels/added-label", "value": "yes"})
}

func denyAttach(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Resource.Resource == "pods" && req.SubResource == "attach" && req.Operation == admissionv1.Connect {
		return denied(fmt.Sprintf("attaching to pod '%s' is not allowed", req.Name))
	}
	return allowed()
}
