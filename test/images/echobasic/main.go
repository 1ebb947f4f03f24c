// Command echobasic is Havre's stand-in for the Gateway API conformance
// suite's backend image (registry.k8s.io/gateway-api/echo-basic), written
// from what the suite expects of it (sigs.k8s.io/gateway-api/conformance
// utils/http): every request is answered with a JSON description of itself
//
//	{"path","host","method","proto","headers","httpPort",
//	 "namespace","ingress","service","pod","tls"}
//
// with namespace and pod from the environment (NAMESPACE, POD_NAME, set by
// the suite's manifests through the downward API). It serves HTTP/1.1 on
// $HTTP_PORT (3000), HTTP/1.1 and h2c on $H2C_PORT (3001) and, when
// TLS_SERVER_CERT and TLS_SERVER_PRIVKEY name files, HTTPS on $HTTPS_PORT
// (8443). Paths, as upstream's:
//
//	/health          200 "OK"
//	/status/NNN      an empty answer with status NNN
//	/retry/...       ?uuid=&succeedAfter=[&responseCode=]: fails (a reset
//	                 connection, or responseCode) succeedAfter times per uuid
//	anything else    the echo; ?delay=DURATION waits first; every
//	                 "X-Echo-Set-Header: Name:value,..." header is set on
//	                 the answer
//
// The gRPC, TCP and UDP echo modes of upstream's image (GRPC_ECHO_SERVER,
// TCP_ECHO_SERVER, UDP_ECHO_SERVER) are not implemented: those pods run
// the HTTP echo, which is enough for them to be Ready; the tests using them
// are outside the Gateway-HTTP core profile. Arguments are ignored, so the
// same image also stands in for the suite's coredns pod (UDPRoute tests).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// assertions is the echo's body, field for field what the suite parses.
type assertions struct {
	Path     string              `json:"path"`
	Host     string              `json:"host"`
	Method   string              `json:"method"`
	Proto    string              `json:"proto"`
	Headers  map[string][]string `json:"headers"`
	HTTPPort string              `json:"httpPort"`

	Namespace string `json:"namespace"`
	Ingress   string `json:"ingress"`
	Service   string `json:"service"`
	Pod       string `json:"pod"`

	TLS *tlsAssertions `json:"tls,omitempty"`
}

type tlsAssertions struct {
	Version            string   `json:"version"`
	PeerCertificates   []string `json:"peerCertificates,omitempty"`
	ServerName         string   `json:"serverName"`
	NegotiatedProtocol string   `json:"negotiatedProtocol,omitempty"`
	CipherSuite        string   `json:"cipherSuite"`
}

type server struct {
	httpPort, namespace, ingress, service, pod string

	mu       sync.Mutex
	attempts map[string]int // /retry: failed attempts per uuid
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	s := &server{
		httpPort:  env("HTTP_PORT", "3000"),
		namespace: os.Getenv("NAMESPACE"),
		ingress:   os.Getenv("INGRESS_NAME"),
		service:   os.Getenv("SERVICE_NAME"),
		pod:       os.Getenv("POD_NAME"),
		attempts:  map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("OK"))
	})
	mux.HandleFunc("/status/", statusHandler)
	mux.HandleFunc("/retry/", s.retry)
	mux.HandleFunc("/", s.echo)
	// As upstream, "//" in a path is folded before routing (the echo still
	// reports the request URI as it came).
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.ReplaceAll(r.URL.Path, "//", "/")
		mux.ServeHTTP(w, r)
	})

	errs := make(chan error, 3)
	go func() {
		srv := &http.Server{Addr: ":" + s.httpPort, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		errs <- srv.ListenAndServe()
	}()
	go func() {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		h2c := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 && r.Header.Get("Upgrade") != "h2c" {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, "Expected h2c request")
				return
			}
			s.echo(w, r)
		})
		srv := &http.Server{Addr: ":" + env("H2C_PORT", "3001"), Handler: h2c, Protocols: p, ReadHeaderTimeout: 10 * time.Second}
		errs <- srv.ListenAndServe()
	}()
	if cert, key := os.Getenv("TLS_SERVER_CERT"), os.Getenv("TLS_SERVER_PRIVKEY"); cert != "" && key != "" {
		go func() {
			cfg := &tls.Config{}
			if ca := os.Getenv("TLS_CLIENT_CACERTS"); ca != "" {
				pemData, err := os.ReadFile(ca)
				if err != nil {
					errs <- err
					return
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pemData) {
					errs <- fmt.Errorf("no certificate in %s", ca)
					return
				}
				cfg.ClientAuth = tls.VerifyClientCertIfGiven
				cfg.ClientCAs = pool
			}
			srv := &http.Server{Addr: ":" + env("HTTPS_PORT", "8443"), Handler: handler, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second}
			errs <- srv.ListenAndServeTLS(cert, key)
		}()
	}
	log.Printf("echobasic: pod %s/%s serving HTTP on :%s", s.namespace, s.pod, s.httpPort)
	log.Fatal(<-errs)
}

var statusPath = regexp.MustCompile(`^/status/(\d\d\d)$`)

func statusHandler(w http.ResponseWriter, r *http.Request) {
	code := http.StatusBadRequest
	if m := statusPath.FindStringSubmatch(r.RequestURI); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	w.WriteHeader(code)
}

// retry fails the first succeedAfter requests of a uuid: by resetting the
// connection, or with ?responseCode; then it echoes.
func (s *server) retry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	uuid := q.Get("uuid")
	succeedAfter, err := strconv.Atoi(q.Get("succeedAfter"))
	if uuid == "" || err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "uuid and succeedAfter are required")
		return
	}
	s.mu.Lock()
	fail := s.attempts[uuid] < succeedAfter
	if fail {
		s.attempts[uuid]++
	}
	s.mu.Unlock()
	if !fail {
		s.echo(w, r)
		return
	}
	if err := delay(r, "delayRetry"); err != nil {
		writeError(w, err)
		return
	}
	if code, err := strconv.Atoi(q.Get("responseCode")); err == nil {
		w.WriteHeader(code)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, fmt.Errorf("cannot hijack the connection"))
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close with a RST
	}
	_ = conn.Close()
}

func delay(r *http.Request, key string) error {
	v := r.FormValue(key)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	time.Sleep(d)
	return nil
}

func (s *server) echo(w http.ResponseWriter, r *http.Request) {
	if err := delay(r, "delay"); err != nil {
		writeError(w, err)
		return
	}
	a := assertions{
		Path: r.RequestURI, Host: r.Host, Method: r.Method, Proto: r.Proto, Headers: r.Header, HTTPPort: s.httpPort,
		Namespace: s.namespace, Ingress: s.ingress, Service: s.service, Pod: s.pod,
		TLS: tlsState(r.TLS),
	}
	body, err := json.MarshalIndent(a, "", " ")
	if err != nil {
		writeError(w, err)
		return
	}
	for _, list := range r.Header["X-Echo-Set-Header"] {
		for kv := range strings.SplitSeq(list, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(kv), ":")
			// Set in the map directly: the name keeps its case.
			if len(w.Header()[name]) == 0 {
				w.Header()[name] = []string{value}
			} else {
				w.Header()[name][0] += "," + strings.TrimSpace(value)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, err error) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(body)
}

func tlsState(cs *tls.ConnectionState) *tlsAssertions {
	if cs == nil {
		return nil
	}
	a := &tlsAssertions{
		NegotiatedProtocol: cs.NegotiatedProtocol,
		ServerName:         cs.ServerName,
		CipherSuite:        tls.CipherSuiteName(cs.CipherSuite),
	}
	switch cs.Version {
	case tls.VersionTLS13:
		a.Version = "TLSv1.3"
	case tls.VersionTLS12:
		a.Version = "TLSv1.2"
	case tls.VersionTLS11:
		a.Version = "TLSv1.1"
	case tls.VersionTLS10:
		a.Version = "TLSv1.0"
	}
	for _, c := range cs.PeerCertificates {
		a.PeerCertificates = append(a.PeerCertificates, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	return a
}
