package gateway

import (
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gatewaylisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// Listers read what Resolve needs from informers' caches.
type Listers struct {
	Classes         gatewaylisters.GatewayClassLister
	Gateways        gatewaylisters.GatewayLister
	HTTPRoutes      gatewaylisters.HTTPRouteLister
	GRPCRoutes      gatewaylisters.GRPCRouteLister
	ReferenceGrants gatewaylisters.ReferenceGrantLister
	Services        corelisters.ServiceLister
	Namespaces      corelisters.NamespaceLister
	Secrets         corelisters.SecretLister
	// Synced are the informers' HasSynced.
	Synced []cache.InformerSynced
}

// NewListers asks the factories for the informers Resolve reads and calls
// onChange (when not nil) on every change of any of them. Start the
// factories afterwards.
func NewListers(gw gatewayinformers.SharedInformerFactory, kube informers.SharedInformerFactory, onChange func()) *Listers {
	v1 := gw.Gateway().V1()
	l := &Listers{
		Classes:         v1.GatewayClasses().Lister(),
		Gateways:        v1.Gateways().Lister(),
		HTTPRoutes:      v1.HTTPRoutes().Lister(),
		GRPCRoutes:      v1.GRPCRoutes().Lister(),
		ReferenceGrants: v1.ReferenceGrants().Lister(),
		Services:        kube.Core().V1().Services().Lister(),
		Namespaces:      kube.Core().V1().Namespaces().Lister(),
		Secrets:         kube.Core().V1().Secrets().Lister(),
	}
	for _, inf := range []cache.SharedIndexInformer{
		v1.GatewayClasses().Informer(), v1.Gateways().Informer(), v1.HTTPRoutes().Informer(), v1.GRPCRoutes().Informer(),
		v1.ReferenceGrants().Informer(), kube.Core().V1().Services().Informer(), kube.Core().V1().Namespaces().Informer(),
		kube.Core().V1().Secrets().Informer(),
	} {
		l.Synced = append(l.Synced, inf.HasSynced)
		if onChange != nil {
			_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(any) { onChange() },
				UpdateFunc: func(any, any) { onChange() },
				DeleteFunc: func(any) { onChange() },
			})
			if err != nil {
				slog.Error("gateway: adding an event handler", "err", err)
			}
		}
	}
	return l
}

// Snapshot reads the caches.
func (l *Listers) Snapshot(httpPort, httpsPort int32) (*Snapshot, error) {
	s := &Snapshot{
		Services:        map[types.NamespacedName]*corev1.Service{},
		NamespaceLabels: map[string]map[string]string{},
		HTTPPort:        httpPort,
		HTTPSPort:       httpsPort,
	}
	var err error
	if s.Classes, err = l.Classes.List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.Gateways, err = l.Gateways.List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.HTTPRoutes, err = l.HTTPRoutes.List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.GRPCRoutes, err = l.GRPCRoutes.List(labels.Everything()); err != nil {
		return nil, err
	}
	if s.ReferenceGrants, err = l.ReferenceGrants.List(labels.Everything()); err != nil {
		return nil, err
	}
	services, err := l.Services.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, svc := range services {
		s.Services[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = svc
	}
	namespaces, err := l.Namespaces.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, ns := range namespaces {
		s.NamespaceLabels[ns.Name] = ns.Labels
	}
	s.Secret = func(n types.NamespacedName) *corev1.Secret {
		secret, err := l.Secrets.Secrets(n.Namespace).Get(n.Name)
		if err != nil {
			return nil
		}
		return secret
	}
	return s, nil
}

// The listener ports of the proxy's two standard ports, as the proxy
// reads a routes.Table: a routes.Listener of port 80 is served on the
// node's --ingress-http-port, one of 443 on its --ingress-https-port.
const (
	HTTPPort  int32 = 80
	HTTPSPort int32 = 443
)

// Source is the routes.Source of Gateway API for a node's proxy.
type Source struct {
	listers *Listers
	changed chan struct{}
}

var _ routes.Source = (*Source)(nil)

// NewSource builds the Source on the factories (start them afterwards).
// Its table names Gateway listener ports as they are (80 and 443 being
// the node's ingress ports, see HTTPPort).
func NewSource(gw gatewayinformers.SharedInformerFactory, kube informers.SharedInformerFactory) *Source {
	s := &Source{changed: make(chan struct{}, 1)}
	s.listers = NewListers(gw, kube, s.notify)
	return s
}

func (s *Source) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Synced are the informers' HasSynced.
func (s *Source) Synced() []cache.InformerSynced { return s.listers.Synced }

// Changed fires after any change of what the table is built from.
func (s *Source) Changed() <-chan struct{} { return s.changed }

// Build translates the caches' content.
func (s *Source) Build() *routes.Table {
	snap, err := s.listers.Snapshot(HTTPPort, HTTPSPort)
	if err != nil {
		slog.Error("gateway: reading the caches", "err", err)
		return &routes.Table{}
	}
	return Resolve(snap).Table
}
