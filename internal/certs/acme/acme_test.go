package acme

import (
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func TestDirectoryURL(t *testing.T) {
	for in, want := range map[string]string{
		"": LetsEncrypt, "letsencrypt": LetsEncrypt, "letsencrypt-staging": LetsEncryptStaging, "off": "",
		"https://127.0.0.1:14000/dir": "https://127.0.0.1:14000/dir",
	} {
		got, err := DirectoryURL(in)
		if err != nil || got != want {
			t.Errorf("DirectoryURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := DirectoryURL("ftp:/x"); err == nil {
		t.Error("DirectoryURL accepted ftp:/x")
	}
}

// TestChallengesSecret: what the store presents, a reader on the Secret
// answers, and cleaning up withdraws it.
func TestChallengesSecret(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	store := NewStore(client)
	f := informers.NewSharedInformerFactory(client, 0)
	r := NewReader(f.Core().V1().Secrets().Lister())
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())

	if _, ok := r.HTTP01("a.example.com", "tok"); ok {
		t.Fatal("an HTTP-01 answer before any challenge")
	}
	h, a := store.HTTP01Provider(), store.TLSALPN01Provider()
	if err := h.Present(ctx, "a.example.com", "tok_1-x", "tok_1-x.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := a.Present(ctx, "B.example.com", "t2", "t2.thumb"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { v, ok := r.HTTP01("a.example.com", "tok_1-x"); return ok && v == "tok_1-x.thumb" })
	eventually(t, func() bool { _, ok := r.TLSALPN01("b.example.com"); return ok })
	cert, _ := r.TLSALPN01("b.example.com.")
	want, err := tlsalpn01.ChallengeCert("b.example.com", "t2.thumb")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	wantLeaf, _ := x509.ParseCertificate(want.Certificate[0])
	if len(leaf.Extensions) != len(wantLeaf.Extensions) || leaf.DNSNames[0] != "b.example.com" {
		t.Errorf("TLS-ALPN-01 certificate: %v, want %v", leaf.DNSNames, wantLeaf.DNSNames)
	}
	if err := h.CleanUp(ctx, "a.example.com", "tok_1-x", "tok_1-x.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := a.CleanUp(ctx, "b.example.com", "t2", "t2.thumb"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, ok1 := r.HTTP01("a.example.com", "tok_1-x")
		_, ok2 := r.TLSALPN01("b.example.com")
		return !ok1 && !ok2
	})
	s, err := client.CoreV1().Secrets(routes.ChallengesNamespace).Get(ctx, routes.ChallengesSecret, metav1.GetOptions{})
	if err != nil || len(s.Data) != 0 {
		t.Fatalf("challenges Secret after clean-up: %v %v", s, err)
	}
}

func eventually(t *testing.T, f func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met in 5s")
}

// TestRenewal follows certificates of several lifetimes on a fake clock:
// renewed when a third is left, or within the CA's ARI window, never
// once expired.
func TestRenewal(t *testing.T) {
	start := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, lifetime := range []time.Duration{3 * time.Minute, 6 * 24 * time.Hour, 45 * 24 * time.Hour, 64 * 24 * time.Hour, 90 * 24 * time.Hour} {
		clk := testingclock.NewFakeClock(start)
		cert := &x509.Certificate{SerialNumber: big.NewInt(42), NotBefore: start, NotAfter: start.Add(lifetime)}
		if Due(clk.Now(), cert, nil) {
			t.Errorf("%v: due at issuance", lifetime)
		}
		clk.Step(lifetime*2/3 - time.Second)
		if Due(clk.Now(), cert, nil) {
			t.Errorf("%v: due before two thirds of its lifetime", lifetime)
		}
		clk.Step(time.Second)
		if !Due(clk.Now(), cert, nil) {
			t.Errorf("%v: not due with a third of its lifetime left", lifetime)
		}
		// ARI: the CA's window wins, within it.
		w := &Window{Start: start.Add(lifetime / 4), End: start.Add(lifetime / 2)}
		at := RenewAt(cert, w)
		if at.Before(w.Start) || !at.Before(w.End) {
			t.Errorf("%v: renewal at %v outside the ARI window %v", lifetime, at, w)
		}
		if RenewAt(cert, w) != at {
			t.Errorf("%v: renewal time moves between checks", lifetime)
		}
		// A window past expiry is ignored.
		bad := &Window{Start: cert.NotAfter.Add(-time.Second), End: cert.NotAfter.Add(time.Hour)}
		if RenewAt(cert, bad) != cert.NotAfter.Add(-lifetime/3) {
			t.Errorf("%v: a window past expiry was followed", lifetime)
		}
		clk.SetTime(cert.NotAfter)
		if !Due(clk.Now(), cert, w) {
			t.Errorf("%v: an expired certificate is not due", lifetime)
		}
	}
}
