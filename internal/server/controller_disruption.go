package server

import (
	"context"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/scale"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/disruption"
)

// startDisruption starts the controller computing PodDisruptionBudget
// status. Controllers other than the built-in workloads are read through
// their scale subresource.
func startDisruption(ctx context.Context, c *controller.Context) error {
	disco := c.Client.Discovery()
	scales, err := scale.NewForConfig(c.Config, c.Mapper, dynamic.LegacyAPIPathResolverFunc,
		scale.NewDiscoveryScaleKindResolver(disco))
	if err != nil {
		return err
	}
	dc, err := disruption.New(disruption.Config{
		Client: c.Client, Informers: c.Informers, Mapper: c.Mapper, Scales: scales, Discovery: disco,
		Served: c.Namespaced,
	})
	if err != nil {
		return err
	}
	go dc.Run(ctx, 2)
	return nil
}
