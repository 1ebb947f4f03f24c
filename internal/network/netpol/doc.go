// Package netpol enforces networking.k8s.io/v1 NetworkPolicy on one node: every node agent
// runs a Policer for the pods on its node. It keeps a table of its own (family ip, named by
// the agent, e.g. "havre0-netpol") in step with Pod, Namespace and NetworkPolicy informers,
// through nftables over netlink (internal/network/nft).
//
// # What it enforces
//
// NetworkPolicy as the API specifies it: ingress and egress rules; podSelector,
// namespaceSelector and both in one peer; ipBlock with except; numbered ports, port ranges
// (endPort), protocol-only ports and named ports (resolved on each destination pod's
// container ports); TCP, UDP and SCTP; policyTypes and their defaulting (Ingress always,
// Egress when the policy has egress rules); default deny (a policy that selects a pod for a
// direction and has no rule for it); policies are additive, and a pod no policy selects for
// a direction is unrestricted in it. Traffic from the node itself to its pods is always
// allowed (kubelet probes; it never crosses the forward hook); packets of connections
// conntrack already accepted, and related ones, are allowed. Host-network pods are not
// policed and are nobody's peer. A pod's traffic to the node's cluster DNS server (Config.DNS)
// is allowed whatever its egress policies say: Havre serves cluster DNS from the node, not
// from pods a policy could select.
//
// # The table
//
// Three base chains, at hooks that come after the service proxy's DNAT (prerouting, nat,
// priority dstnat -100), so that Service traffic is checked against the real pod address
// and port: egress-forward and egress-input (filter, priority 0) check what this node's pods
// send, ingress-forward (filter, priority 1) what they receive. Each dispatches on the pod's
// address with a verdict map (egress-pods, ingress-pods): accept for a pod no policy selects
// in that direction, else a goto to the chain of the exact set of policies that select it
// (pod-<dir>-HASH), which jumps to each policy's chain (policy-<dir>-HASH-ns/name; a rule
// there accepts) and drops what none accepted. A rule's pod and namespace selector peers
// are a set of pod addresses (peers-HASH), shared by every rule with the same peers and
// kept from the informers; ipBlocks and numbered ports are matches in the rule; named ports
// are a set of address . protocol . port. So a pod that comes, goes or changes labels, and a
// namespace that changes labels, is an element change (no rule is rewritten, the kernel
// does not revalidate the table); a policy change rewrites that policy's chains.
//
// A policy selecting none of this node's pods has nothing in the table.
//
// # No window at start
//
// An address of this node's pod network (Config.PodCIDR) that is not a classified pod's is
// dropped, to and from. An address is classified once the agent has told the Policer
// (PodStarting) and the pod's rules are committed, or once the informer shows the pod on this
// node with that address. The agent calls PodStarting after a sandbox has its addresses and
// before it starts any container, and waits for it: a pod that a default-deny policy selects
// is never reachable, not even before its rules exist.
//
// # What it must never do
//
// Touch any table but its own, shell out to nft or iptables, list the kernel's ruleset on
// the hot path (it reads its table at start and after a failed sync only), or tear its table
// down when it stops: policies stay enforced across an agent restart, and the next start
// reconciles. Only Cleanup removes the table.
package netpol
