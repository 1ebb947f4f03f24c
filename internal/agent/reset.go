package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/nftables"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/runtime"
	"github.com/havre/havre/internal/mountinfo"
	"github.com/havre/havre/internal/network/netpol"
	"github.com/havre/havre/internal/network/overlay"
	"github.com/havre/havre/internal/network/podnet"
	"github.com/havre/havre/internal/network/proxy"
)

// Reset tears a node down: it starts the agent's containerd (from the
// configuration the agent wrote) if it is not running, stops and removes
// every pod sandbox the agent created, stops that containerd and kills the
// shims it left (those of sandboxes it no longer listed), unmounts
// whatever is still mounted under <dataDir>/agent, and removes the node's
// network: the overlay device and routes, the pod bridge (its routes go
// with it) and the agent's nftables tables (service proxy, network
// policies, masquerading). The agent must not be running.
// Images and files stay; removing the directory is the caller's choice.
func Reset(ctx context.Context, dataDir, containerdBinary string) error {
	dirs := newLayout(dataDir)
	l := runtime.Layout{Dir: dirs.containerd}
	if _, err := os.Stat(l.Config()); errors.Is(err, os.ErrNotExist) {
		return errors.Join(mountinfo.UnmountBelow(dirs.root), removeNetwork(dirs))
	}
	if answers(ctx, l.Socket()) {
		return fmt.Errorf("the agent's containerd answers on %s: stop the agent (havre server or havre agent) first", l.Socket())
	}
	c, _, err := runtime.RestartContainerd(ctx, l, containerdBinary)
	if err != nil {
		return fmt.Errorf("starting containerd to remove the pods: %w", err)
	}
	removeErr := removeAllSandboxes(ctx, c.Endpoint())
	c.Stop()
	if n, err := runtime.KillShims(l.Socket()); err != nil {
		removeErr = errors.Join(removeErr, err)
	} else if n > 0 {
		slog.Info("killed containerd shims left without a sandbox", "shims", n)
	}
	return errors.Join(removeErr, mountinfo.UnmountBelow(dirs.root), removeNetwork(dirs))
}

// removeNetwork removes the node's nftables tables and pod bridge, named by
// the CNI configuration the agent wrote (nothing if it wrote none).
func removeNetwork(dirs layout) error {
	bridge, ok := podnet.ConfiguredBridge(dirs.cniConf)
	if !ok {
		return nil
	}
	var errs []error
	if err := proxy.Cleanup(bridge); err != nil {
		errs = append(errs, fmt.Errorf("removing the service proxy's nftables tables: %w", err))
	}
	if err := netpol.Cleanup(netpolTable(bridge)); err != nil {
		errs = append(errs, fmt.Errorf("removing the network policies' nftables table: %w", err))
	}
	if err := removeTable(podnet.MasqueradeTable(bridge)); err != nil {
		errs = append(errs, fmt.Errorf("removing the nftables table %s: %w", podnet.MasqueradeTable(bridge), err))
	}
	if err := overlay.Cleanup(nil, overlayDevice(bridge)); err != nil {
		errs = append(errs, fmt.Errorf("removing the pod network across nodes: %w", err))
	}
	if err := podnet.RemoveBridge(nil, bridge); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		slog.Info("removed the node's network", "bridge", bridge)
	}
	return errors.Join(errs...)
}

func removeTable(table string) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	return podnet.RemoveTable(conn, table)
}

// answers reports whether a CRI runtime answers on socket.
func answers(ctx context.Context, socket string) bool {
	if _, err := os.Stat(socket); err != nil {
		return false
	}
	cri, err := runtime.Dial(socket)
	if err != nil {
		return false
	}
	defer cri.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = cri.Version(ctx)
	return err == nil
}

func removeAllSandboxes(ctx context.Context, endpoint string) error {
	cri, err := runtime.Dial(endpoint)
	if err != nil {
		return err
	}
	defer cri.Close()
	if _, err := cri.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	sandboxes, err := cri.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManagedBy: managedBy}})
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range sandboxes {
		if err := cri.StopPodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := cri.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, err)
			continue
		}
		removePodCgroups(types.UID(s.Labels[labelPodUID]))
	}
	for _, dir := range ownCgroupDirs() {
		for _, d := range []string{"burstable", "besteffort", ""} {
			_ = os.Remove(filepath.Join(dir, cgroupRoot, d))
		}
	}
	slog.Info("removed the node's pods", "sandboxes", len(sandboxes))
	return errors.Join(errs...)
}
