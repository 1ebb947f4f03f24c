// Package clusterissuer is Havre's cluster issuer: a CA of the cluster's
// own, kept in a Secret in kube-system, that signs certificates at once for
// names no public ACME CA can validate (*.test, *.local, *.localhost,
// *.internal, *.home.arpa, single labels, IP addresses), so that HTTPS
// works in a lab. Clients trust it through its ca.crt.
package clusterissuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The Secret holding the CA (type kubernetes.io/tls: tls.crt and tls.key).
const (
	SecretNamespace = "kube-system"
	SecretName      = "havre-cluster-issuer"
)

// CAValidity is how long the CA is valid; DefaultValidity how long the
// certificates it signs are (renewed when a third is left).
const (
	CAValidity      = 10 * 365 * 24 * time.Hour
	DefaultValidity = 90 * 24 * time.Hour
)

// Issuer signs certificates with the cluster CA.
type Issuer struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// New returns the issuer of a CA certificate and key in PEM.
func New(certPEM, keyPEM []byte) (*Issuer, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("cluster issuer: no CA certificate in PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster issuer: %w", err)
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster issuer: %w", err)
	}
	return &Issuer{cert: cert, key: key, certPEM: certPEM}, nil
}

// Generate creates a new CA.
func Generate(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Havre cluster issuer", Organization: []string{"Havre"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Ensure returns the issuer of the CA in the cluster's Secret, creating
// the CA when there is none (the first writer wins; others read its CA).
func Ensure(ctx context.Context, client kubernetes.Interface) (*Issuer, error) {
	secrets := client.CoreV1().Secrets(SecretNamespace)
	for range 3 {
		s, err := secrets.Get(ctx, SecretName, metav1.GetOptions{})
		if err == nil {
			return New(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		certPEM, keyPEM, err := Generate(time.Now())
		if err != nil {
			return nil, err
		}
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: SecretNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "havre"}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
		}, metav1.CreateOptions{})
		if err == nil {
			return New(certPEM, keyPEM)
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	return nil, errors.New("cluster issuer: the CA Secret keeps changing")
}

// CAPEM is the CA certificate in PEM (what clients trust).
func (i *Issuer) CAPEM() []byte { return i.certPEM }

// Issue signs a certificate for names (DNS names, wildcards or IP
// addresses; the first is the subject's common name) valid for validity
// (DefaultValidity when 0), with a new key. It returns the certificate
// chain (leaf then CA) and the key, in PEM.
func (i *Issuer) Issue(names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("cluster issuer: no names to issue a certificate for")
	}
	if validity <= 0 {
		validity = DefaultValidity
	}
	now := time.Now()
	if i.Now != nil {
		now = i.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(tmpl.Subject.CommonName) > 64 {
		tmpl.Subject.CommonName = ""
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if tmpl.NotAfter.After(i.cert.NotAfter) {
		tmpl.NotAfter = i.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.cert, key.Public(), i.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), i.certPEM...)
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// IsPrivate reports whether a name cannot be validated by a public ACME
// CA: the special-use and private-use suffixes (.test, .local, .localhost,
// .internal, .home.arpa, .example, .invalid), single labels and IP
// addresses. A leading "*." is ignored.
func IsPrivate(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "*."), "."))
	if net.ParseIP(name) != nil {
		return true
	}
	if !strings.Contains(name, ".") {
		return true
	}
	for _, s := range []string{".test", ".local", ".localhost", ".internal", ".home.arpa", ".invalid", ".example", ".lan", ".corp", ".intranet"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ParsePrivateKey parses a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func ParsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no private key in PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("private key is not a signer")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("unsupported private key")
	}
	return k, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}
