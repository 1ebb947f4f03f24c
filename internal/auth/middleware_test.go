package auth_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/pki"
)

// whoami is what the test handler answers: the user in the request
// context, and whether an Authorization header reached the handler.
type whoami struct {
	User          *auth.User `json:"user"`
	Authorization bool       `json:"authorization"`
}

type testCluster struct {
	bundle    *pki.Bundle
	srv       *httptest.Server
	joinToken string
}

// newTestCluster starts the real middleware over real TLS on loopback, with
// the cluster PKI and tokens as the server will set them up.
func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	dataDir := t.TempDir()
	b, err := pki.Ensure(dataDir, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	joinToken, tokenFile, err := auth.EnsureServerTokens(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(tokenFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`alice-token,alice,1001,"dev,ops"` + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokenFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.UserFrom(r.Context())
		_, authz := r.Header["Authorization"]
		_ = json.NewEncoder(w).Encode(whoami{User: u, Authorization: authz})
	})
	srv := httptest.NewUnstartedServer(auth.WithAuthentication(h, auth.Union{auth.X509{}, tokens},
		[]string{"/livez", "/readyz", "/healthz", "/version"}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.TLS = b.ServerTLSConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &testCluster{bundle: b, srv: srv, joinToken: joinToken}
}

func (c *testCluster) client(t *testing.T, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: c.bundle.CAPool()}
	if certPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestWithAuthenticationOverTLS(t *testing.T) {
	c := newTestCluster(t)
	other, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := c.bundle.IssueClientCert("system:node:n1", []string{"system:nodes"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	type creds struct{ cert, key []byte }
	tests := []struct {
		name       string
		creds      creds
		path       string
		bearer     string // the Authorization header value, if any
		wantTLSErr bool   // rejected at the handshake (a 401 is accepted too)
		wantCode   int
		wantUser   string
		wantGroups []string
	}{{
		name:       "admin certificate",
		creds:      creds{c.bundle.AdminCertPEM, c.bundle.AdminKeyPEM},
		path:       "/api/v1/pods",
		wantCode:   200,
		wantUser:   "havre-admin",
		wantGroups: []string{"system:masters", "system:authenticated"},
	}, {
		name:       "issued node certificate",
		creds:      creds{nodeCert, nodeKey},
		path:       "/api/v1/nodes",
		wantCode:   200,
		wantUser:   "system:node:n1",
		wantGroups: []string{"system:nodes", "system:authenticated"},
	}, {
		name:       "certificate from another CA",
		creds:      creds{other.AdminCertPEM, other.AdminKeyPEM},
		path:       "/api/v1/pods",
		wantTLSErr: true,
		wantCode:   401,
	}, {
		name:       "serving certificate used as a client certificate",
		creds:      creds{c.bundle.ServingCertPEM, c.bundle.ServingKeyPEM},
		path:       "/api/v1/pods",
		wantTLSErr: true,
		wantCode:   401,
	}, {
		name:       "bearer token",
		path:       "/api/v1/pods",
		bearer:     "Bearer alice-token",
		wantCode:   200,
		wantUser:   "alice",
		wantGroups: []string{"dev", "ops", "system:authenticated"},
	}, {
		name:       "bearer scheme is case-insensitive",
		path:       "/api/v1/pods",
		bearer:     "bearer alice-token",
		wantCode:   200,
		wantUser:   "alice",
		wantGroups: []string{"dev", "ops", "system:authenticated"},
	}, {
		name:       "join token",
		path:       "/apis/certificates.k8s.io/v1/certificatesigningrequests",
		bearer:     "Bearer " + c.joinToken,
		wantCode:   200,
		wantUser:   "havre:node-bootstrap",
		wantGroups: []string{"system:bootstrappers", "system:authenticated"},
	}, {
		name:     "wrong token",
		path:     "/api/v1/pods",
		bearer:   "Bearer alice-tokem",
		wantCode: 401,
	}, {
		name:     "empty bearer token",
		path:     "/api/v1/pods",
		bearer:   "Bearer ",
		wantCode: 401,
	}, {
		name:     "basic auth is not accepted",
		path:     "/api/v1/pods",
		bearer:   "Basic YWxpY2U6YWxpY2UtdG9rZW4=",
		wantCode: 401,
	}, {
		name:     "no credentials",
		path:     "/api/v1/pods",
		wantCode: 401,
	}, {
		name:     "no credentials on a path that only starts like an anonymous one",
		path:     "/livez/etcd",
		wantCode: 401,
	}, {
		name:     "anonymous path",
		path:     "/livez",
		wantCode: 200,
	}, {
		name:     "anonymous path with a wrong token",
		path:     "/version",
		bearer:   "Bearer nope",
		wantCode: 200,
	}, {
		name:       "anonymous path with a certificate keeps the user",
		creds:      creds{c.bundle.AdminCertPEM, c.bundle.AdminKeyPEM},
		path:       "/healthz",
		wantCode:   200,
		wantUser:   "havre-admin",
		wantGroups: []string{"system:masters", "system:authenticated"},
	}, {
		name:       "certificate wins over a wrong token",
		creds:      creds{c.bundle.AdminCertPEM, c.bundle.AdminKeyPEM},
		path:       "/api",
		bearer:     "Bearer nope",
		wantCode:   200,
		wantUser:   "havre-admin",
		wantGroups: []string{"system:masters", "system:authenticated"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, c.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.bearer != "" {
				req.Header.Set("Authorization", tt.bearer)
			}
			resp, err := c.client(t, tt.creds.cert, tt.creds.key).Do(req)
			if err != nil {
				if tt.wantTLSErr {
					t.Logf("rejected at TLS: %v", err)
					return
				}
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantCode, body)
			}
			if resp.StatusCode == http.StatusUnauthorized {
				checkUnauthorized(t, resp, body)
				return
			}
			var got whoami
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if got.Authorization {
				t.Error("the Authorization header reached the handler")
			}
			if tt.wantUser == "" {
				if got.User != nil {
					t.Errorf("user = %+v, want none", got.User)
				}
				return
			}
			if got.User == nil || got.User.Name != tt.wantUser || !slices.Equal(got.User.Groups, tt.wantGroups) {
				t.Errorf("user = %+v, want %s in %v", got.User, tt.wantUser, tt.wantGroups)
			}
		})
	}
}

func checkUnauthorized(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  "Unauthorized",
		Reason:   metav1.StatusReasonUnauthorized,
		Code:     401,
	}
	if st.Kind != want.Kind || st.APIVersion != want.APIVersion || st.Status != want.Status ||
		st.Message != want.Message || st.Reason != want.Reason || st.Code != want.Code {
		t.Errorf("status = %+v, want %+v", st, want)
	}
}

// The Authorization header is removed from the request the handler sees,
// not from the caller's request.
func TestWithAuthenticationDoesNotMutateCallerRequest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(path, []byte("t0k3n,bob,2,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Header
	h := auth.WithAuthentication(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header
	}), tokens, nil)
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer t0k3n")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("code = %d", rec.Code)
	}
	if seen.Get("Authorization") != "" {
		t.Error("handler saw the Authorization header")
	}
	if req.Header.Get("Authorization") == "" {
		t.Error("caller's request lost its Authorization header")
	}
}
