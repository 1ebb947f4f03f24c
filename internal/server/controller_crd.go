package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/crd"
)

// startCRD starts the CustomResourceDefinition controllers (names,
// Established, deletion of the instances of a deleted definition).
func startCRD(ctx context.Context, c *controller.Context) error {
	cc, err := crd.New(c.Config, c.Dynamic)
	if err != nil {
		return err
	}
	go cc.Run(ctx)
	return nil
}
