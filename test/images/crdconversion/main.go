// Command crdconversion is a CustomResourceDefinition conversion webhook
// for the end-to-end tests, behaving as upstream's agnhost
// crd-conversion-webhook: it answers ConversionReviews (apiextensions.k8s.io
// v1 and v1beta1) over TLS at /crdconvert, converting objects of
// stable.example.com between v1, whose top-level "hostPort" is "host:port",
// and v2, which has "host" and "port". /readyz answers 200.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
)

func main() {
	cert := flag.String("tls-cert-file", "/webhook.local.config/certificates/tls.crt", "server certificate (PEM)")
	key := flag.String("tls-private-key-file", "/webhook.local.config/certificates/tls.key", "server key (PEM)")
	port := flag.Int("port", 9444, "port to serve on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/crdconvert", serveConvert)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	log.Printf("serving ConversionReviews on :%d", *port)
	log.Fatal(http.ListenAndServeTLS(fmt.Sprintf(":%d", *port), *cert, *key, mux))
}

// review is a ConversionReview of apiextensions.k8s.io/v1 or v1beta1 (the
// two have the same shape).
type review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type request struct {
	UID               string            `json:"uid"`
	DesiredAPIVersion string            `json:"desiredAPIVersion"`
	Objects           []json.RawMessage `json:"objects"`
}

type response struct {
	UID              string           `json:"uid"`
	ConvertedObjects []map[string]any `json:"convertedObjects"`
	Result           status           `json:"result"`
}

type status struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

func serveConvert(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, fmt.Sprintf("contentType=%s, expect application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	var in review
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
		http.Error(w, fmt.Sprintf("bad ConversionReview: %v", err), http.StatusBadRequest)
		return
	}
	out := review{APIVersion: in.APIVersion, Kind: "ConversionReview",
		Response: &response{UID: in.Request.UID, Result: status{Status: "Success"}}}
	for _, raw := range in.Request.Objects {
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			out.Response.Result = status{Status: "Failure", Message: err.Error()}
			break
		}
		converted, err := Convert(obj, in.Request.DesiredAPIVersion)
		if err != nil {
			out.Response.ConvertedObjects = nil
			out.Response.Result = status{Status: "Failure", Message: err.Error()}
			break
		}
		out.Response.ConvertedObjects = append(out.Response.ConvertedObjects, converted)
	}
	log.Printf("converted %d objects to %s: %s", len(out.Response.ConvertedObjects), in.Request.DesiredAPIVersion, out.Response.Result.Status)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// Convert converts obj (it is changed) to toVersion as agnhost's example
// converter does.
func Convert(obj map[string]any, toVersion string) (map[string]any, error) {
	from, _ := obj["apiVersion"].(string)
	if from == toVersion {
		return nil, fmt.Errorf("conversion from a version to itself should not call the webhook: %s", toVersion)
	}
	switch from {
	case "stable.example.com/v1":
		if toVersion != "stable.example.com/v2" {
			return nil, fmt.Errorf("unexpected conversion version %q", toVersion)
		}
		if hostPort, ok := obj["hostPort"]; ok {
			delete(obj, "hostPort")
			s, _ := hostPort.(string)
			parts := strings.Split(s, ":")
			if len(parts) != 2 {
				return nil, fmt.Errorf("invalid hostPort value `%v`", hostPort)
			}
			obj["host"], obj["port"] = parts[0], parts[1]
		}
	case "stable.example.com/v2":
		if toVersion != "stable.example.com/v1" {
			return nil, fmt.Errorf("unexpected conversion version %q", toVersion)
		}
		host, hasHost := obj["host"]
		port, hasPort := obj["port"]
		if hasHost || hasPort {
			if !hasHost {
				host = ""
			}
			if !hasPort {
				port = ""
			}
			obj["hostPort"] = fmt.Sprintf("%s:%s", host, port)
			delete(obj, "host")
			delete(obj, "port")
		}
	default:
		return nil, fmt.Errorf("unexpected conversion version %q", from)
	}
	obj["apiVersion"] = toVersion
	return obj, nil
}
