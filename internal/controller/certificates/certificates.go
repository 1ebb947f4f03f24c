// Package certificates is the server-side certificates controller: for
// every Ingress served by Havre's proxy (IngressClass havre, or no class
// while havre is the default) it keeps each spec.tls entry's Secret
// (routes.DefaultTLSSecretName when the entry names none) holding a valid
// kubernetes.io/tls certificate for the entry's hosts. Public names are
// ordered from the ACME CA (internal/certs/acme; the proxies answer the
// challenges from the challenges Secret), private names (*.test, *.local,
// IPs... see clusterissuer.IsPrivate) get one from the cluster issuer at
// once. Certificates are renewed when a third of their lifetime is left
// (or within the CA's ARI window).
//
// Being the only orderer (one controller in the server, whatever the
// number of proxy nodes), it places one order per set of names: two
// Ingresses asking for the same names share the certificate.
//
// A Secret it did not write is left alone while it holds a valid
// certificate for the hosts; it is replaced when it is a kubernetes.io/tls
// Secret whose certificate is missing, expiring or not covering the hosts.
// Issuance is reported in Events on the Ingress (Issuing, Issued,
// Failed). Gateways of class havre are served alike (AddGatewayInformer):
// an HTTPS listener's first certificateRef Secret is issued for its
// hostname. cert-manager's cert-manager.io/cluster-issuer and
// cert-manager.io/issuer annotations are understood as asking for a
// certificate, which Havre gives anyway: any value means ACME unless the
// names are private.
package certificates

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/internal/certs/clusterissuer"
	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// Name is the controller's name in --controllers.
const Name = "certificates"

// GatewayClassName is the GatewayClass whose Gateways' listeners get
// certificates.
const GatewayClassName = routes.GatewayClassName

// Annotations of the Secrets the controller writes.
const (
	// IssuerAnnotation says who issued the certificate: IssuerACME or
	// IssuerCluster.
	IssuerAnnotation = "havre.io/certificate-issuer"
	// HostsAnnotation lists the hosts the certificate was issued for.
	HostsAnnotation = "havre.io/certificate-hosts"
	IssuerACME      = "acme"
	IssuerCluster   = "cluster-issuer"
)

// Event reasons on the Ingress.
const (
	ReasonIssuing = "Issuing"
	ReasonIssued  = "Issued"
	ReasonFailed  = "Failed"
	// ReasonWaitingForProxy: no node serves ingress yet, and the CA
	// validates challenges through one; the order waits for it.
	ReasonWaitingForProxy = "WaitingForProxy"
)

// Controller keeps Ingresses' TLS Secrets issued.
type Controller struct {
	client    kubernetes.Interface
	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	secrets   corelisters.SecretLister
	nodes     corelisters.NodeLister
	// proxies is whether a Ready node serves ingress (routes.NodeLabel),
	// as last seen by the node handler.
	proxies  atomic.Bool
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	clock    clock.WithTicker
	orderer  *acme.Orderer

	issuerMu sync.Mutex
	issuer   *clusterissuer.Issuer

	// flights and recent make one order per set of names: an issuance in
	// progress is waited for, a certificate issued is reused.
	mu      sync.Mutex
	flights map[string]*flight
	recent  map[string]*issued
	// ari caches the CA's renewal windows by certificate serial.
	ari map[string]ariEntry
	// gateways is the Gateway informer, once Gateway API is served.
	gateways cache.SharedIndexInformer
}

type flight struct {
	done chan struct{}
	res  *issued
	err  error
}

type issued struct {
	certPEM, keyPEM, caPEM []byte
	leaf                   *x509.Certificate
	issuer                 string
}

type ariEntry struct {
	w       *acme.Window
	checked time.Time
	next    time.Duration
}

// Options of the controller.
type Options struct {
	// Orderer orders public names; nil: ACME is off and public names get
	// no certificate (an Event says so).
	Orderer *acme.Orderer
	// Clock is the controller's clock (tests); nil: the real one.
	Clock clock.WithTicker
}

// New returns the controller on the factory's Ingress, IngressClass and
// Secret informers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, o Options) (*Controller, error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	ingInf := factory.Networking().V1().Ingresses()
	classInf := factory.Networking().V1().IngressClasses()
	secretInf := factory.Core().V1().Secrets()
	nodeInf := factory.Core().V1().Nodes()
	c := &Controller{
		client:    client,
		ingresses: ingInf.Lister(),
		classes:   classInf.Lister(),
		secrets:   secretInf.Lister(),
		nodes:     nodeInf.Lister(),
		synced: []cache.InformerSynced{ingInf.Informer().HasSynced, classInf.Informer().HasSynced, secretInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Second, time.Hour)),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "certificates", Clock: clk}),
		recorder: recorder,
		clock:    clk,
		orderer:  o.Orderer,
		flights:  map[string]*flight{},
		recent:   map[string]*issued{},
		ari:      map[string]ariEntry{},
	}
	if _, err := ingInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*networkingv1.Ingress), cur.(*networkingv1.Ingress)
			if o.Generation != n.Generation || !equalStrings(o.Annotations, n.Annotations) {
				c.enqueue(cur)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := classInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: func(any, any) { c.enqueueAll() },
		DeleteFunc: func(any) { c.enqueueAll() },
	}); err != nil {
		return nil, err
	}
	// When the first node starts serving ingress, the orders that waited
	// for one go ahead.
	nodesChanged := func(any) {
		if serving := c.proxyServing(); serving != c.proxies.Swap(serving) && serving {
			c.enqueueAll()
		}
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: nodesChanged, UpdateFunc: func(_, cur any) { nodesChanged(cur) }, DeleteFunc: nodesChanged,
	}); err != nil {
		return nil, err
	}
	if _, err := secretInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			if o, n := old.(*corev1.Secret), cur.(*corev1.Secret); o.ResourceVersion != n.ResourceVersion {
				c.secretChanged(n)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if s, ok := obj.(*corev1.Secret); ok {
				c.secretChanged(s)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func equalStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Run syncs Ingresses with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "issuing an Ingress's certificates failed; retrying", "ingress",
		controller.Quiet(func(err error) bool { return apierrors.IsConflict(err) || errors.Is(err, errReported) }))
}

func (c *Controller) enqueue(obj any) {
	if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(k)
	}
}

func (c *Controller) enqueueAll() {
	list, _ := c.ingresses.List(labels.Everything())
	for _, ing := range list {
		c.enqueue(ing)
	}
}

// secretChanged queues the Ingresses of the Secret's namespace whose TLS
// entries name it.
func (c *Controller) secretChanged(s *corev1.Secret) {
	for _, k := range c.gatewaysUsing(s.Namespace, s.Name) {
		c.queue.Add(k)
	}
	list, _ := c.ingresses.Ingresses(s.Namespace).List(labels.Everything())
	for _, ing := range list {
		for i, t := range ing.Spec.TLS {
			if secretName(ing, i, t) == s.Name {
				c.enqueue(ing)
				break
			}
		}
	}
}

func secretName(ing *networkingv1.Ingress, i int, t networkingv1.IngressTLS) string {
	if t.SecretName != "" {
		return t.SecretName
	}
	return routes.DefaultTLSSecretName(ing.Name, i)
}

// Served reports whether Havre's proxy serves ing: its class (spec or the
// kubernetes.io/ingress.class annotation) is an IngressClass of
// controller havre.io/ingress, or it has none and such a class is the
// default.
func (c *Controller) Served(ing *networkingv1.Ingress) bool {
	name := ""
	if ing.Spec.IngressClassName != nil {
		name = *ing.Spec.IngressClassName
	} else if a := ing.Annotations["kubernetes.io/ingress.class"]; a != "" {
		name = a
	}
	if name == routes.IngressClassName {
		return true
	}
	if name != "" {
		class, err := c.classes.Get(name)
		return err == nil && class.Spec.Controller == routes.IngressController
	}
	classes, _ := c.classes.List(labels.Everything())
	for _, class := range classes {
		if class.Spec.Controller == routes.IngressController && class.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			return true
		}
	}
	return false
}

// errReported is an issuance failure already reported in an Event.
var errReported = errors.New("reported in an Event")

// sync keeps the TLS Secrets of the Ingress key names.
func (c *Controller) sync(ctx context.Context, key string) error {
	if k, ok := strings.CutPrefix(key, gatewayPrefix); ok {
		return c.syncGateway(ctx, k)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ing, err := c.ingresses.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.Served(ing) {
		return nil
	}
	var errs []error
	var next time.Time
	for i, t := range ing.Spec.TLS {
		hosts := normalize(t.Hosts)
		if len(hosts) == 0 {
			continue
		}
		at, err := c.syncEntry(ctx, ing, ing.Namespace, secretName(ing, i, t), hosts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if !next.IsZero() {
		c.queue.AddAfter(key, max(next.Sub(c.clock.Now()), time.Second))
	}
	return joinErrs(errs)
}

func joinErrs(errs []error) error { return errors.Join(errs...) }

func normalize(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// syncEntry keeps one Secret issued for hosts; it returns when to look
// again (the renewal time).
func (c *Controller) syncEntry(ctx context.Context, ing runtime.Object, ns, secret string, hosts []string) (time.Time, error) {
	want := IssuerCluster
	if !slices.ContainsFunc(hosts, clusterissuer.IsPrivate) {
		want = IssuerACME
	}
	cur, err := c.secrets.Secrets(ns).Get(secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return time.Time{}, err
	}
	now := c.clock.Now()
	if cur != nil {
		managed := cur.Annotations[IssuerAnnotation] != ""
		if !managed && cur.Type != corev1.SecretTypeTLS {
			c.recorder.Eventf(ing, corev1.EventTypeWarning, ReasonFailed,
				"Secret %s exists and is not a %s Secret: not issuing a certificate into it", secret, corev1.SecretTypeTLS)
			return time.Time{}, nil
		}
		if leaf := parseLeaf(cur); leaf != nil && covers(leaf, hosts) && (!managed || cur.Annotations[IssuerAnnotation] == want || c.orderer == nil) {
			w := c.window(ctx, cur, leaf)
			if !acme.Due(now, leaf, w) {
				return acme.RenewAt(leaf, w), nil
			}
		}
	}
	if want == IssuerACME && c.orderer == nil {
		c.recorder.Eventf(ing, corev1.EventTypeWarning, ReasonFailed,
			"No certificate for %s: ACME is off (--acme-directory=off) and the names are public", strings.Join(hosts, ", "))
		return time.Time{}, nil
	}
	from := "the cluster issuer"
	if want == IssuerACME {
		from = c.orderer.Directory()
		if !c.proxyServing() {
			// The CA would find nothing answering its challenges: an
			// order now would fail (and count against its rate limits).
			c.recorder.Eventf(ing, corev1.EventTypeNormal, ReasonWaitingForProxy,
				"Waiting for a Ready node serving ingress (label %s=true) before ordering a certificate for %s from %s",
				routes.NodeLabel, strings.Join(hosts, ", "), from)
			return time.Time{}, nil
		}
	}
	var old *x509.Certificate
	if cur != nil && cur.Annotations[IssuerAnnotation] == want {
		old = parseLeaf(cur)
	}
	res, err := c.obtain(ctx, ing, hosts, want, from, old)
	if err != nil {
		c.recorder.Eventf(ing, corev1.EventTypeWarning, ReasonFailed, "Issuing a certificate for %s from %s into Secret %s failed: %v",
			strings.Join(hosts, ", "), from, secret, err)
		return time.Time{}, fmt.Errorf("%w: %w", errReported, err)
	}
	if err := c.write(ctx, ns, secret, cur, hosts, res); err != nil {
		return time.Time{}, err
	}
	c.recorder.Eventf(ing, corev1.EventTypeNormal, ReasonIssued, "Certificate for %s issued by %s stored in Secret %s, valid until %s",
		strings.Join(hosts, ", "), from, secret, res.leaf.NotAfter.UTC().Format(time.RFC3339))
	return acme.RenewAt(res.leaf, nil), nil
}

// proxyServing reports whether a Ready node serves ingress: the CA's
// validation requests reach the challenges through the nodes' proxies.
func (c *Controller) proxyServing() bool {
	nodes, err := c.nodes.List(labels.SelectorFromSet(labels.Set{routes.NodeLabel: "true"}))
	if err != nil {
		return false
	}
	for _, n := range nodes {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true
			}
		}
	}
	return false
}

// window is the CA's ARI window of an ACME certificate, cached.
func (c *Controller) window(ctx context.Context, s *corev1.Secret, leaf *x509.Certificate) *acme.Window {
	if c.orderer == nil || s.Annotations[IssuerAnnotation] != IssuerACME {
		return nil
	}
	id := leaf.SerialNumber.String()
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.ari[id]
	c.mu.Unlock()
	if ok && now.Sub(e.checked) < e.next {
		return e.w
	}
	e = ariEntry{checked: now, next: leaf.NotAfter.Sub(leaf.NotBefore) / 10}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if w, retry, ok := c.orderer.RenewalWindow(ctx, leaf); ok {
		e.w = &w
		if retry > 0 && retry < e.next {
			e.next = retry
		}
	}
	c.mu.Lock()
	if len(c.ari) > 10000 {
		clear(c.ari)
	}
	c.ari[id] = e
	c.mu.Unlock()
	return e.w
}

// obtain issues a certificate for hosts, once per set of names: a
// concurrent issuance for the same names is waited for, and a certificate
// issued for them that is not yet due is reused.
func (c *Controller) obtain(ctx context.Context, ing runtime.Object, hosts []string, issuer, from string, old *x509.Certificate) (*issued, error) {
	names := slices.Clone(hosts)
	slices.Sort(names)
	id := issuer + "|" + strings.Join(names, ",")
	c.mu.Lock()
	if r := c.recent[id]; r != nil && !acme.Due(c.clock.Now(), r.leaf, nil) && (old == nil || r.leaf.SerialNumber.Cmp(old.SerialNumber) != 0) {
		c.mu.Unlock()
		return r, nil
	}
	if f := c.flights[id]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.res, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[id] = f
	c.mu.Unlock()

	c.recorder.Eventf(ing, corev1.EventTypeNormal, ReasonIssuing, "Issuing a certificate for %s from %s", strings.Join(hosts, ", "), from)
	f.res, f.err = c.issue(ctx, hosts, issuer, old)

	c.mu.Lock()
	delete(c.flights, id)
	if f.err == nil {
		c.recent[id] = f.res
		for k, r := range c.recent {
			if !c.clock.Now().Before(r.leaf.NotAfter) {
				delete(c.recent, k)
			}
		}
	}
	c.mu.Unlock()
	close(f.done)
	return f.res, f.err
}

func (c *Controller) issue(ctx context.Context, hosts []string, issuer string, old *x509.Certificate) (*issued, error) {
	if issuer == IssuerCluster {
		iss, err := c.clusterIssuer(ctx)
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, err := iss.Issue(hosts, 0)
		if err != nil {
			return nil, err
		}
		leaf, err := leafOf(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		return &issued{certPEM: certPEM, keyPEM: keyPEM, caPEM: iss.CAPEM(), leaf: leaf, issuer: IssuerCluster}, nil
	}
	cert, err := c.orderer.Obtain(ctx, hosts, old)
	if err != nil {
		return nil, err
	}
	return &issued{certPEM: cert.CertPEM, keyPEM: cert.KeyPEM, leaf: cert.Leaf, issuer: IssuerACME}, nil
}

// clusterIssuer returns the cluster issuer, creating its CA the first time.
func (c *Controller) clusterIssuer(ctx context.Context) (*clusterissuer.Issuer, error) {
	c.issuerMu.Lock()
	defer c.issuerMu.Unlock()
	if c.issuer != nil {
		return c.issuer, nil
	}
	iss, err := clusterissuer.Ensure(ctx, c.client)
	if err != nil {
		return nil, fmt.Errorf("the cluster issuer's CA: %w", err)
	}
	iss.Now = c.clock.Now
	c.issuer = iss
	return iss, nil
}

// write stores the certificate in the Secret (creating or replacing it).
func (c *Controller) write(ctx context.Context, ns, name string, cur *corev1.Secret, hosts []string, res *issued) error {
	data := map[string][]byte{corev1.TLSCertKey: res.certPEM, corev1.TLSPrivateKeyKey: res.keyPEM}
	if res.caPEM != nil {
		data["ca.crt"] = res.caPEM
	}
	ann := map[string]string{IssuerAnnotation: res.issuer, HostsAnnotation: strings.Join(hosts, ",")}
	if cur == nil {
		_, err := c.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "havre"}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}, metav1.CreateOptions{})
		return err
	}
	s := cur.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	for k, v := range ann {
		s.Annotations[k] = v
	}
	s.Data = data
	_, err := c.client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
	return err
}

func parseLeaf(s *corev1.Secret) *x509.Certificate {
	leaf, err := leafOf(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil
	}
	return leaf
}

func leafOf(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// covers reports whether the certificate names every host (a wildcard
// host by the same wildcard, a name by itself or a wildcard of one label).
func covers(leaf *x509.Certificate, hosts []string) bool {
	names := map[string]bool{}
	for _, n := range leaf.DNSNames {
		names[strings.ToLower(n)] = true
	}
	for _, ip := range leaf.IPAddresses {
		names[ip.String()] = true
	}
	for _, h := range hosts {
		if names[h] {
			continue
		}
		if i := strings.IndexByte(h, '.'); i > 0 && !strings.HasPrefix(h, "*.") && names["*"+h[i:]] {
			continue
		}
		return false
	}
	return true
}
