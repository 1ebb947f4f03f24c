package auth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/havre/havre/internal/pki"
)

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := pki.WriteFileAtomic(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseTokenCSV(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		token   string
		want    *User // nil: token not found
		wantErr string
	}{{
		name:  "full record",
		csv:   `tok1,alice,1001,"dev,ops"` + "\n",
		token: "tok1",
		want:  &User{Name: "alice", UID: "1001", Groups: []string{"dev", "ops"}},
	}, {
		name:  "no groups column",
		csv:   "tok1,alice,1001\n",
		token: "tok1",
		want:  &User{Name: "alice", UID: "1001"},
	}, {
		name:  "single unquoted group, extra columns ignored",
		csv:   "tok1,alice,1001,dev,whatever\n",
		token: "tok1",
		want:  &User{Name: "alice", UID: "1001", Groups: []string{"dev"}},
	}, {
		name:  "blank lines, spaces after commas, no final newline",
		csv:   "\n\ntok1, alice, 1001, \"dev, ops\"\n\ntok2,bob,2",
		token: "tok2",
		want:  &User{Name: "bob", UID: "2"},
	}, {
		name:  "later duplicate wins",
		csv:   "tok1,alice,1\ntok1,mallory,2\n",
		token: "tok1",
		want:  &User{Name: "mallory", UID: "2"},
	}, {
		name:  "empty token skipped",
		csv:   ",alice,1\n",
		token: "",
	}, {
		name:  "prefix of a token",
		csv:   "tok1,alice,1\n",
		token: "tok",
	}, {
		name:    "too few columns",
		csv:     "tok1,alice,1\ntok2,bob\n",
		wantErr: "line 2: need at least 3 columns",
	}, {
		name:    "empty user",
		csv:     "tok1,,1\n",
		wantErr: "empty user name",
	}, {
		name:    "bad quoting",
		csv:     "tok1,\"alice,1\n",
		wantErr: "extraneous or missing",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := parseTokenCSV([]byte(tt.csv))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, ok := table.lookup(tt.token)
			if tt.want == nil {
				if ok {
					t.Errorf("lookup(%q) = %+v, want nothing", tt.token, u)
				}
				return
			}
			if !ok || !reflect.DeepEqual(u, tt.want) {
				t.Errorf("lookup(%q) = %+v, %v; want %+v", tt.token, u, ok, tt.want)
			}
		})
	}
}

func TestTokenFileAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	writeFile(t, path, `tok1,alice,1001,"dev,system:authenticated"`+"\n")
	tf, err := NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"valid", "Bearer tok1", "alice", nil},
		{"extra spaces", "  Bearer   tok1  ", "alice", nil},
		{"wrong token", "Bearer tok2", "", ErrInvalidToken},
		{"empty token", "Bearer", "", nil},
		{"only spaces after the scheme", "Bearer  ", "", nil},
		{"space then token", "Bearer  tok1", "alice", nil},
		{"other scheme", "Basic dG9rMQ==", "", nil},
		{"no header", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			u, ok, err := tf.Authenticate(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want == "" {
				if ok || u != nil {
					t.Errorf("authenticated as %+v", u)
				}
				return
			}
			if !ok || u.Name != tt.want {
				t.Fatalf("user = %+v, %v", u, ok)
			}
			// system:authenticated is there exactly once.
			if n := len(slices.DeleteFunc(slices.Clone(u.Groups), func(g string) bool { return g != GroupAuthenticated })); n != 1 {
				t.Errorf("groups = %v", u.Groups)
			}
		})
	}

	// Users handed out are copies: mutating one does not change the next.
	u, _, _ := tf.Authenticate(bearerRequest("tok1"))
	u.Groups[0] = "hacked"
	u, _, _ = tf.Authenticate(bearerRequest("tok1"))
	if u.Groups[0] != "dev" {
		t.Errorf("shared user mutated: %v", u.Groups)
	}

	if _, err := NewTokenFile(filepath.Join(t.TempDir(), "missing.csv")); err == nil {
		t.Error("NewTokenFile on a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	writeFile(t, bad, "only,two\n")
	if _, err := NewTokenFile(bad); err == nil {
		t.Error("NewTokenFile on a malformed file succeeded")
	}
}

func TestTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	writeFile(t, path, "old,alice,1\n")
	tf, err := NewTokenFileWithInterval(path, 0) // check on every request
	if err != nil {
		t.Fatal(err)
	}
	authAs := func(token string) string {
		u, ok, _ := tf.Authenticate(bearerRequest(token))
		if !ok {
			return ""
		}
		return u.Name
	}
	steps := []struct {
		name   string
		change func()
		token  string
		want   string
	}{
		{"initial", func() {}, "old", "alice"},
		{"file replaced", func() { writeFile(t, path, "new,bob,2\n") }, "new", "bob"},
		{"old token gone", func() {}, "old", ""},
		{"malformed file keeps previous tokens", func() { writeFile(t, path, "broken\n") }, "new", "bob"},
		{"file removed keeps previous tokens", func() { os.Remove(path) }, "new", "bob"},
		{"file back", func() { writeFile(t, path, "newer,carol,3\n") }, "newer", "carol"},
	}
	for _, s := range steps {
		s.change()
		if got := authAs(s.token); got != s.want {
			t.Fatalf("%s: token %q authenticates as %q, want %q", s.name, s.token, got, s.want)
		}
	}

	// With checks disabled, a change is seen only through Reload.
	tf2, err := NewTokenFileWithInterval(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "newest,dave,4\n")
	if _, ok, _ := tf2.Authenticate(bearerRequest("newest")); ok {
		t.Error("change seen without a check")
	}
	if err := tf2.Reload(); err != nil {
		t.Fatal(err)
	}
	if u, ok, _ := tf2.Authenticate(bearerRequest("newest")); !ok || u.Name != "dave" {
		t.Errorf("after Reload: %+v, %v", u, ok)
	}
	for _, change := range []func(){
		func() { writeFile(t, path, "broken\n") },
		func() { os.Remove(path) },
	} {
		change()
		if err := tf2.Reload(); err == nil {
			t.Error("Reload of a broken or missing file reported no error")
		}
		if _, ok, _ := tf2.Authenticate(bearerRequest("newest")); !ok {
			t.Error("previous tokens dropped after a failed Reload")
		}
	}
}

// Requests and reloads race; run with -race.
func TestTokenFileConcurrentReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	writeFile(t, path, "a,alice,1\nb,bob,2\n")
	tf, err := NewTokenFileWithInterval(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				u, ok, err := tf.Authenticate(bearerRequest("a"))
				if !ok || err != nil || u.Name != "alice" {
					t.Errorf("worker %d: %+v, %v, %v", i, u, ok, err)
					return
				}
			}
		})
	}
	for i := range 50 {
		writeFile(t, path, "a,alice,1\nb,bob,2\n"+strings.Repeat("c,carol,3\n", i))
	}
	wg.Wait()
}

func TestEnsureServerTokens(t *testing.T) {
	dataDir := t.TempDir()
	token, tokenFile, err := EnsureServerTokens(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 64 {
		t.Errorf("token %q: want 64 hex characters", token)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dataDir, "server"):          0o700 | os.ModeDir,
		filepath.Join(dataDir, "server", "token"): 0o600,
		tokenFile: 0o600,
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s mode = %v, want %v", path, info.Mode(), want)
		}
	}
	if tokenFile != filepath.Join(dataDir, "server", "tokens.csv") {
		t.Errorf("token file = %q", tokenFile)
	}

	tf, err := NewTokenFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	u, ok, err := tf.Authenticate(bearerRequest(token))
	if !ok || err != nil {
		t.Fatalf("join token rejected: %v", err)
	}
	want := &User{Name: "havre:node-bootstrap", UID: "havre:node-bootstrap", Groups: []string{"system:bootstrappers", "system:authenticated"}}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("join token user = %+v, want %+v", u, want)
	}

	// An operator adds a user; a restart keeps the token and the user,
	// without rewriting the file.
	f, err := os.OpenFile(tokenFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("ops-token,ops,7,\"ops\"\n")
	f.Close()
	before, _ := os.ReadFile(tokenFile)
	token2, _, err := EnsureServerTokens(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if token2 != token {
		t.Error("join token changed on restart")
	}
	after, _ := os.ReadFile(tokenFile)
	if string(before) != string(after) {
		t.Errorf("token file rewritten:\n%s\nbecame\n%s", before, after)
	}

	// An operator replaces the join token: the bootstrap record follows,
	// the other users stay, stale bootstrap records go.
	writeFile(t, filepath.Join(dataDir, "server", "token"), "operator-chosen-token-0123456789\n")
	f, _ = os.OpenFile(tokenFile, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("stale," + JoinTokenUser + ",x,\n")
	f.Close()
	token3, _, err := EnsureServerTokens(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if token3 != "operator-chosen-token-0123456789" {
		t.Errorf("token = %q", token3)
	}
	if err := tf.Reload(); err != nil {
		t.Fatal(err)
	}
	for tok, wantUser := range map[string]string{token3: JoinTokenUser, "ops-token": "ops", token: "", "stale": ""} {
		u, ok, _ := tf.Authenticate(bearerRequest(tok))
		if got := ""; ok {
			got = u.Name
			if got != wantUser {
				t.Errorf("token %q authenticates as %q, want %q", tok, got, wantUser)
			}
		} else if wantUser != "" {
			t.Errorf("token %q rejected, want %q", tok, wantUser)
		}
	}

	// Unusable tokens are errors, never silently replaced.
	for _, bad := range []string{"", "short", "has a space in it 0123456789", "comma,0123456789abcdef"} {
		writeFile(t, filepath.Join(dataDir, "server", "token"), bad)
		if _, _, err := EnsureServerTokens(dataDir); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	// So is a malformed token file.
	writeFile(t, filepath.Join(dataDir, "server", "token"), token)
	writeFile(t, tokenFile, "\"unterminated\n")
	if _, _, err := EnsureServerTokens(dataDir); err == nil {
		t.Error("malformed token file accepted")
	}
}

func TestX509(t *testing.T) {
	b, err := pki.Ensure(t.TempDir(), pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(certPEM []byte) *x509.Certificate {
		t.Helper()
		block, _ := pem.Decode(certPEM)
		if block == nil {
			t.Fatal("no PEM block")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := leaf(b.AdminCertPEM)
	serving := leaf(b.ServingCertPEM)
	noCNPEM, _, err := b.IssueClientCert("x", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCN := leaf(noCNPEM)
	noCN.Subject.CommonName = "" // as if issued without one
	expired := leaf(b.AdminCertPEM)
	expired.NotAfter = time.Now().Add(-time.Minute)

	state := func(peer bool, chains ...*x509.Certificate) *tls.ConnectionState {
		cs := &tls.ConnectionState{}
		if peer && len(chains) > 0 {
			cs.PeerCertificates = []*x509.Certificate{chains[0]}
		}
		if len(chains) > 0 {
			cs.VerifiedChains = [][]*x509.Certificate{{chains[0], b.CA}}
		}
		return cs
	}
	tests := []struct {
		name    string
		tls     *tls.ConnectionState
		want    *User
		wantErr bool
	}{
		{"plain HTTP", nil, nil, false},
		{"TLS without client certificate", &tls.ConnectionState{}, nil, false},
		{"admin", state(true, admin), &User{Name: "havre-admin", Groups: []string{"system:masters", "system:authenticated"}}, false},
		{"presented but not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{admin}}, nil, true},
		{"no client-auth usage", state(true, serving), nil, true},
		{"no common name", state(true, noCN), nil, true},
		{"expired during the connection", state(true, expired), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.TLS = tt.tls
			u, ok, err := X509{}.Authenticate(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.want == nil {
				if ok || u != nil {
					t.Errorf("authenticated as %+v", u)
				}
				return
			}
			if !ok || !reflect.DeepEqual(u, tt.want) {
				t.Errorf("user = %+v, %v; want %+v", u, ok, tt.want)
			}
		})
	}
}
