package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/servicelb"
)

// startServiceLB starts the controller giving LoadBalancer Services their
// nodes' addresses, with one worker as upstream's service controller
// (--concurrent-service-syncs).
func startServiceLB(ctx context.Context, c *controller.Context) error {
	lb, err := servicelb.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, "service-lb-controller"))
	if err != nil {
		return err
	}
	go lb.Run(ctx, 1)
	return nil
}
