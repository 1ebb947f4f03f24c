package certificates_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/internal/controller/certificates"
	"github.com/havre/havre/internal/network/ingress/routes"
	"github.com/havre/havre/test/framework"
)

// setup runs Pebble (certificates valid for validity), the stand-in
// challenge servers with readers proxies, and a havre server ordering
// from Pebble with the given challenge types.
func setup(t *testing.T, validity time.Duration, challenges string, readers int) (*framework.Server, *pebble, *challengeServers) {
	t.Helper()
	cs := startChallengeServers(t)
	p := startPebble(t, cs.HTTPPort, cs.TLSPort, validity)
	// The stand-in servers are the cluster's proxies: a Ready Node that
	// serves ingress stands for them (the controller orders only when one
	// does), not marked NotReady for missing heartbeats while the test runs.
	s := framework.StartServer(t, framework.WithArgs("--acme-directory", p.Directory, "--acme-ca-bundle", p.CABundle,
		"--acme-challenges", challenges, "--acme-email", "e2e@example.com", "--node-monitor-grace-period", "10m"))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	node, err := s.Clientset().CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stand-in-proxy",
		Labels: map[string]string{routes.NodeLabel: "true"}}}, metav1.CreateOptions{})
	must(t, err)
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	_, err = s.Clientset().CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	must(t, err)
	var rs []acme.Challenges
	for range readers {
		rs = append(rs, acme.WatchReader(ctx, s.Clientset()))
	}
	cs.SetReaders(rs...)
	return s, p, cs
}

func namespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

func ingress(ns, name string, hosts ...string) *networkingv1.Ingress {
	class := routes.IngressClassName
	pt := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Annotations: map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			TLS:              []networkingv1.IngressTLS{{Hosts: hosts}},
			Rules: []networkingv1.IngressRule{{Host: hosts[0], IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}}}},
		}}
}

// waitCert waits for the Ingress's TLS Secret to hold a certificate (one
// other than not, when given) and returns its leaf.
func waitCert(t *testing.T, cs kubernetes.Interface, ns, secret string, not *x509.Certificate, timeout time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := cs.CoreV1().Secrets(ns).Get(context.Background(), secret, metav1.GetOptions{})
		if err == nil && s.Type == corev1.SecretTypeTLS {
			pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
			if err != nil {
				t.Fatalf("Secret %s/%s: %v", ns, secret, err)
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if not == nil || leaf.SerialNumber.Cmp(not.SerialNumber) != 0 {
				return leaf
			}
		}
		if time.Now().After(deadline) {
			evs, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
			var b strings.Builder
			for _, e := range evs.Items {
				fmt.Fprintf(&b, "%s %s %s: %s\n", e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
			}
			t.Fatalf("no certificate in Secret %s/%s after %v; events:\n%s", ns, secret, timeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func verify(t *testing.T, p *pebble, leaf *x509.Certificate, chain []byte, host string) {
	t.Helper()
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM(chain)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: p.roots, Intermediates: inter}); err != nil {
		t.Errorf("certificate for %s does not verify against Pebble's root: %v", host, err)
	}
}

func events(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == name {
			fmt.Fprintf(&b, "%s %s %s\n", e.Type, e.Reason, e.Message)
		}
	}
	return b.String()
}

// TestHTTP01 issues a certificate with HTTP-01 for an Ingress, reports it
// in Events, and orders once for three Ingresses asking for the same name
// with three challenge readers.
func TestHTTP01(t *testing.T) {
	s, p, chal := setup(t, time.Hour, "http-01", 3)
	cs := s.Clientset()
	ctx := context.Background()
	namespace(t, cs, "acme-h1")
	start := time.Now()
	if _, err := cs.NetworkingV1().Ingresses("acme-h1").Create(ctx, ingress("acme-h1", "web", "web.example.com"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := routes.DefaultTLSSecretName("web", 0)
	leaf := waitCert(t, cs, "acme-h1", secret, nil, time.Minute)
	took := time.Since(start)
	t.Logf("HTTP-01: Ingress created → certificate Secret in %v", took.Round(time.Millisecond))
	sec, _ := cs.CoreV1().Secrets("acme-h1").Get(ctx, secret, metav1.GetOptions{})
	verify(t, p, leaf, sec.Data[corev1.TLSCertKey], "web.example.com")
	if sec.Annotations[certificates.IssuerAnnotation] != certificates.IssuerACME {
		t.Errorf("Secret annotations %v", sec.Annotations)
	}
	if chal.Answered("http-01") == 0 {
		t.Error("no HTTP-01 challenge was answered")
	}
	waitFor(t, func() bool {
		ev := events(t, cs, "acme-h1", "web")
		return strings.Contains(ev, "Normal Issuing") && strings.Contains(ev, "Normal Issued")
	})
	if n := p.Orders(); n != 1 {
		t.Errorf("%d orders for one name, want 1", n)
	}

	// Three Ingresses of three namespaces ask for one new name at once:
	// one order, three Secrets holding the same certificate.
	var wg sync.WaitGroup
	for i := range 3 {
		ns := fmt.Sprintf("acme-h1-%d", i)
		namespace(t, cs, ns)
		wg.Go(func() {
			if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ingress(ns, "shop", "shop.example.com"), metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var serial string
	for i := range 3 {
		leaf := waitCert(t, cs, fmt.Sprintf("acme-h1-%d", i), routes.DefaultTLSSecretName("shop", 0), nil, time.Minute)
		if serial != "" && leaf.SerialNumber.String() != serial {
			t.Errorf("namespace %d holds another certificate", i)
		}
		serial = leaf.SerialNumber.String()
	}
	if n := p.Orders(); n != 2 {
		t.Errorf("%d orders for two names, want 2", n)
	}
}

// TestTLSALPN01 issues a certificate with TLS-ALPN-01 for two names, and
// one from the cluster issuer for a private name.
func TestTLSALPN01(t *testing.T) {
	s, p, chal := setup(t, time.Hour, "tls-alpn-01", 2)
	cs := s.Clientset()
	ctx := context.Background()
	namespace(t, cs, "acme-t1")
	ing := ingress("acme-t1", "api", "api.example.com", "www.api.example.com")
	ing.Spec.TLS[0].SecretName = "api-tls"
	start := time.Now()
	if _, err := cs.NetworkingV1().Ingresses("acme-t1").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leaf := waitCert(t, cs, "acme-t1", "api-tls", nil, time.Minute)
	t.Logf("TLS-ALPN-01: Ingress created → certificate Secret (2 names) in %v", time.Since(start).Round(time.Millisecond))
	sec, _ := cs.CoreV1().Secrets("acme-t1").Get(ctx, "api-tls", metav1.GetOptions{})
	verify(t, p, leaf, sec.Data[corev1.TLSCertKey], "api.example.com")
	verify(t, p, leaf, sec.Data[corev1.TLSCertKey], "www.api.example.com")
	if chal.Answered("tls-alpn-01") < 2 || chal.Answered("http-01") != 0 {
		t.Errorf("challenges answered: %d tls-alpn-01, %d http-01", chal.Answered("tls-alpn-01"), chal.Answered("http-01"))
	}
	// A private name gets a certificate from the cluster issuer at once,
	// with no order.
	orders := p.Orders()
	start = time.Now()
	if _, err := cs.NetworkingV1().Ingresses("acme-t1").Create(ctx, ingress("acme-t1", "lab", "app.test"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lab := waitCert(t, cs, "acme-t1", routes.DefaultTLSSecretName("lab", 0), nil, 30*time.Second)
	t.Logf("cluster issuer: Ingress created → certificate Secret in %v", time.Since(start).Round(time.Millisecond))
	labSecret, _ := cs.CoreV1().Secrets("acme-t1").Get(ctx, routes.DefaultTLSSecretName("lab", 0), metav1.GetOptions{})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(labSecret.Data["ca.crt"])
	if _, err := lab.Verify(x509.VerifyOptions{DNSName: "app.test", Roots: roots}); err != nil || labSecret.Annotations[certificates.IssuerAnnotation] != certificates.IssuerCluster {
		t.Errorf("cluster issuer certificate: %v, annotations %v", err, labSecret.Annotations)
	}
	if p.Orders() != orders {
		t.Error("a private name was ordered from the ACME CA")
	}
	// The challenges are withdrawn once solved.
	waitFor(t, func() bool {
		s, err := cs.CoreV1().Secrets(routes.ChallengesNamespace).Get(ctx, routes.ChallengesSecret, metav1.GetOptions{})
		return err == nil && len(s.Data) == 0
	})
}

// TestRenewal: with 30-second certificates, the Secret is renewed before
// expiry, again and again, and never holds an expired certificate.
func TestRenewal(t *testing.T) {
	s, _, _ := setup(t, 30*time.Second, "http-01", 1)
	cs := s.Clientset()
	ctx := context.Background()
	namespace(t, cs, "acme-r1")
	if _, err := cs.NetworkingV1().Ingresses("acme-r1").Create(ctx, ingress("acme-r1", "short", "short.example.com"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := routes.DefaultTLSSecretName("short", 0)
	leaf := waitCert(t, cs, "acme-r1", secret, nil, time.Minute)
	first := leaf
	renewals := 0
	end := time.Now().Add(70 * time.Second)
	for time.Now().Before(end) {
		cur := waitCert(t, cs, "acme-r1", secret, nil, 5*time.Second)
		if now := time.Now(); !now.Before(cur.NotAfter) {
			t.Fatalf("the Secret holds a certificate expired at %v (now %v)", cur.NotAfter, now)
		}
		if cur.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			renewals++
			t.Logf("renewed %v before expiry (lifetime %v)", time.Until(leaf.NotAfter).Round(time.Second), leaf.NotAfter.Sub(leaf.NotBefore).Round(time.Second))
			leaf = cur
		}
		time.Sleep(200 * time.Millisecond)
	}
	if renewals < 2 {
		t.Errorf("%d renewals of 30-second certificates in 70 seconds (first expired %v), want at least 2", renewals, first.NotAfter)
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met in 30s")
}
