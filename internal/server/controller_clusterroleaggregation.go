package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/clusterroleaggregation"
)

// startClusterRoleAggregation starts the controller filling the rules of
// ClusterRoles with an aggregationRule (admin, edit, view, ...).
func startClusterRoleAggregation(ctx context.Context, c *controller.Context) error {
	a, err := clusterroleaggregation.New(c.Client, c.Informers)
	if err != nil {
		return err
	}
	go a.Run(ctx, 1)
	return nil
}
