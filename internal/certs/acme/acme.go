// Package acme orders certificates from an ACME CA (Let's Encrypt by
// default) with go-acme/lego v5, solving HTTP-01 and TLS-ALPN-01
// challenges through the challenges Secret every proxy node reads
// (routes.ChallengesSecret): the certificates controller is the only
// orderer, so a name is ordered once whatever the number of proxies.
//
// lego was chosen over certmagic because it is a client library only:
// certmagic brings its own storage, locking and serving, all of which
// Havre already has (Secrets, one server-side controller, the proxy).
// lego's Certifier does the order/finalize/download protocol and ARI;
// the challenge solving is Havre's own (a resolver that presents every
// authorization's challenge in the Secret at once and polls fast).
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/registration"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/internal/certs/clusterissuer"
	"github.com/havre/havre/internal/network/ingress/routes"
	"github.com/havre/havre/internal/version"
)

// The directories --acme-directory names by alias.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// AccountSecret (in routes.ChallengesNamespace) keeps the ACME account key.
const AccountSecret = "havre-acme-account"

// Challenge types.
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
)

// DirectoryURL resolves --acme-directory: a URL, "letsencrypt" (the
// default when empty), "letsencrypt-staging", or "off"/"none" (ACME
// disabled: it returns "").
func DirectoryURL(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "letsencrypt", "letsencrypt-production", "production":
		return LetsEncrypt, nil
	case "letsencrypt-staging", "staging":
		return LetsEncryptStaging, nil
	case "off", "none", "disabled":
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("--acme-directory: %q is neither a directory URL nor one of letsencrypt, letsencrypt-staging, off", s)
	}
	return s, nil
}

// Config configures an Orderer.
type Config struct {
	// Directory is the ACME directory URL (see DirectoryURL).
	Directory string
	// Email is the account's contact (optional).
	Email string
	// CABundle, when set, are the PEM roots the directory's TLS
	// certificate is verified with (a private ACME CA such as Pebble);
	// otherwise the system's.
	CABundle []byte
	// HTTPClient overrides the client talking to the CA (tests).
	HTTPClient *http.Client
	// Challenges are the challenge types used, in order of preference
	// (default: http-01, tls-alpn-01).
	Challenges []string
	// Profile is the ACME profile ordered (draft-ietf-acme-profiles), if any.
	Profile string
	// Client reads and writes the account Secret and the challenges Secret.
	Client kubernetes.Interface
	// PropagationDelay is how long a presented challenge is given to reach
	// the proxies' informers before the CA is asked to validate (default
	// 300ms).
	PropagationDelay time.Duration
}

// Orderer orders certificates. It is safe for concurrent use.
type Orderer struct {
	cfg    Config
	store  *Store
	http   *http.Client
	orders atomic.Int64

	mu        sync.Mutex
	core      *api.Core
	certifier *certificate.Certifier
}

// New returns an orderer; the account is registered at the first order.
func New(cfg Config) (*Orderer, error) {
	if cfg.Directory == "" {
		return nil, errors.New("acme: no directory")
	}
	if cfg.Client == nil {
		return nil, errors.New("acme: no API client")
	}
	if len(cfg.Challenges) == 0 {
		cfg.Challenges = []string{HTTP01, TLSALPN01}
	}
	for _, c := range cfg.Challenges {
		if c != HTTP01 && c != TLSALPN01 {
			return nil, fmt.Errorf("acme: challenge type %q is not supported (http-01, tls-alpn-01)", c)
		}
	}
	if cfg.PropagationDelay == 0 {
		cfg.PropagationDelay = 300 * time.Millisecond
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if len(cfg.CABundle) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.CABundle) {
				return nil, errors.New("acme: no certificate in the CA bundle")
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	return &Orderer{cfg: cfg, store: NewStore(cfg.Client), http: hc}, nil
}

// Directory is the directory URL.
func (o *Orderer) Directory() string { return o.cfg.Directory }

// Orders is the number of orders placed since the orderer was made.
func (o *Orderer) Orders() int64 { return o.orders.Load() }

// user is the ACME account as lego sees it.
type user struct {
	email string
	key   crypto.Signer
	reg   *legoacme.ExtendedAccount
}

func (u *user) GetEmail() string                           { return u.email }
func (u *user) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer               { return u.key }

// client returns the registered ACME client, registering the account
// (with the key kept in AccountSecret) the first time.
func (o *Orderer) client(ctx context.Context) (*api.Core, *certificate.Certifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.certifier != nil {
		return o.core, o.certifier, nil
	}
	key, err := o.accountKey(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("acme account key: %w", err)
	}
	core, err := api.New(o.http, "havre/"+version.Info().GitVersion, o.cfg.Directory, "", key)
	if err != nil {
		return nil, nil, fmt.Errorf("acme directory %s: %w", o.cfg.Directory, err)
	}
	u := &user{email: o.cfg.Email, key: key}
	reg := registration.NewRegistrar(core, u)
	if _, err := reg.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		return nil, nil, fmt.Errorf("acme account registration at %s: %w", o.cfg.Directory, err)
	}
	o.core = core
	o.certifier = certificate.NewCertifier(core, &resolver{o: o, core: core}, certificate.CertifierOptions{Timeout: 30 * time.Second})
	return o.core, o.certifier, nil
}

// accountKey reads the account key from AccountSecret, creating it once.
func (o *Orderer) accountKey(ctx context.Context) (crypto.Signer, error) {
	secrets := o.cfg.Client.CoreV1().Secrets(routes.ChallengesNamespace)
	s, err := secrets.Get(ctx, AccountSecret, metav1.GetOptions{})
	if err == nil {
		return clusterissuer.ParsePrivateKey(s.Data[corev1.TLSPrivateKeyKey])
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: AccountSecret, Namespace: routes.ChallengesNamespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "havre"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return o.accountKey(ctx)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// Certificate is an issued certificate: the chain and key in PEM, and
// the parsed leaf.
type Certificate struct {
	CertPEM, KeyPEM []byte
	Leaf            *x509.Certificate
}

// Obtain orders a certificate for names (DNS names; no wildcards: they
// need DNS-01). replaces, when it is the certificate being renewed and
// the CA offered renewal information for it, is named in the order (ARI).
func (o *Orderer) Obtain(ctx context.Context, names []string, replaces *x509.Certificate) (*Certificate, error) {
	for _, n := range names {
		if strings.HasPrefix(n, "*.") {
			return nil, fmt.Errorf("%s: wildcard names need the DNS-01 challenge, which Havre does not solve (name the hosts, or use a private name for the cluster issuer)", n)
		}
	}
	_, certifier, err := o.client(ctx)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	req := certificate.ObtainRequest{Domains: names, PrivateKey: key, KeyType: certcrypto.EC256, Bundle: true, Profile: o.cfg.Profile}
	if replaces != nil {
		if id, err := api.MakeARICertID(replaces); err == nil {
			req.ReplacesCertID = id
		}
	}
	o.orders.Add(1)
	res, err := certifier.Obtain(ctx, req)
	if err != nil && req.ReplacesCertID != "" && isReplacementRefused(err) {
		// The CA does not know the certificate replaced (another CA's, or
		// already replaced): order afresh.
		req.ReplacesCertID = ""
		o.orders.Add(1)
		res, err = certifier.Obtain(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(res.Certificate, res.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("acme: the CA's certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	return &Certificate{CertPEM: res.Certificate, KeyPEM: res.PrivateKey, Leaf: leaf}, nil
}

func isReplacementRefused(err error) bool {
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) {
		return p.HTTPStatus == http.StatusConflict || strings.Contains(p.Type, "alreadyReplaced") ||
			strings.Contains(strings.ToLower(p.Detail), "replace")
	}
	return false
}

// RenewalWindow asks the CA for the renewal window it suggests for cert
// (ACME ARI, RFC 9773); ok is false when the CA offers none.
func (o *Orderer) RenewalWindow(ctx context.Context, cert *x509.Certificate) (w Window, retryAfter time.Duration, ok bool) {
	_, certifier, err := o.client(ctx)
	if err != nil {
		return Window{}, 0, false
	}
	info, err := certifier.GetRenewalInfo(ctx, cert)
	if err != nil || info == nil || !info.SuggestedWindow.Start.Before(info.SuggestedWindow.End) {
		return Window{}, 0, false
	}
	return Window{Start: info.SuggestedWindow.Start, End: info.SuggestedWindow.End}, info.RetryAfter, true
}

// resolver solves an order's authorizations through the challenges
// Secret: every challenge is presented at once, then each is validated.
type resolver struct {
	o    *Orderer
	core *api.Core
}

func (r *resolver) Solve(ctx context.Context, authzs []legoacme.Authorization) error {
	type pending struct {
		domain, key string
		chlg        legoacme.Challenge
	}
	var todo []pending
	defer func() {
		for _, p := range todo {
			if err := r.o.store.Set(context.WithoutCancel(ctx), p.key, nil); err != nil {
				_ = err // a stale challenge is harmless: it is never asked for again
			}
		}
	}()
	for _, a := range authzs {
		if a.Status == legoacme.StatusValid {
			continue
		}
		domain := a.Identifier.Value
		if a.Wildcard {
			return fmt.Errorf("*.%s: wildcard names need the DNS-01 challenge, which Havre does not solve", domain)
		}
		var chosen *legoacme.Challenge
		for _, t := range r.o.cfg.Challenges {
			i := slices.IndexFunc(a.Challenges, func(c legoacme.Challenge) bool { return c.Type == t })
			if i >= 0 {
				chosen = &a.Challenges[i]
				break
			}
		}
		if chosen == nil {
			return fmt.Errorf("%s: the CA offers no challenge Havre solves (%s)", domain, strings.Join(r.o.cfg.Challenges, ", "))
		}
		keyAuth, err := r.core.GetKeyAuthorization(chosen.Token)
		if err != nil {
			return err
		}
		key := HTTP01Key(chosen.Token)
		if chosen.Type == TLSALPN01 {
			key = TLSALPN01Key(domain)
		}
		if err := r.o.store.Set(ctx, key, []byte(keyAuth)); err != nil {
			return fmt.Errorf("%s: presenting the %s challenge: %w", domain, chosen.Type, err)
		}
		todo = append(todo, pending{domain: domain, key: key, chlg: *chosen})
	}
	if len(todo) == 0 {
		return nil
	}
	// Give the proxies' informers time to see the challenges.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.o.cfg.PropagationDelay):
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, p := range todo {
		wg.Go(func() { errs[i] = r.validate(ctx, p.domain, p.chlg) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// validate asks the CA to validate a challenge and polls it until it is
// valid or invalid.
func (r *resolver) validate(ctx context.Context, domain string, c legoacme.Challenge) error {
	ch, err := r.core.Challenges.New(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("%s: starting the %s challenge: %w", domain, c.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		switch ch.Status {
		case legoacme.StatusValid:
			return nil
		case legoacme.StatusInvalid:
			return fmt.Errorf("%s: %s challenge failed: %w", domain, c.Type, ch.Err())
		case legoacme.StatusPending, legoacme.StatusProcessing:
		default:
			return fmt.Errorf("%s: %s challenge in unexpected state %q", domain, c.Type, ch.Status)
		}
		d := wait
		if ch.RetryAfter > 0 && ch.RetryAfter < d {
			d = ch.RetryAfter
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s challenge: %w", domain, c.Type, ctx.Err())
		case <-time.After(d):
		}
		wait = min(wait*2, 2*time.Second)
		if ch, err = r.core.Challenges.Get(ctx, c.URL); err != nil {
			return fmt.Errorf("%s: polling the %s challenge: %w", domain, c.Type, err)
		}
	}
}
