// Package prober runs the kubelet's container probes for Havre's node
// agent: liveness, readiness and startup probes with httpGet, tcpSocket,
// exec and grpc handlers, on a worker per container and probe, honouring
// initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
// failureThreshold as the kubelet does.
//
// The agent tells the Manager what runs (UpdatePod) and reads the results
// back (Result); the Manager calls the agent back when a result changes, so
// that the pod is synced again: its containers' ready and started fields
// rewritten, or a container that failed its liveness or startup probe
// killed. The handlers' building blocks (HTTPGet requests, port
// resolution, Exec) are shared with the agent's lifecycle hooks.
package prober
