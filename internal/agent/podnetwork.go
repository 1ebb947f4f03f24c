package agent

import (
	"fmt"
	"github.com/google/nftables"
	"net/netip"

	"github.com/havre/havre/internal/network/podnet"
)

// bridge is the name of the pods' bridge.
func (a *Agent) bridge() string {
	if a.opts.CNIBridge != "" {
		return a.opts.CNIBridge
	}
	return podnet.DefaultBridge
}

// The cluster's ranges unless configured (the server's defaults).
const (
	DefaultClusterCIDR = "10.42.0.0/16"
	DefaultServiceCIDR = "10.43.0.0/16"
)

func (a *Agent) clusterCIDR() string {
	if a.opts.ClusterCIDR != "" {
		return a.opts.ClusterCIDR
	}
	return DefaultClusterCIDR
}

// setUpPodNetwork makes the node's bridge what the pod CIDR wants (the
// agent owns it: an address an earlier run left is replaced) and writes
// the CNI configuration (force: even if unchanged), and masquerades what
// leaves the cluster's pod network. It reports whether the
// configuration was written.
func (a *Agent) setUpPodNetwork(cidr string, force bool) (bool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	if err := podnet.SetSysctls(); err != nil {
		return false, err
	}
	if err := podnet.EnsureBridge(nil, a.bridge(), podnet.Gateway(prefix), 0); err != nil {
		return false, err
	}
	cluster, err := netip.ParsePrefix(a.clusterCIDR())
	if err != nil {
		return false, fmt.Errorf("cluster CIDR %q: %w", a.clusterCIDR(), err)
	}
	conn, err := nftables.New()
	if err != nil {
		return false, err
	}
	defer conn.CloseLasting()
	if err := podnet.EnsureMasquerade(conn, podnet.MasqueradeTable(a.bridge()), cluster); err != nil {
		return false, err
	}
	return podnet.WriteConfig(a.dirs.cniConf, a.dirs.cniIPAM, prefix, a.bridge(), 0, force)
}

// networkTables are the nftables tables (family ip) the agent of a bridge
// owns: the service proxy's, named after the bridge, and the masquerading.
func networkTables(bridge string) []string {
	return []string{bridge, podnet.MasqueradeTable(bridge)}
}
