package server

import (
	"context"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapshotinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/volume/snapshot"
)

// startSnapshot starts the snapshot-controller (upstream's common
// snapshot controller) on the shared claim informer and snapshot
// informers of its own.
func startSnapshot(ctx context.Context, c *controller.Context) error {
	client, err := snapshotclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	sf := snapshotinformers.NewSharedInformerFactory(client, 0)
	sc, err := snapshot.New(c.Client, client, c.Informers, sf, nil, nil)
	if err != nil {
		return err
	}
	sf.Start(ctx.Done())
	go sc.Run(ctx, 2)
	return nil
}
