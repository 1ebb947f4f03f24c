package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/cronjob"
)

// startCronJob starts the CronJob controller with upstream's 5 workers
// (--concurrent-cron-job-syncs).
func startCronJob(ctx context.Context, c *controller.Context) error {
	cc, err := cronjob.New(c.Client, c.Informers, nil)
	if err != nil {
		return err
	}
	go cc.Run(ctx, 5)
	return nil
}
