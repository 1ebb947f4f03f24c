package server

import (
	"context"
	"fmt"
	"log/slog"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/volume/snapshotapi"
)

// startSnapshotAPI is the API server's post-start hook that installs the
// volume snapshot API (snapshot.storage.k8s.io/v1, upstream's
// CustomResourceDefinitions) and, once the crd controller has established
// it, the default VolumeSnapshotClass. It returns once the definitions are
// written; the class is created in the background for as long as ctx
// lasts.
func startSnapshotAPI(ctx context.Context, cfg *rest.Config) error {
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	snaps, err := snapshotclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := snapshotapi.InstallDefinitions(ctx, ext); err != nil {
		return fmt.Errorf("volume snapshot API: %w", err)
	}
	go func() {
		if err := snapshotapi.EnsureDefaultClass(ctx, snaps); err != nil && ctx.Err() == nil {
			slog.Error("volume snapshot API", "err", err)
		}
	}()
	return nil
}
