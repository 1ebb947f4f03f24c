package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// X509 authenticates a request by the client certificate the TLS layer has
// already verified against the cluster CA (the server's tls.Config must set
// ClientCAs and ClientAuth to VerifyClientCertIfGiven or stricter). The
// certificate's common name is the user name and its organizations are the
// groups, as in Kubernetes.
type X509 struct{}

// Authenticate implements Authenticator.
func (X509) Authenticate(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, errors.New("x509: client certificate was not verified by the TLS layer")
	}
	// Every verified chain starts with the same leaf.
	leaf := r.TLS.VerifiedChains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, false, fmt.Errorf("x509: certificate %q is not for client authentication", leaf.Subject.CommonName)
	}
	// The handshake checked validity, but a connection can outlive it.
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, false, fmt.Errorf("x509: certificate %q is outside its validity period", leaf.Subject.CommonName)
	}
	if leaf.Subject.CommonName == "" {
		return nil, false, errors.New("x509: client certificate has no common name")
	}
	return withAuthenticatedGroup(&User{
		Name:   leaf.Subject.CommonName,
		Groups: slices.Clone(leaf.Subject.Organization),
	}), true, nil
}
