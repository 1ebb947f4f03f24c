package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// The front-proxy CA signs the client certificate the API server presents
// to aggregated API servers (kube-apiserver's --proxy-client-cert-file,
// signed by --requestheader-client-ca-file's CA); they trust the
// X-Remote-* headers of a request only over a connection authenticated by
// it. It is a CA of its own, beside the cluster CA, so that no cluster
// client certificate can assert identities through those headers.
const (
	FrontProxyCACertFile = "front-proxy-ca.crt"
	FrontProxyCAKeyFile  = "front-proxy-ca.key"
	// FrontProxyClientName is the common name of the proxy's client
	// certificate, the one allowed name aggregated servers are told of.
	FrontProxyClientName = "front-proxy-client"
)

// FrontProxy is the front-proxy CA and the client certificate it issued.
type FrontProxy struct {
	// CAPEM is the front-proxy CA certificate in PEM.
	CAPEM []byte
	// ClientCert is the proxy's client certificate (CN front-proxy-client),
	// issued at every start and never written to disk.
	ClientCert tls.Certificate
	// ClientCertPEM and ClientKeyPEM are ClientCert in PEM.
	ClientCertPEM, ClientKeyPEM []byte
}

// EnsureFrontProxy loads or creates the front-proxy CA under b.Dir and
// issues a fresh proxy client certificate from it.
func (b *Bundle) EnsureFrontProxy() (*FrontProxy, error) {
	now := time.Now()
	ca, caKey, caPEM, err := b.loadOrCreateFrontProxyCA(now)
	if err != nil {
		return nil, fmt.Errorf("pki: front-proxy CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := clientTemplate(FrontProxyClientName, nil)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(LeafValidity)
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	certPEM := encodeCertPEM(der)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &FrontProxy{CAPEM: caPEM, ClientCert: cert, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}, nil
}

func (b *Bundle) loadOrCreateFrontProxyCA(now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	certPath, keyPath := b.path(FrontProxyCACertFile), b.path(FrontProxyCAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err == nil {
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, err := parseCertPEM(certPEM)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", certPath, err)
		}
		key, err := parseKeyPEM(keyPEM)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		if !publicKeysEqual(key, cert.PublicKey) {
			return nil, nil, nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
		}
		if now.After(cert.NotAfter) {
			return nil, nil, nil, fmt.Errorf("%s expired at %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return cert, key, certPEM, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("havre-front-proxy-ca@%d", now.Unix())},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM = encodeCertPEM(der)
	if err := WriteFileAtomic(keyPath, keyPEM, keyPerm); err != nil {
		return nil, nil, nil, err
	}
	if err := WriteFileAtomic(certPath, certPEM, certPerm); err != nil {
		return nil, nil, nil, err
	}
	b.Notes = append(b.Notes, "created front-proxy CA "+tmpl.Subject.CommonName)
	return cert, key, certPEM, nil
}
