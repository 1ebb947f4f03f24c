package server

import (
	"context"

	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/apiserviceavailability"
)

// startAPIServiceAvailability starts the controller keeping APIServices'
// Available condition (kube-aggregator's availability controllers).
func startAPIServiceAvailability(ctx context.Context, c *controller.Context) error {
	client, err := aggregatorclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ac, err := apiserviceavailability.New(client, c.Informers, c.Options.APIServiceDiscoveryCheck)
	if err != nil {
		return err
	}
	go ac.Run(ctx, 2)
	return nil
}
