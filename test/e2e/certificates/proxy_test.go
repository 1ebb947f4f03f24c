package certificates_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
	"github.com/havre/havre/test/framework"
)

// TestThroughTheProxy has Pebble validate each challenge type against the
// node's own ingress proxy (no stand-in): the certificates controller
// presents the challenge in the challenges Secret, the agent's proxy
// answers it on its HTTP port (HTTP-01) or its HTTPS port (TLS-ALPN-01),
// and then serves the issued certificate for the host by SNI.
func TestThroughTheProxy(t *testing.T) {
	framework.RequireNodeAgent(t)
	for _, tc := range []struct{ challenge, host string }{
		{"http-01", "proxied.example.com"},
		{"tls-alpn-01", "alpn.example.com"},
	} {
		t.Run(tc.challenge, func(t *testing.T) {
			httpPort, err := framework.FreePort()
			must(t, err)
			httpsPort, err := framework.FreePort()
			must(t, err)
			p := startPebble(t, httpPort, httpsPort, time.Hour)
			s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs(
				"--ingress-http-port", strconv.Itoa(httpPort), "--ingress-https-port", strconv.Itoa(httpsPort),
				"--acme-directory", p.Directory, "--acme-ca-bundle", p.CABundle,
				"--acme-challenges", tc.challenge, "--acme-email", "e2e@example.com"))
			cs := s.Clientset()
			// The Ingress is created at once, before the node's agent serves
			// ingress: the controller must wait for a proxy rather than
			// order a certificate whose validation cannot succeed.
			ns := "acme-proxy"
			namespace(t, cs, ns)
			if _, err := cs.NetworkingV1().Ingresses(ns).Create(context.Background(), ingress(ns, "web", tc.host), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			secret := routes.DefaultTLSSecretName("web", 0)
			leaf := waitCert(t, cs, ns, secret, nil, 2*time.Minute)
			sec, err := cs.CoreV1().Secrets(ns).Get(context.Background(), secret, metav1.GetOptions{})
			must(t, err)
			verify(t, p, leaf, sec.Data[corev1.TLSCertKey], tc.host)
			if n := p.Orders(); n != 1 {
				t.Errorf("%d orders, want 1", n)
			}

			// The proxy serves the issued certificate for the host.
			addr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
			var served *x509.Certificate
			framework.Eventually(t, 30*time.Second, func() (bool, error) {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: tc.host, RootCAs: p.roots, NextProtos: []string{"h2", "http/1.1"}})
				if err != nil {
					return false, nil
				}
				defer conn.Close()
				served = conn.ConnectionState().PeerCertificates[0]
				return served.SerialNumber.Cmp(leaf.SerialNumber) == 0, nil
			}, "the proxy does not serve the issued certificate for %s", tc.host)
		})
	}
}
