package clusterissuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

func TestIsPrivate(t *testing.T) {
	for name, want := range map[string]bool{
		"app.test": true, "*.app.test": true, "printer.local": true, "x.localhost": true, "db.internal": true,
		"nas.home.arpa": true, "intranet": true, "10.0.0.1": true, "::1": true, "app.test.": true,
		"example.com": false, "www.example.org": false, "*.example.net": false, "test.com": false, "local.dev": false,
	} {
		if got := IsPrivate(name); got != want {
			t.Errorf("IsPrivate(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEnsureAndIssue(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	iss, err := Ensure(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Ensure(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CAPEM()) != string(iss.CAPEM()) {
		t.Fatal("a second Ensure made another CA")
	}
	certPEM, keyPEM, err := iss.Issue([]string{"app.test", "*.app.test", "10.1.2.3"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, want leaf and CA", len(pair.Certificate))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(iss.CAPEM())
	for _, name := range []string{"app.test", "www.app.test", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	if d := time.Until(leaf.NotAfter); d > time.Hour || d < 50*time.Minute {
		t.Errorf("validity left %v, want about an hour", d)
	}
}
