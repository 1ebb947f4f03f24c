package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/deployment"
)

// startDeployment starts the Deployment controller with upstream's 5
// workers (--concurrent-deployment-syncs).
func startDeployment(ctx context.Context, c *controller.Context) error {
	dc, err := deployment.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "deployment-controller"))
	if err != nil {
		return err
	}
	go dc.Run(ctx, 5)
	return nil
}
