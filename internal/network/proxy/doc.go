// Package proxy is Havre's service proxy: every node agent runs one. It turns Services and
// EndpointSlices into an nftables table of its own (family ip, named after the agent's
// bridge) programmed over netlink, following kube-proxy's nftables mode in behaviour and
// layout: verdict-map dispatch on destination address, protocol and port, per-service and
// per-endpoint chains, random load balancing, masquerading by mark, ClientIP affinity,
// traffic policies, topology hints, health-check node ports and UDP conntrack cleanup.
//
// The rules are first built as a plain Go model (model.go, build.go), a pure function of the
// inputs, that renders to nft text (golden tests, humans), compiles to netlink expressions
// (kernel.go) and can be walked by a packet tracer (trace.go). Syncs are incremental: only
// the difference to the committed model is sent, in bounded transactions.
//
// The proxy must never touch any table but its own, never shell out to nft or iptables, never
// list the kernel's ruleset on the hot path, and never tear the table down when it stops:
// traffic keeps flowing across an agent restart. Only Cleanup removes the table.
package proxy
