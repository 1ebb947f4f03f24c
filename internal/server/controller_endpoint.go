package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/endpoint"
)

// startEndpoints starts the Endpoints controller with upstream's 5 workers
// (--concurrent-endpoint-syncs).
func startEndpoints(ctx context.Context, c *controller.Context) error {
	ec, err := endpoint.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "endpoint-controller"),
		c.Options.EndpointUpdatesBatchPeriod)
	if err != nil {
		return err
	}
	go ec.Run(ctx, 5)
	return nil
}
