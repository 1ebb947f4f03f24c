package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/volume/ephemeral"
)

// startEphemeralVolume starts the controller creating the claims of
// generic ephemeral volumes, with upstream's 5 workers
// (--concurrent-ephemeralvolume-syncs).
func startEphemeralVolume(ctx context.Context, c *controller.Context) error {
	ec, err := ephemeral.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "ephemeral_volume"))
	if err != nil {
		return err
	}
	go ec.Run(ctx, 5)
	return nil
}
