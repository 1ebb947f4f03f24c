// Package pki owns Havre's cluster public-key infrastructure: the cluster
// CA, the API server's serving certificate and the admin client certificate
// kept under <dataDir>/tls/, client certificates issued from that CA, and the
// admin kubeconfig.
//
// Ensure creates what is missing on first start and loads it afterwards. It
// re-issues a leaf certificate (serving or admin) from the same CA when that
// certificate is unusable, expiring soon, or (for the serving certificate)
// lacks a name the server must answer to. It must never regenerate or
// overwrite an existing cluster CA: every kubeconfig and node trusts it, so a
// CA that cannot be loaded is an error for the operator, not something to
// paper over. Files are always written atomically (temporary file, fsync,
// rename, directory fsync), private keys 0600, certificates 0644, the
// directory 0700.
//
// Keys are ECDSA P-256, which keeps a first start in the low milliseconds;
// RSA generation is too slow for Havre's startup budget.
//
// This package must never know about HTTP requests, users or authorization;
// that is package auth's business.
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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the files under <dataDir>/tls/.
const (
	DirName         = "tls"
	CACertFile      = "ca.crt"
	CAKeyFile       = "ca.key"
	ServingCertFile = "serving.crt"
	ServingKeyFile  = "serving.key"
	AdminCertFile   = "admin.crt"
	AdminKeyFile    = "admin.key"
)

// Identity of the admin client certificate: members of system:masters are
// granted everything by RBAC, as in Kubernetes.
const (
	AdminUser  = "havre-admin"
	AdminGroup = "system:masters"
)

const (
	// CAValidity is the lifetime of a new cluster CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the lifetime of serving and client certificates
	// issued by Ensure, and the default for IssueClientCert.
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how long before expiry Ensure re-issues a leaf.
	RenewBefore = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a certificate is accepted at
	// once by peers whose clocks are slightly behind.
	clockSkew = 5 * time.Minute
)

const (
	keyPerm  fs.FileMode = 0o600
	certPerm fs.FileMode = 0o644
	dirPerm  fs.FileMode = 0o700
)

// Options tunes Ensure.
type Options struct {
	// ExtraSANs are additional names for the serving certificate, as given
	// with --tls-san: each is an IP address or a DNS name (a leading "*."
	// wildcard is allowed).
	ExtraSANs []string
	// ServiceIP is the cluster IP of the kubernetes service; empty means
	// DefaultServiceIP.
	ServiceIP string
	// Hostname replaces os.Hostname() as the host name put in the serving
	// certificate.
	Hostname string
}

// Bundle is the cluster's loaded PKI. Its exported fields are read-only
// after Ensure returns; a Bundle is safe for concurrent use.
type Bundle struct {
	// Dir is <dataDir>/tls.
	Dir string
	// CA is the cluster CA certificate and CAPEM its PEM encoding.
	CA    *x509.Certificate
	CAPEM []byte
	// ServingCertPEM and ServingKeyPEM are the API server's serving
	// certificate (leaf only) and key.
	ServingCertPEM, ServingKeyPEM []byte
	// AdminCertPEM and AdminKeyPEM are the admin client certificate
	// (CN havre-admin, O system:masters) and key.
	AdminCertPEM, AdminKeyPEM []byte
	// Notes says, for the caller to log, what Ensure created or re-issued
	// and why, and anything it could not determine. Empty when everything
	// was loaded as is.
	Notes []string

	caKey   crypto.Signer
	serving tls.Certificate
}

// Ensure creates or loads the cluster PKI under <dataDir>/tls/ (see the
// package documentation). It is meant to be called once at startup by a
// single process; concurrent calls on the same dataDir are not coordinated.
func Ensure(dataDir string, opts Options) (*Bundle, error) {
	if dataDir == "" {
		return nil, errors.New("pki: empty data directory")
	}
	sans, notes, err := servingSANs(opts)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	dir := filepath.Join(dataDir, DirName)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := os.Chmod(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	b := &Bundle{Dir: dir, Notes: notes}
	now := time.Now()
	if err := b.ensureCA(now); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := b.ensureServing(now, sans); err != nil {
		return nil, fmt.Errorf("pki: serving certificate: %w", err)
	}
	if err := b.ensureAdmin(now); err != nil {
		return nil, fmt.Errorf("pki: admin certificate: %w", err)
	}
	return b, nil
}

func (b *Bundle) path(name string) string { return filepath.Join(b.Dir, name) }

// ensureCA loads the CA, or creates it if its certificate does not exist.
// The certificate is written after the key, so its presence means the CA is
// complete: a key without a certificate is debris from an interrupted first
// start and is replaced.
func (b *Bundle) ensureCA(now time.Time) error {
	certPath, keyPath := b.path(CACertFile), b.path(CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return b.createCA(now)
	}
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("cluster CA certificate exists but its key cannot be read; refusing to replace the CA: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("%s: %w; refusing to replace the CA", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w; refusing to replace the CA", keyPath, err)
	}
	if !publicKeysEqual(key, cert.PublicKey) {
		return fmt.Errorf("%s does not match %s; refusing to replace the CA", keyPath, certPath)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%s is not a CA certificate; refusing to replace it", certPath)
	}
	if now.After(cert.NotAfter) || now.Before(cert.NotBefore.Add(-clockSkew)) {
		return fmt.Errorf("cluster CA %s is valid only from %s to %s; refusing to replace it (remove %s to start a new cluster PKI)",
			certPath, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), b.Dir)
	}
	if err := os.Chmod(keyPath, keyPerm); err != nil {
		return err
	}
	b.CA, b.CAPEM, b.caKey = cert, certPEM, key
	return nil
}

func (b *Bundle) createCA(now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("havre-ca@%d", now.Unix())},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return err
	}
	certPEM := encodeCertPEM(der)
	if err := WriteFileAtomic(b.path(CAKeyFile), keyPEM, keyPerm); err != nil {
		return err
	}
	if err := WriteFileAtomic(b.path(CACertFile), certPEM, certPerm); err != nil {
		return err
	}
	b.CA, b.CAPEM, b.caKey = cert, certPEM, key
	b.Notes = append(b.Notes, "created cluster CA "+tmpl.Subject.CommonName)
	return nil
}

// loadLeaf reads a leaf certificate and key and returns them with the
// parsed leaf if they form a pair that chains to the CA, is valid for usage
// and does not expire within RenewBefore. Otherwise it returns the reason to
// re-issue; a missing file is a reason, an unreadable one is an error.
func (b *Bundle) loadLeaf(certFile, keyFile string, usage x509.ExtKeyUsage, now time.Time) (cert tls.Certificate, certPEM, keyPEM []byte, reason string, err error) {
	certPEM, err = os.ReadFile(b.path(certFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cert, nil, nil, "not found", nil
	}
	if err != nil {
		return cert, nil, nil, "", err
	}
	keyPEM, err = os.ReadFile(b.path(keyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cert, nil, nil, "key not found", nil
	}
	if err != nil {
		return cert, nil, nil, "", err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return cert, nil, nil, fmt.Sprintf("unusable: %v", err), nil
	}
	leaf := cert.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	if _, verr := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{usage},
	}); verr != nil {
		return cert, nil, nil, fmt.Sprintf("does not verify against the cluster CA: %v", verr), nil
	}
	if left := leaf.NotAfter.Sub(now); left < RenewBefore && leaf.NotAfter.Before(b.CA.NotAfter) {
		return cert, nil, nil, "expires at " + leaf.NotAfter.UTC().Format(time.RFC3339), nil
	}
	if err := os.Chmod(b.path(keyFile), keyPerm); err != nil {
		return cert, nil, nil, "", err
	}
	return cert, certPEM, keyPEM, "", nil
}

func (b *Bundle) ensureServing(now time.Time, sans sanSet) error {
	cert, certPEM, keyPEM, reason, err := b.loadLeaf(ServingCertFile, ServingKeyFile, x509.ExtKeyUsageServerAuth, now)
	if err != nil {
		return err
	}
	if reason == "" {
		if missing := sans.missingFrom(cert.Leaf); len(missing) > 0 {
			reason = "missing " + strings.Join(missing, ", ")
		}
	}
	if reason == "" {
		b.ServingCertPEM, b.ServingKeyPEM, b.serving = certPEM, keyPEM, cert
		return nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "havre-apiserver"},
		DNSNames:    sans.dns,
		IPAddresses: sans.netIPs(),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	certPEM, keyPEM, err = b.issue(tmpl, LeafValidity, now)
	if err != nil {
		return err
	}
	if err := b.writeLeaf(ServingCertFile, ServingKeyFile, certPEM, keyPEM); err != nil {
		return err
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return err
	}
	b.ServingCertPEM, b.ServingKeyPEM, b.serving = certPEM, keyPEM, cert
	b.Notes = append(b.Notes, "issued serving certificate ("+reason+")")
	return nil
}

func (b *Bundle) ensureAdmin(now time.Time) error {
	cert, certPEM, keyPEM, reason, err := b.loadLeaf(AdminCertFile, AdminKeyFile, x509.ExtKeyUsageClientAuth, now)
	if err != nil {
		return err
	}
	if reason == "" {
		s := cert.Leaf.Subject
		if s.CommonName != AdminUser || !slices.Equal(s.Organization, []string{AdminGroup}) {
			reason = "unexpected subject " + s.String()
		}
	}
	if reason == "" {
		b.AdminCertPEM, b.AdminKeyPEM = certPEM, keyPEM
		return nil
	}
	certPEM, keyPEM, err = b.issue(clientTemplate(AdminUser, []string{AdminGroup}), LeafValidity, now)
	if err != nil {
		return err
	}
	if err := b.writeLeaf(AdminCertFile, AdminKeyFile, certPEM, keyPEM); err != nil {
		return err
	}
	b.AdminCertPEM, b.AdminKeyPEM = certPEM, keyPEM
	b.Notes = append(b.Notes, "issued admin client certificate ("+reason+")")
	return nil
}

// writeLeaf writes the key before the certificate. A crash in between leaves
// a pair that does not match, which the next Ensure re-issues.
func (b *Bundle) writeLeaf(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := WriteFileAtomic(b.path(keyFile), keyPEM, keyPerm); err != nil {
		return err
	}
	return WriteFileAtomic(b.path(certFile), certPEM, certPerm)
}

func clientTemplate(commonName string, organizations []string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: slices.Clone(organizations)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// issue signs tmpl with the CA for a fresh P-256 key. The certificate never
// outlives the CA.
func (b *Bundle) issue(tmpl *x509.Certificate, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = randomSerial(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(b.CA.NotAfter) {
		tmpl.NotAfter = b.CA.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CA, key.Public(), b.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCertPEM(der), keyPEM, nil
}

// SelfSignedServing creates a self-signed serving certificate (server auth)
// for a fresh P-256 key, valid from now for validity, for the given names
// and addresses: the node agent's streaming server serves one, as the
// kubelet does when it has no certificate of its own.
func SelfSignedServing(commonName string, dnsNames []string, ips []net.IP, validity time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              slices.Clone(dnsNames),
		IPAddresses:           slices.Clone(ips),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as RFC 5280 allows up to 20 octets and CAs use >= 64
	// bits of entropy.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// IssueClientCert issues a client certificate (extended key usage client
// auth) from the cluster CA for commonName (the user name) and
// organizations (the groups), valid for validity (LeafValidity if zero or
// negative, and never beyond the CA's own expiry). Nothing is written to
// disk.
func (b *Bundle) IssueClientCert(commonName string, organizations []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("pki: client certificate needs a common name")
	}
	if validity <= 0 {
		validity = LeafValidity
	}
	return b.issue(clientTemplate(commonName, organizations), validity, time.Now())
}

// CAPool returns a new pool holding the cluster CA.
func (b *Bundle) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(b.CA)
	return pool
}

// ServerTLSConfig returns a new TLS configuration for the API server: TLS
// 1.2 or later, the serving certificate, and client certificates verified
// against the cluster CA when presented (a client without one may still
// authenticate otherwise, e.g. with a bearer token). NextProtos is left
// empty: http.Server.ServeTLS adds "h2" and "http/1.1" itself.
func (b *Bundle) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    b.CAPool(),
	}
}
