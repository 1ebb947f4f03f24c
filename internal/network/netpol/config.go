package netpol

import (
	"net/netip"

	"k8s.io/utils/clock"
)

// Config is what a node's Policer is built from.
type Config struct {
	// Table is the nftables table (family ip) the Policer owns: the agent passes
	// "<bridge>-netpol".
	Table string
	// NodeName is this node: its pods are those whose spec.nodeName it is, and those
	// PodStarting tells of.
	NodeName string
	// PodCIDR is this node's pod network (node.spec.podCIDR). Traffic to or from an address of
	// it that is no classified pod's is dropped (see the package documentation). Required.
	PodCIDR netip.Prefix
	// Gateway is the bridge's address, in PodCIDR: the node's own, never a pod's.
	Gateway netip.Addr
	// DNS is the node's cluster DNS server (the bridge's address): this node's pods reach
	// it on port 53 (UDP and TCP) whatever their egress policies say. Zero: it is policed
	// like any destination.
	DNS netip.Addr
	// Clock is the clock retries are measured on (fake in tests).
	Clock clock.Clock
}
