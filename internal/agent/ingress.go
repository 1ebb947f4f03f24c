package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/havre/havre/internal/certs/acme"
	"github.com/havre/havre/internal/network/gateway"
	"github.com/havre/havre/internal/network/ingress/annotations"
	"github.com/havre/havre/internal/version"

	"github.com/havre/havre/internal/network/ingress"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// Default ports of the node's ingress proxy.
const (
	DefaultIngressHTTPPort  = 80
	DefaultIngressHTTPSPort = 443
)

// ingressProxy builds the node's HTTP(S) proxy on the pod network's
// informer factory (before it starts): Ingresses (with ingress-nginx's
// annotations) and Gateway API routes, the latter on an informer factory of
// their own, started by runIngress. It returns nil when disabled.
func (a *Agent) ingressProxy(factory informers.SharedInformerFactory) (*ingress.Proxy, gatewayinformers.SharedInformerFactory, error) {
	if a.opts.DisableIngress {
		return nil, nil, nil
	}
	httpPort, httpsPort := a.opts.IngressHTTPPort, a.opts.IngressHTTPSPort
	if httpPort == 0 {
		httpPort = DefaultIngressHTTPPort
	}
	if httpsPort == 0 {
		httpsPort = DefaultIngressHTTPSPort
	}
	a.opts.IngressHTTPPort, a.opts.IngressHTTPSPort = httpPort, httpsPort
	gwConfig := rest.CopyConfig(a.opts.RESTConfig)
	gwConfig.UserAgent = fmt.Sprintf("havre-agent/%s (%s) gateway-api", version.Havre, a.nodeName)
	gwClient, err := gatewayclient.NewForConfig(gwConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("ingress proxy: %w", err)
	}
	gwFactory := gatewayinformers.NewSharedInformerFactory(gwClient, 0)
	secrets := factory.Core().V1().Secrets().Lister()
	parser := annotations.New(annotations.Config{Secrets: secrets, HTTPSPort: httpsPort})
	readAnnotations := func(ing *networkingv1.Ingress) (func(http.Handler) http.Handler, ingress.Tuning, []string) {
		mw, t, warnings := parser.Parse(ing)
		return mw, ingress.Tuning{Apply: t.Apply, SSLRedirect: t.SSLRedirect}, warnings
	}
	cfg := ingress.Config{
		HTTPPort: httpPort, HTTPSPort: httpsPort,
		Sources: []routes.Source{
			ingress.NewIngressSource(factory, readAnnotations),
			gateway.NewSource(gwFactory, factory),
		},
		Endpoints:  ingress.NewSliceEndpoints(factory),
		Challenges: acme.NewReader(secrets),
	}
	if a.opts.IngressAccessLog {
		cfg.AccessLog = slog.Default().With("component", "ingress")
	}
	p, err := ingress.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("ingress proxy: %w", err)
	}
	return p, gwFactory, nil
}

// runIngress serves the proxy until ctx is done; a port it cannot listen
// on is logged, the node runs on without ingress.
func runIngress(ctx context.Context, p *ingress.Proxy, gwFactory gatewayinformers.SharedInformerFactory, httpPort, httpsPort int) error {
	gwFactory.Start(ctx.Done())
	defer gwFactory.Shutdown()
	go func() {
		select {
		case <-p.Ready():
			slog.Info("ingress proxy serving", "httpPort", httpPort, "httpsPort", httpsPort)
		case <-ctx.Done():
		}
	}()
	return p.Run(ctx)
}
