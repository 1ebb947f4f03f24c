package server

import (
	"context"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/gateway"
)

// startGateway starts the Gateway API status controller on Gateway API
// informers of its own (as its identity) and the shared Service,
// Namespace, Secret and Node informers.
func startGateway(ctx context.Context, c *controller.Context) error {
	client, err := gatewayclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ext, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	gf := gatewayinformers.NewSharedInformerFactory(client, 0)
	ctrl := gateway.New(client, ext, gf, c.Informers)
	gf.Start(ctx.Done())
	go ctrl.Run(ctx)
	return nil
}
