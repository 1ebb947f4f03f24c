// Package proxy is Havre's service proxy: every node agent runs one. It turns Services and
// EndpointSlices into nftables tables of its own (family ip, named after the agent's bridge)
// programmed over netlink, following kube-proxy's nftables mode in behaviour and rules:
// verdict-map dispatch on destination address, protocol and port, per-service and
// per-endpoint chains, random load balancing, masquerading by mark, ClientIP affinity,
// traffic policies, topology hints, health-check node ports and UDP conntrack cleanup.
//
// The rules are first built as a plain Go model (model.go, build.go, in the vocabulary of
// internal/network/nft), a pure function of the inputs, that renders to nft text (golden
// tests, humans), is encoded into netlink messages (nft.Conn) and can be walked by a packet
// tracer (nft.Tracer, trace.go). Syncs are incremental: only the difference to the committed
// model is sent, in bounded transactions.
//
// # Layout: a main table and shards
//
// Where kube-proxy has one table, the proxy has a main table T (the bridge's name) and
// Shards shard tables T-s00, T-s01, ... (DefaultShards, Config.Shards). A Service lives in
// the shard that FNV-1a of "namespace/name" picks, stable across restarts:
//
//   - a shard holds the NAT base chains nat-prerouting and nat-output (priority -100), which
//     jump to its services chain: its service-ips and service-nodeports verdict maps, the
//     chains and affinity sets of its Services, and its own copies of nodeport-ips and
//     mark-for-masquerade;
//   - the main table holds what all Services share: the filter base chains (priorities -110
//     and -90) that reject traffic to Services without endpoints (no-endpoint-services,
//     no-endpoint-nodeports, reject-chain) and to invalid ports of ClusterIPs and drop traffic
//     to unallocated ClusterIPs (cluster-ips-check, over every Service's ClusterIP), and
//     nat-postrouting, which masquerades what any shard marked.
//
// Each dispatch key (address, protocol, port; node port) is in one shard's maps only (a key
// two Services claim goes to the first, as before), so at most one shard's NAT chain
// translates a connection; the kernel consults no NAT chain of the hook after one has. A
// packet no shard dispatches meets the main table's checks exactly as in a single table.
//
// Why: nf_tables validates a table at a commit that added a rule with a validate operation
// (any verdict, jump, nat, reject, ...) or a verdict-map element that jumps or goes to a
// chain, and validation walks the whole jump graph of every base chain of that table. With
// 10,000 Services in one table that was 60 ms per commit however small the change (measured:
// BenchmarkCommitValidation); a commit now validates only the shards it touched (and the
// small main table, when a no-endpoint verdict changed). The price is paid per new
// connection: the first packet of every connection of the node, to a Service or not, passes
// through each shard's NAT base chain, ~0.5-0.8 µs each on the 2-core test machine
// (BenchmarkFirstPacket, shards-µs). A sync sends the main table's additions, then the
// shards' changes, then the main table's removals, so that a Service moving between "no
// endpoints" (main table) and "endpoints" (its shard) is at every instant in one or both.
//
// The proxy writes with nf_tables batches of Havre's own (internal/network/nft), which ask
// the kernel for one acknowledgement per transaction instead of one per message and an echo
// per rule as google/nftables v0.3.0 does; google/nftables marshals the rule expressions and
// reads the tables back.
//
// The proxy must never touch any table but its own, never shell out to nft or iptables, never
// list the kernel's ruleset on the hot path (it reads its tables once, at start or after a
// failed sync), and never tear its tables down when it stops: traffic keeps flowing across an
// agent restart, and the next start reconciles, whatever the shard count was (or the
// single-table layout before it). Only Cleanup removes the tables, all of them.
package proxy
