package agent

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/informers"

	"github.com/havre/havre/internal/network/ingress"
	"github.com/havre/havre/internal/network/ingress/routes"
)

// Default ports of the node's ingress proxy.
const (
	DefaultIngressHTTPPort  = 80
	DefaultIngressHTTPSPort = 443
)

// ingressProxy builds the node's HTTP(S) proxy for Ingresses on the pod
// network's informer factory (before it starts); nil when disabled.
func (a *Agent) ingressProxy(factory informers.SharedInformerFactory) (*ingress.Proxy, error) {
	if a.opts.DisableIngress {
		return nil, nil
	}
	httpPort, httpsPort := a.opts.IngressHTTPPort, a.opts.IngressHTTPSPort
	if httpPort == 0 {
		httpPort = DefaultIngressHTTPPort
	}
	if httpsPort == 0 {
		httpsPort = DefaultIngressHTTPSPort
	}
	a.opts.IngressHTTPPort, a.opts.IngressHTTPSPort = httpPort, httpsPort
	sources := []routes.Source{ingress.NewIngressSource(factory, a.opts.IngressAnnotations)}
	cfg := ingress.Config{
		HTTPPort: httpPort, HTTPSPort: httpsPort,
		Sources:   append(sources, a.opts.IngressSources...),
		Endpoints: ingress.NewSliceEndpoints(factory),
	}
	if a.opts.IngressChallenges != nil {
		cfg.Challenges = a.opts.IngressChallenges(factory)
	}
	if a.opts.IngressAccessLog {
		cfg.AccessLog = slog.Default().With("component", "ingress")
	}
	p, err := ingress.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ingress proxy: %w", err)
	}
	return p, nil
}

// runIngress serves the proxy until ctx is done; a port it cannot listen
// on is logged, the node runs on without ingress.
func runIngress(ctx context.Context, p *ingress.Proxy, httpPort, httpsPort int) error {
	go func() {
		select {
		case <-p.Ready():
			slog.Info("ingress proxy serving", "httpPort", httpPort, "httpsPort", httpsPort)
		case <-ctx.Done():
		}
	}()
	return p.Run(ctx)
}
