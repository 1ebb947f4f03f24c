package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/ingress"
)

// startIngress starts the controller writing the status of Havre's
// Ingresses (one worker: its Event bookkeeping is not shared).
func startIngress(ctx context.Context, c *controller.Context) error {
	ic, err := ingress.New(c.Client, c.Informers, workloadEventRecorder(ctx, c.Client, ingress.Name))
	if err != nil {
		return err
	}
	go ic.Run(ctx, 1)
	return nil
}
