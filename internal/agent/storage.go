package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"

	"github.com/havre/havre/internal/volume/local"
	"github.com/havre/havre/internal/volume/provisioner"
	"github.com/havre/havre/internal/volume/snapshotter"
)

// DefaultVolumeBacking is --volume-backing's default: btrfs or xfs when
// the volumes directory is on one, else plain directories.
const DefaultVolumeBacking = "auto"

// VolumesDir is where a node keeps its local volumes: dir, else
// <dataDir>/volumes.
func VolumesDir(dataDir, dir string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join(dataDir, "volumes")
}

// openVolumes makes the node's volume backing (before anything else of
// the agent starts: a wrong --volume-backing stops it) and mounts the
// volumes that need it again after a restart.
func (a *Agent) openVolumes(ctx context.Context) error {
	dir := VolumesDir(a.opts.DataDir, a.opts.VolumesDir)
	want := a.opts.VolumeBacking
	if want == "" {
		want = DefaultVolumeBacking
	}
	b, err := local.Detect(dir, want)
	if err != nil {
		return fmt.Errorf("local volumes: %w", err)
	}
	if err := local.Reattach(ctx, b); err != nil {
		return fmt.Errorf("local volumes: mounting the volumes again: %w", err)
	}
	a.backing = b
	// Stats of the volumes the backing holds come from it (quota groups,
	// project quotas, loop filesystems know their own figures).
	a.volumeUsage = func(ctx context.Context, pv string) (int64, int64, bool) {
		if _, err := os.Stat(b.Path(pv)); err != nil {
			return 0, 0, false
		}
		used, capacity, err := b.Usage(ctx, pv)
		return used, capacity, err == nil
	}
	if !b.EnforcesSize() {
		slog.Warn("local volumes do not enforce their sizes here: give --volumes-dir a btrfs or xfs (prjquota) filesystem, or pass --volume-backing loop",
			"dir", dir, "backing", b.Kind())
	} else {
		slog.Info("local volumes", "dir", dir, "backing", b.Kind())
	}
	return nil
}

// VolumeBacking is how this node keeps its local volumes (nil before the
// agent opened them): the provisioner's, and the snapshotter's to use.
func (a *Agent) VolumeBacking() local.Backing { return a.backing }

// startStorage starts the provisioner of the node's local volumes
// (havre.io/local): it provisions the claims the scheduler placed here,
// deletes and grows this node's volumes and publishes its capacity; and
// the snapshotter, which takes and deletes the snapshots of this node's
// volumes.
func (a *Agent) startStorage(ctx context.Context, wg *sync.WaitGroup, cfg *rest.Config) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(a.client, 0)
	p, err := provisioner.New(provisioner.Options{
		Client: a.client, Dynamic: dyn, NodeName: a.nodeName, Backing: a.backing,
	}, factory)
	if err != nil {
		return err
	}
	snaps, err := snapshotclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	sn, err := snapshotter.New(snapshotter.Config{Client: a.client, Snapshots: snaps, NodeName: a.nodeName, Backing: a.backing})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.Run(ctx)
		factory.Shutdown()
	}()
	go func() {
		defer wg.Done()
		sn.Run(ctx)
	}()
	return nil
}

// ResetVolumes unmounts the node's loop-mounted volumes under dir (their
// loop devices go with them; the images stay, and the next agent mounts
// them again). The agent must not be running.
func ResetVolumes(dir string) error {
	if err := local.Unmount(dir); err != nil {
		return fmt.Errorf("unmounting the local volumes: %w", err)
	}
	return nil
}
