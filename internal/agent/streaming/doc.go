// Package streaming is the node agent's streaming server, the part of the
// kubelet's API the API server proxies to: container logs, exec, attach and
// port-forward.
//
// Exec, attach and port-forward go through CRI: the runtime answers
// Exec/Attach/PortForward with the URL of its own streaming server, and this
// server either proxies the client's upgraded connection to it unchanged
// (SPDY, which every runtime speaks) or translates: WebSocket
// v5.channel.k8s.io (what current kubectl uses for exec and attach) to SPDY,
// and SPDY tunnelled in WebSocket (kubectl port-forward) to SPDY, as
// kube-apiserver's stream translator and tunnelling handlers do.
//
// Logs are read from the CRI log files the runtime writes.
package streaming
