package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/serviceaccount"
)

// startServiceAccount starts the controller ensuring every namespace's
// default ServiceAccount.
func startServiceAccount(ctx context.Context, c *controller.Context) error {
	sac, err := serviceaccount.New(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go sac.Run(ctx, 1)
	return nil
}
