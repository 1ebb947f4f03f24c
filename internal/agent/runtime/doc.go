// Package runtime manages the node's container runtime: it renders the
// configuration of a containerd private to the agent (its own root, state
// and socket under <data-dir>/agent/containerd, so a system containerd is
// never touched), supervises that containerd as a child process, and talks
// CRI to it (or to any CRI endpoint the operator names).
//
// It knows nothing of Kubernetes objects: translating pods into CRI calls is
// the agent's job. It must never signal or reconfigure a containerd it did
// not start, and never ask the runtime for negative OOM score adjustments.
package runtime
