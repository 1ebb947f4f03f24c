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

// setUpBridge makes the node's bridge what the pod CIDR and MTU want (the agent
// owns it: an address an earlier run left is replaced), sets the sysctls
// the pod network needs and masquerades what leaves the cluster's pod
// network. It returns the bridge's address.
func (a *Agent) setUpBridge(cidr string, mtu int) (netip.Addr, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	if err := podnet.SetSysctls(); err != nil {
		return netip.Addr{}, err
	}
	gateway := podnet.Gateway(prefix)
	if err := podnet.EnsureBridge(nil, a.bridge(), gateway, mtu); err != nil {
		return netip.Addr{}, err
	}
	cluster, err := netip.ParsePrefix(a.clusterCIDR())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cluster CIDR %q: %w", a.clusterCIDR(), err)
	}
	conn, err := nftables.New()
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.CloseLasting()
	if err := podnet.EnsureMasquerade(conn, podnet.MasqueradeTable(a.bridge()), cluster); err != nil {
		return netip.Addr{}, err
	}
	return gateway.Addr(), nil
}

// writeCNIConfig writes the CNI configuration for the pod CIDR (force:
// even if unchanged) and reports whether it wrote.
func (a *Agent) writeCNIConfig(cidr string, force bool) (bool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	return podnet.WriteConfig(a.dirs.cniConf, a.dirs.cniIPAM, prefix, a.bridge(), int(a.podMTU.Load()), force)
}
