package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/google/nftables"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/runtime"
	"github.com/havre/havre/internal/network/netpol"
	"github.com/havre/havre/internal/network/overlay"
	"github.com/havre/havre/internal/network/podnet"
	"github.com/havre/havre/internal/network/proxy"
)

// Reset tears a node down: it starts the agent's containerd (from the
// configuration the agent wrote) if it is not running, stops and removes
// every pod sandbox the agent created, stops that containerd, unmounts
// whatever is still mounted under <dataDir>/agent, and removes the node's
// network: the overlay device and routes, the pod bridge (its routes go
// with it) and the agent's nftables tables (service proxy, network policies, masquerading). The agent must not be running.
// Images and files stay; removing the directory is the caller's choice.
func Reset(ctx context.Context, dataDir, containerdBinary string) error {
	dirs := newLayout(dataDir)
	l := runtime.Layout{Dir: dirs.containerd}
	if _, err := os.Stat(l.Config()); errors.Is(err, os.ErrNotExist) {
		return errors.Join(unmountUnder(dirs.root), removeNetwork(dirs))
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
	return errors.Join(removeErr, unmountUnder(dirs.root), removeNetwork(dirs))
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

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if strings.HasPrefix(p, prefix) {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
