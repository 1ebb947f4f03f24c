package pki

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
)

// newTLSServer serves h over real TLS on loopback with b's server config.
func newTLSServer(t *testing.T, b *Bundle, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.TLS = b.ServerTLSConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestWriteKubeconfig(t *testing.T) {
	b := mustEnsure(t, t.TempDir(), Options{})

	// The test server answers /version to the admin only, as identified by
	// the client certificate the TLS layer verified.
	srv := newTLSServer(t, b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || r.TLS.VerifiedChains[0][0].Subject.CommonName != AdminUser {
			http.Error(w, "no admin certificate", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2-havre"})
	}))

	path := filepath.Join(t.TempDir(), "nested", "dir", "kubeconfig.yaml")
	if err := WriteKubeconfig(path, srv.URL, b.CAPEM, b.AdminCertPEM, b.AdminKeyPEM); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", info.Mode().Perm())
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("created parent dir: %v, %v", info.Mode().Perm(), err)
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "havre" {
		t.Errorf("current-context = %q", cfg.CurrentContext)
	}
	ctx := cfg.Contexts["havre"]
	if ctx == nil || ctx.Cluster != "havre" || ctx.AuthInfo != "havre" {
		t.Fatalf("context havre = %+v", ctx)
	}
	if c := cfg.Clusters["havre"]; c == nil || c.Server != srv.URL || string(c.CertificateAuthorityData) != string(b.CAPEM) {
		t.Errorf("cluster havre = %+v", c)
	}
	if u := cfg.AuthInfos["havre"]; u == nil || string(u.ClientCertificateData) != string(b.AdminCertPEM) || string(u.ClientKeyData) != string(b.AdminKeyPEM) {
		t.Errorf("user havre = %+v", u)
	}

	// A client-go client built from the file reaches the server as the admin.
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if v.GitVersion != "v1.37.2-havre" {
		t.Errorf("GitVersion = %q", v.GitVersion)
	}

	// Rewriting replaces the file whole.
	if err := WriteKubeconfig(path, "https://10.0.0.1:6443", b.CAPEM, b.AdminCertPEM, b.AdminKeyPEM); err != nil {
		t.Fatal(err)
	}
	cfg, err = clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clusters["havre"].Server; got != "https://10.0.0.1:6443" {
		t.Errorf("server after rewrite = %q", got)
	}

	if err := WriteKubeconfig(filepath.Join(t.TempDir(), "k"), "", b.CAPEM, b.AdminCertPEM, b.AdminKeyPEM); err == nil {
		t.Error("kubeconfig without a server URL was written")
	}
}

func TestServerTLSConfig(t *testing.T) {
	b := mustEnsure(t, t.TempDir(), Options{})
	cfg := b.ServerTLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("config = %+v", cfg)
	}
	if b.ServerTLSConfig() == cfg {
		t.Error("ServerTLSConfig returns a shared config")
	}

	srv := newTLSServer(t, b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	adminCert, err := tls.X509KeyPair(b.AdminCertPEM, b.AdminKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other := mustEnsure(t, t.TempDir(), Options{})
	otherAdmin, err := tls.X509KeyPair(other.AdminCertPEM, other.AdminKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		client  *tls.Config
		wantErr bool
	}{
		{"no client certificate", &tls.Config{RootCAs: b.CAPool()}, false},
		{"admin certificate", &tls.Config{RootCAs: b.CAPool(), Certificates: []tls.Certificate{adminCert}}, false},
		{"certificate from another CA", &tls.Config{RootCAs: b.CAPool(), Certificates: []tls.Certificate{otherAdmin}}, true},
		{"TLS 1.1", &tls.Config{RootCAs: b.CAPool(), MaxVersion: tls.VersionTLS11}, true},
		{"server not trusted by another CA", &tls.Config{RootCAs: other.CAPool()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tt.client}}
			defer c.CloseIdleConnections()
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}
