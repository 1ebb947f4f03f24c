package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/rootcacert"
)

// startRootCACertPublisher starts the controller publishing the cluster CA
// in every namespace (ConfigMap kube-root-ca.crt).
func startRootCACertPublisher(ctx context.Context, c *controller.Context) error {
	p, err := rootcacert.New(c.Client, c.Informers, c.Config.TLSClientConfig.CAData)
	if err != nil {
		return err
	}
	go p.Run(ctx, 1)
	return nil
}
