package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"time"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// certIndex chooses a listener's certificate by SNI: exact name, then
// wildcard of the first label, then the listener's default.
type certIndex struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // by suffix ".example.com"
	def      *tls.Certificate
}

func newCertIndex(l *routes.Listener) *certIndex {
	c := &certIndex{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, cert := range l.Certificates {
		if cert == nil || cert.Cert == nil {
			continue
		}
		for _, h := range cert.Hosts {
			h = strings.ToLower(h)
			if s, ok := strings.CutPrefix(h, "*"); ok {
				if _, dup := c.wildcard[s]; !dup {
					c.wildcard[s] = cert.Cert
				}
			} else if _, dup := c.exact[h]; !dup {
				c.exact[h] = cert.Cert
			}
		}
	}
	if l.Default != nil {
		c.def = l.Default.Cert
	}
	return c
}

// get returns the certificate for a server name (nil: none).
func (c *certIndex) get(name string) *tls.Certificate {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if cert := c.exact[name]; cert != nil {
		return cert
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if cert := c.wildcard[name[i:]]; cert != nil {
			return cert
		}
	}
	return c.def
}

// fakeCertificate is the self-signed certificate served to names no
// certificate covers (as ingress-nginx's "Kubernetes Ingress Controller
// Fake Certificate").
func fakeCertificate() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Havre"}, CommonName: "Havre Ingress Fake Certificate"},
		DNSNames:     []string{"ingress.local"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
