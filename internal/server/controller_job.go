package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/job"
)

// startJob starts the Job controller with upstream's 5 workers
// (--concurrent-job-syncs).
func startJob(ctx context.Context, c *controller.Context) error {
	jc, err := job.New(c.Client, c.Informers, job.Options{})
	if err != nil {
		return err
	}
	go jc.Run(ctx, 5)
	return nil
}
