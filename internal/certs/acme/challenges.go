package acme

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// The keys of the challenges Secret (routes.ChallengesNamespace/
// routes.ChallengesSecret): an HTTP-01 challenge is "http-01.<token>"
// holding the key authorization the proxy answers on
// /.well-known/acme-challenge/<token>; a TLS-ALPN-01 challenge is
// "tls-alpn-01.<name>" holding the key authorization the proxy's
// acme-tls/1 certificate for name carries.
const (
	HTTP01Prefix    = "http-01."
	TLSALPN01Prefix = "tls-alpn-01."
)

// Challenges is what a proxy node asks of the pending challenges: the key
// authorization to answer an HTTP-01 request with, and the certificate to
// answer a TLS-ALPN-01 handshake (ALPN "acme-tls/1") with. The proxy's
// interface of the same method set is satisfied by *Reader.
type Challenges interface {
	HTTP01(host, token string) (string, bool)
	TLSALPN01(serverName string) (*tls.Certificate, bool)
}

// Store writes the pending challenges into the challenges Secret (the
// certificates controller's side); the proxies read them with a Reader.
// It implements lego's challenge.Provider for both challenge types
// through HTTP01Provider and TLSALPN01Provider.
type Store struct {
	client kubernetes.Interface
	mu     sync.Mutex
}

// NewStore returns the store writing with client.
func NewStore(client kubernetes.Interface) *Store { return &Store{client: client} }

// HTTP01Key and TLSALPN01Key are the Secret keys of a challenge.
func HTTP01Key(token string) string { return HTTP01Prefix + token }

// TLSALPN01Key is the Secret key of a TLS-ALPN-01 challenge for name.
func TLSALPN01Key(name string) string { return TLSALPN01Prefix + strings.ToLower(name) }

// Set adds (value non-nil) or removes (nil) a key of the challenges Secret,
// creating the Secret when missing.
func (s *Store) Set(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	secrets := s.client.CoreV1().Secrets(routes.ChallengesNamespace)
	return retry.OnError(retry.DefaultRetry, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		sec, err := secrets.Get(ctx, routes.ChallengesSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if value == nil {
				return nil
			}
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: routes.ChallengesSecret, Namespace: routes.ChallengesNamespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "havre"}},
				Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{key: value},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if value == nil {
			if _, ok := sec.Data[key]; !ok {
				return nil
			}
			delete(sec.Data, key)
		} else {
			if sec.Data == nil {
				sec.Data = map[string][]byte{}
			}
			sec.Data[key] = value
		}
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
		return err
	})
}

// HTTP01Provider is the store as lego's HTTP-01 provider.
func (s *Store) HTTP01Provider() *HTTP01Provider { return &HTTP01Provider{s} }

// TLSALPN01Provider is the store as lego's TLS-ALPN-01 provider.
func (s *Store) TLSALPN01Provider() *TLSALPN01Provider { return &TLSALPN01Provider{s} }

// HTTP01Provider presents HTTP-01 challenges in the challenges Secret.
type HTTP01Provider struct{ s *Store }

// Present implements challenge.Provider.
func (p *HTTP01Provider) Present(ctx context.Context, domain, token, keyAuth string) error {
	return p.s.Set(ctx, HTTP01Key(token), []byte(keyAuth))
}

// CleanUp implements challenge.Provider.
func (p *HTTP01Provider) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	return p.s.Set(context.WithoutCancel(ctx), HTTP01Key(token), nil)
}

// TLSALPN01Provider presents TLS-ALPN-01 challenges in the challenges Secret.
type TLSALPN01Provider struct{ s *Store }

// Present implements challenge.Provider.
func (p *TLSALPN01Provider) Present(ctx context.Context, domain, token, keyAuth string) error {
	return p.s.Set(ctx, TLSALPN01Key(domain), []byte(keyAuth))
}

// CleanUp implements challenge.Provider.
func (p *TLSALPN01Provider) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	return p.s.Set(context.WithoutCancel(ctx), TLSALPN01Key(domain), nil)
}

// Reader answers the proxy's questions from the challenges Secret. It is
// safe for concurrent use.
type Reader struct {
	get func() (*corev1.Secret, error)
	mu  sync.Mutex
	// certs caches the TLS-ALPN-01 certificates by name and key authorization.
	certs map[string]*tls.Certificate
}

// NewReader reads the challenges Secret through a Secret lister (an
// informer the proxy already runs on Secrets).
func NewReader(secrets corelisters.SecretLister) *Reader {
	return &Reader{get: func() (*corev1.Secret, error) {
		return secrets.Secrets(routes.ChallengesNamespace).Get(routes.ChallengesSecret)
	}, certs: map[string]*tls.Certificate{}}
}

// WatchReader runs an informer of its own on the challenges Secret alone
// (until ctx is done) and reads from it. It returns once the informer has
// synced, or ctx is done.
func WatchReader(ctx context.Context, client kubernetes.Interface) *Reader {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(routes.ChallengesNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", routes.ChallengesSecret).String()
		}))
	lister := f.Core().V1().Secrets().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return NewReader(lister)
}

func (r *Reader) data() map[string][]byte {
	s, err := r.get()
	if err != nil || s == nil {
		return nil
	}
	return s.Data
}

// HTTP01 returns the key authorization to answer
// /.well-known/acme-challenge/<token> with (the host is not needed: a
// token names one challenge).
func (r *Reader) HTTP01(host, token string) (string, bool) {
	if token == "" {
		return "", false
	}
	v, ok := r.data()[HTTP01Key(token)]
	return string(v), ok
}

// TLSALPN01 returns the acme-tls/1 certificate for serverName while a
// TLS-ALPN-01 challenge for it is pending.
func (r *Reader) TLSALPN01(serverName string) (*tls.Certificate, bool) {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if name == "" {
		return nil, false
	}
	keyAuth, ok := r.data()[TLSALPN01Key(name)]
	if !ok {
		return nil, false
	}
	id := name + "\x00" + string(keyAuth)
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.certs[id]; ok {
		return c, true
	}
	c, err := tlsalpn01.ChallengeCert(name, string(keyAuth))
	if err != nil {
		return nil, false
	}
	if len(r.certs) > 256 {
		clear(r.certs)
	}
	r.certs[id] = c
	return c, true
}

var _ Challenges = (*Reader)(nil)
