package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/volume/protection"
)

// startPVCProtection starts the controller keeping claims in use from
// going away, with one worker as upstream.
func startPVCProtection(ctx context.Context, c *controller.Context) error {
	p, err := protection.NewPVCProtection(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go p.Run(ctx, 1)
	return nil
}

// startPVProtection starts the controller keeping bound volumes from
// going away, with one worker as upstream.
func startPVProtection(ctx context.Context, c *controller.Context) error {
	p, err := protection.NewPVProtection(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go p.Run(ctx, 1)
	return nil
}
