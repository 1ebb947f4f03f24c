package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/scheduler"
)

// startScheduler starts the scheduler with the configuration file of
// --scheduler-config, or upstream's default profile.
func startScheduler(ctx context.Context, c *controller.Context) error {
	cfg, err := scheduler.LoadConfig(c.Options.SchedulerConfig)
	if err != nil {
		return err
	}
	s, err := scheduler.New(c.Client, c.Informers, cfg, scheduler.WithDynamicClient(c.Dynamic))
	if err != nil {
		return err
	}
	go s.Run(ctx)
	return nil
}
