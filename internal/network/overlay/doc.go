// Package overlay is the pod network across nodes that every node agent
// runs: each node's pods live on its own bridge with the node's pod CIDR,
// and this package makes the other nodes' pod CIDRs reachable, with the
// semantics of flannel's vxlan backend, programmed over netlink.
//
// # What is in the kernel
//
// One VXLAN device per node (VNI 1, UDP port 8472, learning off, local
// address the node's IP, bound to the uplink, MTU the uplink's − 50). The
// device carries the node's VTEP address: the network address of its pod
// CIDR as a /32 (10.42.3.0/32 for 10.42.3.0/24), as flannel does. The
// address is never a pod's (host-local IPAM never hands out a range's
// network address; the bridge has .1); it
// gives traffic the node itself sends into the overlay a source address
// that every peer routes back through the overlay, and it needs nothing
// else on the node (routes with a preferred source on the bridge would
// depend on the bridge's address and vanish with it). The device's MAC is
// derived from the node's IP (VTEPMAC), so peers know it from the Node
// object alone. For every other node with a pod CIDR and an InternalIP:
//
//	route   <peer pod CIDR> via <peer VTEP> dev <vxlan> onlink proto 72
//	neigh   <peer VTEP> lladdr <peer VTEP MAC> dev <vxlan> PERMANENT
//	fdb     <peer VTEP MAC> dst <peer node IP> dev <vxlan> self permanent
//
// or, routed directly (flannel's DirectRouting: ModeDirect, or ModeAuto for
// a peer on the uplink's own subnet), only
//
//	route   <peer pod CIDR> via <peer node IP> dev <uplink> proto 72
//
// # Reconciling
//
// The kernel is the only record: every pass reads the device, the routes
// the overlay owns (every main-table route through the device, and any
// route of protocol RouteProtocol), the device's neighbours and its
// forwarding database, diffs them against what the Node informer wants
// and writes only the difference, so an agent that restarts changes
// nothing that is already right and established flows never notice. A
// pass runs when a Node's pod CIDRs or InternalIP change, and every
// Config.ResyncPeriod, which repairs what someone else damaged.
//
// # What it must never do
//
// Touch links, routes or neighbours it does not own: it owns its device
// (by name; everything on it) and the routes of protocol RouteProtocol,
// of which there is one set per network namespace (a VXLAN port is too).
// It never tears the network down when Run returns: only Cleanup (havre
// agent reset) does. It does no masquerading (podnet does) and never
// installs a route to its own node's pod CIDR.
package overlay
