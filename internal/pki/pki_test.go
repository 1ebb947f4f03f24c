package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var allFiles = []string{CACertFile, CAKeyFile, ServingCertFile, ServingKeyFile, AdminCertFile, AdminKeyFile}

func mustEnsure(t testing.TB, dataDir string, opts Options) *Bundle {
	t.Helper()
	b, err := Ensure(dataDir, opts)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range allFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		out[name] = data
	}
	return out
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	c, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifies checks that certPEM chains to ca for usage.
func verifies(t *testing.T, ca *x509.Certificate, certPEM []byte, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	c := mustParseCert(t, certPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Fatalf("certificate %q does not verify: %v", c.Subject.CommonName, err)
	}
	return c
}

func TestEnsureCreatesPKI(t *testing.T) {
	dataDir := t.TempDir()
	b := mustEnsure(t, dataDir, Options{Hostname: "node-1.example", ExtraSANs: []string{"203.0.113.9", "API.example.com", "*.apps.example.com"}})

	if b.Dir != filepath.Join(dataDir, "tls") {
		t.Errorf("Dir = %q", b.Dir)
	}
	info, err := os.Stat(b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("tls dir mode = %v, want 0700", got)
	}
	wantPerm := map[string]fs.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600,
		ServingCertFile: 0o644, ServingKeyFile: 0o600,
		AdminCertFile: 0o644, AdminKeyFile: 0o600,
	}
	for name, want := range wantPerm {
		info, err := os.Stat(filepath.Join(b.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	entries, _ := os.ReadDir(b.Dir)
	if len(entries) != len(allFiles) {
		t.Errorf("tls dir holds %d entries, want %d (leftover temporary files?)", len(entries), len(allFiles))
	}

	// CA.
	ca := b.CA
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA is not a CA: IsCA=%v KeyUsage=%v", ca.IsCA, ca.KeyUsage)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", ca.PublicKey)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if life := time.Until(ca.NotAfter); life < CAValidity-time.Hour || life > CAValidity {
		t.Errorf("CA lifetime left = %v, want about %v", life, CAValidity)
	}

	// Serving certificate.
	serving := verifies(t, ca, b.ServingCertPEM, x509.ExtKeyUsageServerAuth)
	wantDNS := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "node-1.example", "api.example.com", "*.apps.example.com"}
	for _, d := range wantDNS {
		if !slices.Contains(serving.DNSNames, d) {
			t.Errorf("serving cert lacks DNS SAN %q: %v", d, serving.DNSNames)
		}
	}
	wantIPs := []string{"127.0.0.1", "::1", "10.43.0.1", "203.0.113.9"}
	addrs, err := hostAddresses()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		wantIPs = append(wantIPs, a.String())
	}
	for _, ip := range wantIPs {
		if !slices.ContainsFunc(serving.IPAddresses, func(got net.IP) bool { return got.Equal(net.ParseIP(ip)) }) {
			t.Errorf("serving cert lacks IP SAN %s: %v", ip, serving.IPAddresses)
		}
	}
	for _, got := range serving.IPAddresses {
		if got.IsLinkLocalUnicast() {
			t.Errorf("serving cert names link-local address %v", got)
		}
	}
	if err := serving.VerifyHostname("kubernetes.default.svc"); err != nil {
		t.Error(err)
	}

	// Admin certificate.
	admin := verifies(t, ca, b.AdminCertPEM, x509.ExtKeyUsageClientAuth)
	if admin.Subject.CommonName != "havre-admin" || !slices.Equal(admin.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("admin subject = %v", admin.Subject)
	}
	if slices.Contains(admin.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("admin cert is also a server cert")
	}
	if _, err := tls.X509KeyPair(b.AdminCertPEM, b.AdminKeyPEM); err != nil {
		t.Errorf("admin cert and key do not match: %v", err)
	}
	if len(b.Notes) < 3 {
		t.Errorf("Notes = %q, want creation of CA, serving and admin certificates", b.Notes)
	}
}

func TestEnsureTwiceKeepsEverything(t *testing.T) {
	dataDir := t.TempDir()
	opts := Options{ExtraSANs: []string{"198.51.100.7"}}
	first := mustEnsure(t, dataDir, opts)
	before := readFiles(t, first.Dir)

	second := mustEnsure(t, dataDir, opts)
	after := readFiles(t, second.Dir)
	for _, name := range allFiles {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed on the second Ensure", name)
		}
	}
	if !first.CA.Equal(second.CA) || !bytes.Equal(first.ServingCertPEM, second.ServingCertPEM) ||
		!bytes.Equal(first.AdminCertPEM, second.AdminCertPEM) || !bytes.Equal(first.AdminKeyPEM, second.AdminKeyPEM) {
		t.Error("second Bundle differs from the first")
	}
	if len(second.Notes) != 0 {
		t.Errorf("second Ensure Notes = %q, want none", second.Notes)
	}
}

func TestEnsureReissuesLeaves(t *testing.T) {
	otherCA := mustEnsure(t, t.TempDir(), Options{})

	tests := []struct {
		name string
		// tamper breaks something in the PKI b has just created and returns
		// the options for the next Ensure.
		tamper      func(t *testing.T, b *Bundle) Options
		wantServing bool // serving cert re-issued
		wantAdmin   bool // admin cert re-issued
		wantNote    string
	}{{
		name: "missing SAN (host address changed)",
		tamper: func(t *testing.T, b *Bundle) Options {
			return Options{ExtraSANs: []string{"192.0.2.77", "new.example.com"}}
		},
		wantServing: true,
		wantNote:    "missing DNS:new.example.com, IP:192.0.2.77",
	}, {
		name: "hostname changed",
		tamper: func(t *testing.T, b *Bundle) Options {
			return Options{Hostname: "renamed-host"}
		},
		wantServing: true,
		wantNote:    "missing DNS:renamed-host",
	}, {
		name: "serving cert expiring within 30 days",
		tamper: func(t *testing.T, b *Bundle) Options {
			leaf := mustParseCert(t, b.ServingCertPEM)
			tmpl := &x509.Certificate{Subject: leaf.Subject, DNSNames: leaf.DNSNames, IPAddresses: leaf.IPAddresses,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			certPEM, keyPEM, err := b.issue(tmpl, 29*24*time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := b.writeLeaf(ServingCertFile, ServingKeyFile, certPEM, keyPEM); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantServing: true,
		wantNote:    "expires at",
	}, {
		name: "serving cert signed by another CA",
		tamper: func(t *testing.T, b *Bundle) Options {
			if err := b.writeLeaf(ServingCertFile, ServingKeyFile, otherCA.ServingCertPEM, otherCA.ServingKeyPEM); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantServing: true,
		wantNote:    "does not verify against the cluster CA",
	}, {
		name: "serving key replaced (crash between key and cert)",
		tamper: func(t *testing.T, b *Bundle) Options {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			keyPEM, _ := encodeKeyPEM(key)
			if err := WriteFileAtomic(filepath.Join(b.Dir, ServingKeyFile), keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantServing: true,
		wantNote:    "unusable",
	}, {
		name: "serving cert deleted",
		tamper: func(t *testing.T, b *Bundle) Options {
			if err := os.Remove(filepath.Join(b.Dir, ServingCertFile)); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantServing: true,
		wantNote:    "not found",
	}, {
		name: "admin cert with another subject",
		tamper: func(t *testing.T, b *Bundle) Options {
			certPEM, keyPEM, err := b.IssueClientCert("bob", []string{"dev"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.writeLeaf(AdminCertFile, AdminKeyFile, certPEM, keyPEM); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantAdmin: true,
		wantNote:  "unexpected subject",
	}, {
		name: "admin cert is a serving cert",
		tamper: func(t *testing.T, b *Bundle) Options {
			if err := b.writeLeaf(AdminCertFile, AdminKeyFile, b.ServingCertPEM, b.ServingKeyPEM); err != nil {
				t.Fatal(err)
			}
			return Options{}
		},
		wantAdmin: true,
		wantNote:  "incompatible key usage",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			b := mustEnsure(t, dataDir, Options{})
			opts := tt.tamper(t, b)
			before := readFiles(t, b.Dir)

			b2 := mustEnsure(t, dataDir, opts)
			after := readFiles(t, b2.Dir)

			for _, name := range []string{CACertFile, CAKeyFile} {
				if !bytes.Equal(before[name], after[name]) {
					t.Errorf("%s changed", name)
				}
			}
			if !b2.CA.Equal(b.CA) {
				t.Error("CA changed")
			}
			if changed := !bytes.Equal(before[ServingCertFile], after[ServingCertFile]); changed != tt.wantServing {
				t.Errorf("serving cert re-issued = %v, want %v", changed, tt.wantServing)
			}
			if changed := !bytes.Equal(before[AdminCertFile], after[AdminCertFile]); changed != tt.wantAdmin {
				t.Errorf("admin cert re-issued = %v, want %v", changed, tt.wantAdmin)
			}
			serving := verifies(t, b.CA, b2.ServingCertPEM, x509.ExtKeyUsageServerAuth)
			if time.Until(serving.NotAfter) < LeafValidity-time.Hour && tt.wantServing {
				t.Errorf("re-issued serving cert expires at %v", serving.NotAfter)
			}
			for _, san := range opts.ExtraSANs {
				if err := serving.VerifyHostname(san); err != nil {
					t.Errorf("re-issued serving cert: %v", err)
				}
			}
			admin := verifies(t, b.CA, b2.AdminCertPEM, x509.ExtKeyUsageClientAuth)
			if admin.Subject.CommonName != AdminUser {
				t.Errorf("admin CN = %q", admin.Subject.CommonName)
			}
			if !slices.ContainsFunc(b2.Notes, func(n string) bool { return strings.Contains(n, tt.wantNote) }) {
				t.Errorf("Notes = %q, want one containing %q", b2.Notes, tt.wantNote)
			}
			// And the result is stable.
			if b3 := mustEnsure(t, dataDir, opts); len(b3.Notes) != 0 {
				t.Errorf("third Ensure Notes = %q, want none", b3.Notes)
			}
		})
	}
}

func TestEnsureNeverReplacesCA(t *testing.T) {
	other := mustEnsure(t, t.TempDir(), Options{})
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
	}{
		{"key missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"key of another CA", func(t *testing.T, dir string) {
			keyPEM, err := encodeKeyPEM(other.caKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"certificate garbage", func(t *testing.T, dir string) {
			if err := WriteFileAtomic(filepath.Join(dir, CACertFile), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"certificate is not a CA", func(t *testing.T, dir string) {
			b := mustEnsure(t, filepath.Dir(dir), Options{})
			if err := WriteFileAtomic(filepath.Join(dir, CACertFile), b.ServingCertPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := WriteFileAtomic(filepath.Join(dir, CAKeyFile), b.ServingKeyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			b := mustEnsure(t, dataDir, Options{})
			tt.tamper(t, b.Dir)
			var before [][]byte
			for _, name := range []string{CACertFile, CAKeyFile} {
				data, _ := os.ReadFile(filepath.Join(b.Dir, name))
				before = append(before, data)
			}
			if _, err := Ensure(dataDir, Options{}); err == nil {
				t.Fatal("Ensure succeeded, want an error")
			} else {
				t.Log(err)
			}
			for i, name := range []string{CACertFile, CAKeyFile} {
				data, _ := os.ReadFile(filepath.Join(b.Dir, name))
				if !bytes.Equal(before[i], data) {
					t.Errorf("%s was replaced", name)
				}
			}
		})
	}
}

// A first start interrupted after the CA key was written but before its
// certificate leaves a stray key, which the next start replaces.
func TestEnsureAfterInterruptedFirstStart(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, DirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := mustEnsure(t, dataDir, Options{})
	verifies(t, b.CA, b.ServingCertPEM, x509.ExtKeyUsageServerAuth)
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("existing tls dir mode = %v, want 0700", info.Mode().Perm())
	}
}

func TestEnsureExistingKeyPermissionsTightened(t *testing.T) {
	dataDir := t.TempDir()
	b := mustEnsure(t, dataDir, Options{})
	for _, name := range []string{CAKeyFile, ServingKeyFile, AdminKeyFile} {
		if err := os.Chmod(filepath.Join(b.Dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustEnsure(t, dataDir, Options{})
	for _, name := range []string{CAKeyFile, ServingKeyFile, AdminKeyFile} {
		info, err := os.Stat(filepath.Join(b.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, info.Mode().Perm())
		}
	}
}

func TestEnsureOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"URL as SAN", Options{ExtraSANs: []string{"https://api.example.com"}}},
		{"host:port as SAN", Options{ExtraSANs: []string{"api.example.com:6443"}}},
		{"zoned IPv6 SAN", Options{ExtraSANs: []string{"fe80::1%eth0"}}},
		{"space in SAN", Options{ExtraSANs: []string{"api example"}}},
		{"bad service IP", Options{ServiceIP: "10.43.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			if _, err := Ensure(dataDir, tt.opts); err == nil {
				t.Fatal("Ensure succeeded, want an error")
			}
			if _, err := os.Stat(filepath.Join(dataDir, DirName)); err == nil {
				t.Error("Ensure wrote files despite invalid options")
			}
		})
	}
	if _, err := Ensure("", Options{}); err == nil {
		t.Error("Ensure with empty data dir succeeded")
	}
}

func TestIssueClientCert(t *testing.T) {
	b := mustEnsure(t, t.TempDir(), Options{})
	tests := []struct {
		name     string
		cn       string
		orgs     []string
		validity time.Duration
		wantLife time.Duration
		wantErr  bool
	}{
		{"node", "system:node:n1", []string{"system:nodes"}, time.Hour, time.Hour, false},
		{"default validity", "agent", nil, 0, LeafValidity, false},
		{"capped at CA expiry", "long", nil, 100 * 365 * 24 * time.Hour, CAValidity, false},
		{"no common name", "", []string{"x"}, time.Hour, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := b.IssueClientCert(tt.cn, tt.orgs, tt.validity)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatal(err)
			}
			c := verifies(t, b.CA, certPEM, x509.ExtKeyUsageClientAuth)
			if c.Subject.CommonName != tt.cn || !slices.Equal(c.Subject.Organization, tt.orgs) {
				t.Errorf("subject = %v", c.Subject)
			}
			if c.NotAfter.After(b.CA.NotAfter) {
				t.Errorf("certificate outlives the CA: %v > %v", c.NotAfter, b.CA.NotAfter)
			}
			if life := time.Until(c.NotAfter); life > tt.wantLife || life < tt.wantLife-time.Hour {
				t.Errorf("life = %v, want about %v", life, tt.wantLife)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for i, tc := range []struct {
		data string
		perm fs.FileMode
	}{{"first", 0o644}, {"second, longer", 0o600}, {"3", 0o640}} {
		if err := WriteFileAtomic(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != tc.data {
			t.Fatalf("write %d: read %q, %v", i, got, err)
		}
		info, _ := os.Stat(path)
		if info.Mode().Perm() != tc.perm {
			t.Errorf("write %d: mode %v, want %v", i, info.Mode().Perm(), tc.perm)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// BenchmarkEnsure measures a first start: CA, serving and admin
// certificates generated and durably written to a fresh directory.
func BenchmarkEnsure(b *testing.B) {
	base := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		if _, err := Ensure(filepath.Join(base, strconv.Itoa(i)), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnsureExisting measures a later start: everything loaded and
// checked, nothing written.
func BenchmarkEnsureExisting(b *testing.B) {
	dir := b.TempDir()
	mustEnsure(b, dir, Options{})
	for b.Loop() {
		if _, err := Ensure(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSelfSignedServing(t *testing.T) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("192.0.2.7")}
	cert, err := SelfSignedServing("node-a@1", []string{"node-a", "localhost"}, ips, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "node-a@1" || !slices.Equal(leaf.DNSNames, []string{"node-a", "localhost"}) ||
		len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[1].Equal(ips[1]) {
		t.Errorf("subject %q, names %v, addresses %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("usage %v, CA %v: want a server-auth leaf", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 24*time.Hour || d > 25*time.Hour {
		t.Errorf("valid for %v, want about a day", d)
	}
	// It verifies against itself for its names, as a client pinning it
	// would check it.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"node-a", "192.0.2.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other", Roots: pool}); err == nil {
		t.Error("verified for a name it does not hold")
	}
	if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("private key %T", cert.PrivateKey)
	}
}
