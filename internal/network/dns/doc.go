// Package dns is the cluster DNS server every Havre node agent runs, next to
// its pods ("node-local by construction": no DaemonSet, no CoreDNS).
//
// It answers the Kubernetes DNS specification (kubernetes/dns
// docs/specification.md, schema 1.1.0) for the cluster domain from Service
// and EndpointSlice informers: Service A/AAAA, SRV for named ports, headless
// Services (endpoint addresses, hostnames, dashed-IP names), ExternalName
// CNAMEs, PTR for ClusterIPs and headless endpoints, pod names
// (a-b-c-d.<ns>.pod.<domain>, CoreDNS's "pods insecure") and the
// dns-version TXT record. Everything else is forwarded to the node's
// upstream resolvers through a cache. Queries for
// <name>.<pod namespace>.svc.<domain> that name no Service are completed on
// the server along the pod's search path (CoreDNS's autopath), so a pod's
// ndots:5 fan-out costs one round trip.
//
// The records live in an index kept up to date incrementally from informer
// events: an event touches the records of its own Service only, and a
// query reads the index under a read lock. Answers to cluster names are
// never cached outside the index, so an informer event changes them at
// once.
//
// What it must never do: answer for names outside the cluster domain from
// its own data (other than PTR for cluster addresses), forward a query to
// itself (an upstream that is one of its own listen addresses is refused,
// and a forwarding loop detected at start stops forwarding), write to the
// API, or send traffic anywhere but its clients and the configured
// upstreams.
package dns
