package proxy

import (
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Config is what a node's proxy is built from.
type Config struct {
	// Table is the nftables table name in family ip: the agent passes its bridge name.
	Table    string
	NodeName string
	// NodeIPs are the node's addresses: NodePorts answer on these only; health-check node
	// ports listen on them.
	NodeIPs []netip.Addr
	// ClusterCIDR is the pod network of the whole cluster: ClusterIP traffic from outside
	// it is masqueraded (kube-proxy --cluster-cidr).
	ClusterCIDR netip.Prefix
	// ServiceCIDRs: traffic to unallocated ClusterIPs in these is dropped.
	ServiceCIDRs []netip.Prefix
	// LocalDNS is the kube-dns Service: its ClusterIP:53 (UDP and TCP) goes to Addr:Port on
	// this node instead of to endpoints.
	LocalDNS *LocalService
	// MinSyncPeriod coalesces changes: syncs are at least this far apart.
	MinSyncPeriod time.Duration
	// Shards is how many shard tables (Table-s00, Table-s01, ...) Services are spread over;
	// 0 means DefaultShards. See the package documentation for why.
	Shards int
	// Clock is the clock MinSyncPeriod and retries are measured on (fake in tests).
	Clock clock.Clock
}

// LocalService sends a Service's DNS port to a server on this node.
type LocalService struct {
	Service types.NamespacedName
	Addr    netip.Addr
	Port    uint16
}
