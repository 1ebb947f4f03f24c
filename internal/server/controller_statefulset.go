package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/statefulset"
)

// startStatefulSet starts the StatefulSet controller.
func startStatefulSet(ctx context.Context, c *controller.Context) error {
	sc, err := statefulset.New(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go sc.Run(ctx, 5)
	return nil
}
