// Package agent is Havre's node agent (the kubelet's role): it registers
// the Node and keeps its status and Lease fresh, gives the node's
// containerd a CNI network from the node's pod CIDR, and runs the pods
// bound to the node through CRI — sandboxes, init containers, containers,
// restarts with back-off, image pulls, graceful termination — writing their
// status and Events back to the API. Containers are probed (package prober:
// liveness, readiness, startup) and get their postStart and preStop hooks;
// configMap, secret, downwardAPI and projected volumes follow their sources
// (atomic_writer.go, objects.go); persistentVolumeClaim and generic
// ephemeral volumes wait for their claim to be bound and mount its
// PersistentVolume's directory (volumes_claims.go, package volumes, which
// also resolves subPaths safely and applies the fsGroup); resource usage is
// sampled from the runtime and claim volumes are measured (Agent.Stats).
//
// It is a client of the API only and never touches the store. It keeps no
// state of its own on disk that matters: what runs is read back from the
// runtime (sandboxes and containers carry the pod's UID as a label), so a
// restarted agent adopts running pods instead of killing them. It must
// never touch containers it did not create (those without the pod labels),
// nor ask the runtime for negative OOM score adjustments.
package agent
