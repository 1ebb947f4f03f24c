package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/endpointslicemirroring"
)

// startEndpointSliceMirroring starts the mirroring controller with
// upstream's 5 workers (--mirroring-concurrent-service-endpoint-syncs).
func startEndpointSliceMirroring(ctx context.Context, c *controller.Context) error {
	mc, err := endpointslicemirroring.New(c.Client, c.Informers,
		workloadEventRecorder(ctx, c.Client, "endpoint-slice-mirroring-controller"), 0)
	if err != nil {
		return err
	}
	go mc.Run(ctx, 5)
	return nil
}
