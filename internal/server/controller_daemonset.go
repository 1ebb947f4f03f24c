package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/daemonset"
)

// startDaemonSet starts the DaemonSet controller.
func startDaemonSet(ctx context.Context, c *controller.Context) error {
	dc, err := daemonset.New(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go dc.Run(ctx, 2)
	return nil
}
