// Command aggregated is a small aggregated API server for Havre's e2e
// tests: it serves wardle.example.com/v1alpha1 with one namespaced kind,
// Flunder (get, list, watch), and its discovery, to clients the API
// server's front proxy authenticated. As a server built on k8s.io/apiserver
// does, it trusts the X-Remote-User, X-Remote-Group and X-Remote-Extra-*
// headers only on connections with a client certificate signed by the
// request-header CA and named in the allowed names; it answers 401
// otherwise. Every Flunder it returns names the requester the headers
// gave, so a test sees the identity the proxy forwarded. It serves the
// group version's OpenAPI v3 document too, as /openapi/v3 (the index, with
// the document's hash) and /openapi/v3/apis/wardle.example.com/v1alpha1,
// which the aggregator fetches for kubectl explain and validation.
//
// Flags: -port, -cert and -key (the serving certificate),
// -requestheader-client-ca-file, -requestheader-allowed-names.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	group   = "wardle.example.com"
	version = "v1alpha1"
	gv      = group + "/" + version
)

var (
	port         = flag.Int("port", 8443, "port to serve HTTPS on")
	certFile     = flag.String("cert", "", "serving certificate (PEM)")
	keyFile      = flag.String("key", "", "serving key (PEM)")
	caFile       = flag.String("requestheader-client-ca-file", "", "CA of the front proxy's client certificates")
	allowedNames = flag.String("requestheader-allowed-names", "front-proxy-client", "comma-separated common names the front proxy may have")
	names        = flag.String("flunders", "alpha,beta", "comma-separated names of the Flunders every namespace has")
)

// requester is who the front proxy says sent the request.
type requester struct {
	User   string              `json:"user"`
	Groups []string            `json:"groups,omitempty"`
	Extra  map[string][]string `json:"extra,omitempty"`
}

func authenticate(r *http.Request) (*requester, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return nil, fmt.Errorf("no verified client certificate")
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if allowed := strings.Split(*allowedNames, ","); !slices.Contains(allowed, cn) {
		return nil, fmt.Errorf("client certificate %q is not an allowed front proxy", cn)
	}
	u := &requester{User: r.Header.Get("X-Remote-User"), Groups: r.Header.Values("X-Remote-Group")}
	if u.User == "" {
		return nil, fmt.Errorf("no X-Remote-User")
	}
	for k, v := range r.Header {
		if rest, ok := strings.CutPrefix(k, "X-Remote-Extra-"); ok {
			if u.Extra == nil {
				u.Extra = map[string][]string{}
			}
			u.Extra[strings.ToLower(rest)] = v
		}
	}
	return u, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reason, "code": code})
}

var started = time.Now().UTC().Format(time.RFC3339)

func flunder(ns, name string, u *requester) map[string]any {
	who, _ := json.Marshal(u)
	return map[string]any{"apiVersion": gv, "kind": "Flunder",
		"metadata": map[string]any{"name": name, "namespace": ns, "uid": "flunder-" + ns + "-" + name,
			"resourceVersion": "1", "creationTimestamp": started,
			"annotations": map[string]string{group + "/requester": string(who)}},
		"spec": map[string]any{"reference": u.User}}
}

func main() {
	flag.Parse()
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatal("no certificate in ", *caFile)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/", serve)
	srv := &http.Server{Addr: fmt.Sprintf(":%d", *port), Handler: mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool,
			MinVersion: tls.VersionTLS12}}
	log.Printf("serving %s on :%d", gv, *port)
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

func serve(w http.ResponseWriter, r *http.Request) {
	u, err := authenticate(r)
	if err != nil {
		status(w, http.StatusUnauthorized, "Unauthorized", err.Error())
		return
	}
	log.Printf("%s %s by %s %v", r.Method, r.URL.RequestURI(), u.User, u.Groups)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/apis":
		writeJSON(w, 200, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{apiGroup()}})
		return
	case r.URL.Path == "/apis/"+group:
		g := apiGroup()
		g["kind"], g["apiVersion"] = "APIGroup", "v1"
		writeJSON(w, 200, g)
		return
	case r.URL.Path == "/openapi/v3" || r.URL.Path == "/openapi/v3/":
		writeJSON(w, 200, map[string]any{"paths": map[string]any{
			"apis/" + gv: map[string]string{"serverRelativeURL": "/openapi/v3/apis/" + gv + "?hash=" + openAPIHash}}})
		return
	case r.URL.Path == "/openapi/v3/apis/"+gv:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"`+openAPIHash+`"`)
		_, _ = w.Write(openAPIDocument)
		return
	case r.URL.Path == "/apis/"+gv:
		writeJSON(w, 200, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
			"resources": []any{map[string]any{"name": "flunders", "singularName": "flunder", "namespaced": true,
				"kind": "Flunder", "verbs": []string{"get", "list", "watch"}}}})
		return
	case len(parts) < 4 || parts[0] != "apis" || parts[1] != group || parts[2] != version:
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	if r.Method != http.MethodGet {
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "only get, list and watch are served")
		return
	}
	rest := parts[3:]
	ns := ""
	if rest[0] == "namespaces" && len(rest) >= 3 {
		ns, rest = rest[1], rest[2:]
	}
	if rest[0] != "flunders" || len(rest) > 2 {
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	namespaces := []string{ns}
	if ns == "" {
		namespaces = []string{"default"}
	}
	var items []map[string]any
	for _, n := range namespaces {
		for _, name := range strings.Split(*names, ",") {
			items = append(items, flunder(n, name, u))
		}
	}
	if len(rest) == 2 {
		for _, it := range items {
			if it["metadata"].(map[string]any)["name"] == rest[1] {
				respond(w, r, it, nil)
				return
			}
		}
		status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("flunders.%s %q not found", group, rest[1]))
		return
	}
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		watch(w, r, items)
		return
	}
	respond(w, r, nil, items)
}

func apiGroup() map[string]any {
	v := map[string]string{"groupVersion": gv, "version": version}
	return map[string]any{"name": group, "versions": []any{v}, "preferredVersion": v}
}

// respond writes one object or a list, as a meta.k8s.io Table when asked
// (what kubectl get asks for).
func respond(w http.ResponseWriter, r *http.Request, obj map[string]any, items []map[string]any) {
	if strings.Contains(r.Header.Get("Accept"), "as=Table") {
		if obj != nil {
			items = []map[string]any{obj}
		}
		rows := []any{}
		for _, it := range items {
			md := it["metadata"].(map[string]any)
			rows = append(rows, map[string]any{"cells": []any{md["name"], it["spec"].(map[string]any)["reference"]},
				"object": map[string]any{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}})
		}
		writeJSON(w, 200, map[string]any{"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": map[string]any{"resourceVersion": "1"},
			"columnDefinitions": []any{
				map[string]any{"name": "Name", "type": "string", "format": "name", "description": "Name of the flunder."},
				map[string]any{"name": "Requester", "type": "string", "description": "Who asked, as the front proxy said."},
			}, "rows": rows})
		return
	}
	if obj != nil {
		writeJSON(w, 200, obj)
		return
	}
	writeJSON(w, 200, map[string]any{"kind": "FlunderList", "apiVersion": gv, "metadata": map[string]any{"resourceVersion": "1"}, "items": items})
}

// watch streams an ADDED event per Flunder, then holds the stream open
// until the client goes.
func watch(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, it := range items {
		_ = enc.Encode(map[string]any{"type": "ADDED", "object": it})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	<-r.Context().Done()
}
