package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// Tuning is what an Ingress's annotations change in its routes.
type Tuning struct {
	// Apply changes one route built from the Ingress (nil: nothing); an
	// error leaves the path out.
	Apply func(r *routes.Route) error
	// SSLRedirect false: the Ingress's TLS hosts are not redirected to
	// HTTPS (nil: the default, redirect).
	SSLRedirect *bool
}

// AnnotationParser reads an Ingress's annotations into middleware for
// its routes, tuning, and warnings about annotations not applied (nil:
// annotations are ignored). The annotations package's Parser.Parse fits
// through a three-line adapter (see the agent's wiring).
type AnnotationParser func(ing *networkingv1.Ingress) (mw func(http.Handler) http.Handler, tune Tuning, warnings []string)

// Annotations of Ingresses and IngressClasses the translator reads.
const (
	// IngressClassAnnotation is the deprecated class annotation, still
	// honoured when spec.ingressClassName is unset.
	IngressClassAnnotation = "kubernetes.io/ingress.class"
	// DefaultClassAnnotation marks the default IngressClass.
	DefaultClassAnnotation = networkingv1.AnnotationIsDefaultIngressClass
)

// IngressSource translates the Ingresses of Havre's classes into routes
// (a routes.Source).
type IngressSource struct {
	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	services  corelisters.ServiceLister
	secrets   corelisters.SecretLister
	parser    AnnotationParser
	changed   chan struct{}

	mu     sync.Mutex
	logged map[types.UID]string // resourceVersion whose problems were logged
	// certs are the parsed TLS Secrets by UID, kept while their
	// resourceVersion holds (a Build parses no Secret twice).
	certs     map[types.UID]parsedCert
	usedCerts map[types.UID]bool // by the Build under way
}

type parsedCert struct {
	rv   string
	cert *tls.Certificate
	err  error
}

// NewIngressSource registers its handlers on the factory's informers of
// Ingresses, IngressClasses, Services and Secrets (start the factory
// afterwards). parser may be nil.
func NewIngressSource(factory informers.SharedInformerFactory, parser AnnotationParser) *IngressSource {
	s := &IngressSource{
		ingresses: factory.Networking().V1().Ingresses().Lister(),
		classes:   factory.Networking().V1().IngressClasses().Lister(),
		services:  factory.Core().V1().Services().Lister(),
		secrets:   factory.Core().V1().Secrets().Lister(),
		parser:    parser,
		changed:   make(chan struct{}, 1),
		logged:    map[types.UID]string{},
		certs:     map[types.UID]parsedCert{},
		usedCerts: map[types.UID]bool{},
	}
	kick := func(any) {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: kick, UpdateFunc: func(_, o any) { kick(o) }, DeleteFunc: kick}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Networking().V1().Ingresses().Informer(), factory.Networking().V1().IngressClasses().Informer(),
		factory.Core().V1().Services().Informer(),
	} {
		_, _ = inf.AddEventHandler(h)
	}
	_, _ = factory.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { kickSecret(o, kick) },
		UpdateFunc: func(_, o any) { kickSecret(o, kick) },
		DeleteFunc: func(o any) { kickSecret(o, kick) },
	})
	return s
}

func kickSecret(o any, kick func(any)) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if sec, ok := o.(*corev1.Secret); ok && sec.Type != corev1.SecretTypeTLS {
		return
	}
	kick(o)
}

// Changed implements routes.Source.
func (s *IngressSource) Changed() <-chan struct{} { return s.changed }

// Ours reports whether an Ingress is served by Havre: its class (field,
// else the deprecated annotation) is one of Havre's IngressClasses, or it
// names none and Havre's class is the default.
func Ours(ing *networkingv1.Ingress, classes []*networkingv1.IngressClass) bool {
	name := ""
	if ing.Spec.IngressClassName != nil {
		name = *ing.Spec.IngressClassName
	} else if a, ok := ing.Annotations[IngressClassAnnotation]; ok {
		name = a
	}
	for _, c := range classes {
		if c.Spec.Controller != routes.IngressController {
			continue
		}
		if name == "" && c.Annotations[DefaultClassAnnotation] == "true" {
			return true
		}
		if name != "" && c.Name == name {
			return true
		}
	}
	return false
}

// OursFromListers is Ours with the IngressClasses of a lister.
func OursFromListers(ing *networkingv1.Ingress, classes networkinglisters.IngressClassLister) bool {
	cl, _ := classes.List(labels.Everything())
	return Ours(ing, cl)
}

// Build implements routes.Source.
func (s *IngressSource) Build() *routes.Table {
	all, _ := s.ingresses.List(labels.Everything())
	classes, _ := s.classes.List(labels.Everything())
	var ings []*networkingv1.Ingress
	for _, ing := range all {
		if Ours(ing, classes) {
			ings = append(ings, ing)
		}
	}
	// The oldest Ingress wins a conflict (same host and path).
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	t := s.translate(ings)
	s.forget(all)
	return t
}

// forget drops what is kept of Ingresses and Secrets that are gone.
func (s *IngressSource) forget(ings []*networkingv1.Ingress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[types.UID]bool{}
	for _, ing := range ings {
		live[ing.UID] = true
	}
	for uid := range s.logged {
		if !live[uid] {
			delete(s.logged, uid)
		}
	}
	for uid := range s.certs {
		if !s.usedCerts[uid] {
			delete(s.certs, uid)
		}
	}
	s.usedCerts = map[types.UID]bool{}
}

// translate builds the table of a list of Ingresses (in precedence order).
func (s *IngressSource) translate(ings []*networkingv1.Ingress) *routes.Table {
	httpL := &routes.Listener{Port: routes.HTTPPort, Protocol: routes.HTTP}
	httpsL := &routes.Listener{Port: routes.HTTPSPort, Protocol: routes.HTTPS}
	hosts := map[string]*routes.VirtualHost{}
	var order []string
	certified := map[string]bool{} // hosts with a certificate
	optOut := map[string]bool{}    // hosts an Ingress keeps off the redirect
	host := func(h string) *routes.VirtualHost {
		h = strings.ToLower(h)
		v := hosts[h]
		if v == nil {
			v = &routes.VirtualHost{Hostname: h, WildcardOneLabel: true}
			hosts[h] = v
			order = append(order, h)
		}
		return v
	}
	for _, ing := range ings {
		var problems []string
		var mw func(http.Handler) http.Handler
		var tune Tuning
		if s.parser != nil {
			var warnings []string
			mw, tune, warnings = s.parser(ing)
			problems = append(problems, warnings...)
		}
		build := func(rule int, paths []networkingv1.HTTPIngressPath, def *networkingv1.IngressBackend) []*routes.Route {
			var out []*routes.Route
			for _, p := range paths {
				r, problem := s.route(ing, rule, &p.Backend, p.Path, p.PathType, mw, tune)
				if problem != "" {
					problems = append(problems, problem)
					continue
				}
				out = append(out, r)
			}
			if def != nil && !slices.ContainsFunc(paths, func(p networkingv1.HTTPIngressPath) bool {
				return (p.PathType == nil || *p.PathType != networkingv1.PathTypeExact) && strings.TrimRight(p.Path, "/") == ""
			}) {
				pt := networkingv1.PathTypePrefix
				if r, problem := s.route(ing, -1, def, "/", &pt, mw, tune); problem == "" {
					out = append(out, r)
				} else {
					problems = append(problems, problem)
				}
			}
			return out
		}
		for i, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				if ing.Spec.DefaultBackend != nil && rule.Host != "" {
					v := host(rule.Host)
					v.Routes = append(v.Routes, build(i, nil, ing.Spec.DefaultBackend)...)
				}
				continue
			}
			v := host(rule.Host)
			v.Routes = append(v.Routes, build(i, rule.HTTP.Paths, ing.Spec.DefaultBackend)...)
		}
		if ing.Spec.DefaultBackend != nil {
			v := host("")
			v.Routes = append(v.Routes, build(-1, nil, ing.Spec.DefaultBackend)...)
		}
		for i, t := range ing.Spec.TLS {
			name := t.SecretName
			if name == "" {
				name = routes.DefaultTLSSecretName(ing.Name, i)
			}
			cert, problem := s.certificate(ing.Namespace, name, t.Hosts)
			if problem != "" {
				problems = append(problems, problem)
				continue
			}
			if len(cert.Hosts) == 0 {
				if httpsL.Default == nil {
					httpsL.Default = cert
				}
				continue
			}
			httpsL.Certificates = append(httpsL.Certificates, cert)
			for _, h := range cert.Hosts {
				certified[strings.ToLower(h)] = true
				if tune.SSLRedirect != nil && !*tune.SSLRedirect {
					optOut[strings.ToLower(h)] = true
				}
			}
		}
		s.report(ing, problems)
	}
	for _, h := range order {
		v := hosts[h]
		httpsL.Hosts = append(httpsL.Hosts, v)
		hv := *v
		hv.RedirectToHTTPS = h != "" && certified[h] && !optOut[h]
		httpL.Hosts = append(httpL.Hosts, &hv)
	}
	routes.SortHosts(httpL.Hosts)
	routes.SortHosts(httpsL.Hosts)
	return &routes.Table{Listeners: []*routes.Listener{httpL, httpsL}}
}

// route translates one path of an Ingress; problem says why it is not
// served.
func (s *IngressSource) route(ing *networkingv1.Ingress, rule int, b *networkingv1.IngressBackend, path string, pt *networkingv1.PathType,
	mw func(http.Handler) http.Handler, tune Tuning) (*routes.Route, string) {
	if b.Resource != nil {
		return nil, "resource backend " + b.Resource.Kind + " " + b.Resource.Name + " is not supported (only Service backends are served)"
	}
	if b.Service == nil {
		return nil, "a backend has no service"
	}
	m := routes.Match{PathType: routes.PathPrefix, Path: path}
	if path == "" {
		m.Path = "/"
	}
	if pt != nil && *pt == networkingv1.PathTypeExact {
		m.PathType = routes.PathExact
	}
	backend := routes.Backend{
		Service: types.NamespacedName{Namespace: ing.Namespace, Name: b.Service.Name},
		Port:    b.Service.Port.Number, PortName: b.Service.Port.Name, Weight: 1, Protocol: routes.ProtoHTTP1,
	}
	if svc, err := s.services.Services(ing.Namespace).Get(b.Service.Name); err == nil {
		for _, sp := range svc.Spec.Ports {
			if (backend.PortName != "" && sp.Name == backend.PortName) || (backend.PortName == "" && sp.Port == backend.Port) {
				backend.Protocol = appProtocol(sp.AppProtocol)
			}
		}
	}
	r := &routes.Route{
		Origin:     routes.Origin{Kind: "Ingress", Namespace: ing.Namespace, Name: ing.Name, Rule: rule},
		Matches:    []routes.Match{m},
		Backends:   []routes.Backend{backend},
		Middleware: mw,
		Retries:    2,
	}
	if tune.Apply != nil {
		if err := tune.Apply(r); err != nil {
			return nil, err.Error()
		}
	}
	return r, ""
}

// appProtocol maps a Service port's appProtocol to how the proxy talks to
// it.
func appProtocol(p *string) routes.AppProtocol {
	if p == nil {
		return routes.ProtoHTTP1
	}
	switch strings.ToLower(*p) {
	case "kubernetes.io/h2c", "h2c":
		return routes.ProtoH2C
	case "grpc":
		return routes.ProtoGRPC
	case "https", "kubernetes.io/https":
		return routes.ProtoHTTPS
	case "grpcs":
		return routes.ProtoGRPCS
	}
	return routes.ProtoHTTP1
}

// certificate reads a TLS Secret; hosts empty: the certificate's names.
func (s *IngressSource) certificate(namespace, name string, hosts []string) (*routes.Certificate, string) {
	sec, err := s.secrets.Secrets(namespace).Get(name)
	if err != nil {
		return nil, "TLS secret " + namespace + "/" + name + " not found (its hosts are served with the default certificate)"
	}
	s.mu.Lock()
	pc, ok := s.certs[sec.UID]
	s.usedCerts[sec.UID] = true
	s.mu.Unlock()
	if !ok || pc.rv != sec.ResourceVersion {
		pc = parsedCert{rv: sec.ResourceVersion}
		cert, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
		if err == nil && cert.Leaf == nil && len(cert.Certificate) > 0 {
			cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		pc.cert, pc.err = &cert, err
		s.mu.Lock()
		s.certs[sec.UID] = pc
		s.mu.Unlock()
	}
	if pc.err != nil {
		return nil, "TLS secret " + namespace + "/" + name + ": " + pc.err.Error()
	}
	if len(hosts) == 0 && pc.cert.Leaf != nil {
		hosts = pc.cert.Leaf.DNSNames
	}
	return &routes.Certificate{Hosts: hosts, Cert: pc.cert, Source: types.NamespacedName{Namespace: namespace, Name: name}}, ""
}

// report logs an Ingress's problems once per resourceVersion (the
// server-side ingress controller records them as Events).
func (s *IngressSource) report(ing *networkingv1.Ingress, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logged[ing.UID] == ing.ResourceVersion {
		return
	}
	s.logged[ing.UID] = ing.ResourceVersion
	for _, p := range problems {
		slog.Warn("ingress: not served as written", "ingress", ing.Namespace+"/"+ing.Name, "problem", p)
	}
}
