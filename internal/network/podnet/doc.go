// Package podnet sets up a node's pod network: the bridge the node agent
// owns (its address, MTU and state reconciled at every start, whatever an
// earlier run left), and the CNI configuration the agent's containerd uses
// to attach pods to it.
//
// It never touches links it does not own: only the one bridge it is named.
package podnet
