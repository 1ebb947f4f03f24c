package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/endpointslice"
)

// startEndpointSlice starts the EndpointSlice controller with upstream's 5
// workers (--concurrent-service-endpoint-syncs).
func startEndpointSlice(ctx context.Context, c *controller.Context) error {
	esc, err := endpointslice.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "endpoint-slice-controller"),
		endpointslice.Options{
			MaxEndpointsPerSlice: c.Options.MaxEndpointsPerSlice,
			BatchPeriod:          c.Options.EndpointSliceUpdatesBatchPeriod,
		})
	if err != nil {
		return err
	}
	go esc.Run(ctx, 5)
	return nil
}
