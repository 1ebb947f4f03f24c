package server

import (
	"context"
	"log/slog"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/kubernetesendpoints"
)

// startKubernetesEndpoints keeps the default/kubernetes Endpoints and
// EndpointSlice on the API servers' advertise addresses, when they are
// known.
func startKubernetesEndpoints(ctx context.Context, c *controller.Context) error {
	if len(c.Options.APIServerAddresses) == 0 {
		slog.Info("no advertise address: the kubernetes Service's endpoints are not written")
		return nil
	}
	r, err := kubernetesendpoints.New(c.Client, c.Informers, c.Options.APIServerAddresses, c.Options.APIServerPort)
	if err != nil {
		return err
	}
	go r.Run(ctx)
	return nil
}
