package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/volume/persistentvolume"
)

// startPersistentVolumeBinder starts the PersistentVolume controller
// (binding, phases, reclaim, the provisioning and expansion hand-offs),
// with one worker per queue as upstream.
func startPersistentVolumeBinder(ctx context.Context, c *controller.Context) error {
	pvc, err := persistentvolume.New(c.Client, c.Informers,
		workloadEventRecorder(ctx, c.Client, "persistentvolume-controller"), nil)
	if err != nil {
		return err
	}
	go pvc.Run(ctx)
	return nil
}
