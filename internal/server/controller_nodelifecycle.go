package server

import (
	"context"
	"time"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/nodelifecycle"
)

// startNodeLifecycle starts the node lifecycle controller with its
// taint-based eviction. Node health is checked every 5s as upstream, or
// every eighth of the grace period when that is shorter (a short grace
// period is a test's).
func startNodeLifecycle(ctx context.Context, c *controller.Context) error {
	grace := nodelifecycle.DefaultNodeMonitorGracePeriod
	if s := c.Options.NodeMonitorGracePeriodSeconds; s > 0 {
		grace = time.Duration(s) * time.Second
	}
	nc, err := nodelifecycle.New(nodelifecycle.Config{
		Client:                 c.Client,
		Informers:              c.Informers,
		NodeMonitorGracePeriod: grace,
		NodeMonitorPeriod:      min(nodelifecycle.DefaultNodeMonitorPeriod, grace/8),
	})
	if err != nil {
		return err
	}
	go nc.Run(ctx, 4)
	return nil
}
