package proxy

import (
	"net/netip"
	"sort"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// endpoint is one address:port of a service port, as the EndpointSlices say.
type endpoint struct {
	addr        netip.Addr
	port        uint16
	ready       bool
	serving     bool
	terminating bool
	local       bool
	zoneHints   []string
	nodeHints   []string
}

func (e *endpoint) ap() netip.AddrPort { return netip.AddrPortFrom(e.addr, e.port) }

// endpointsFor collects the IPv4 endpoints of one service port from the service's slices,
// deduplicated by address and port, in address order.
func endpointsFor(slices []*discovery.EndpointSlice, sp *v1.ServicePort, nodeName string) []*endpoint {
	seen := map[netip.AddrPort]bool{}
	var out []*endpoint
	for _, s := range slices {
		if s.AddressType != discovery.AddressTypeIPv4 {
			continue
		}
		var port int32 = -1
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := v1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == sp.Protocol && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if len(ep.Addresses) == 0 {
				continue
			}
			addr, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !addr.Is4() {
				continue
			}
			ap := netip.AddrPortFrom(addr, uint16(port))
			if seen[ap] {
				continue
			}
			seen[ap] = true
			e := &endpoint{addr: addr, port: uint16(port)}
			c := ep.Conditions
			e.ready = c.Ready == nil || *c.Ready
			e.serving = e.ready
			if c.Serving != nil {
				e.serving = *c.Serving
			}
			e.terminating = c.Terminating != nil && *c.Terminating
			e.local = ep.NodeName != nil && *ep.NodeName == nodeName
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					e.zoneHints = append(e.zoneHints, z.Name)
				}
				for _, n := range ep.Hints.ForNodes {
					e.nodeHints = append(e.nodeHints, n.Name)
				}
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ap().Compare(out[j].ap()) < 0 })
	return out
}

type topologyMode uint8

const (
	topologyNone topologyMode = iota
	topologyZone
	topologyNode
)

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// topologyFromHints decides, as kube-proxy's topologyModeFromHints, whether the hints are used:
// only when every ready endpoint has them and some are for this node (or zone).
func topologyFromHints(eps []*endpoint, trafficDistribution *string, nodeName, zone string) topologyMode {
	allNode, forNode, allZone, forZone := true, false, true, false
	for _, e := range eps {
		if !e.ready {
			continue
		}
		if len(e.nodeHints) == 0 {
			allNode = false
		} else if has(e.nodeHints, nodeName) {
			forNode = true
		}
		if len(e.zoneHints) == 0 {
			allZone = false
		} else if has(e.zoneHints, zone) {
			forZone = true
		}
	}
	if trafficDistribution != nil && *trafficDistribution == v1.ServiceTrafficDistributionPreferSameNode && allNode && forNode {
		return topologyNode
	}
	if allZone && forZone && zone != "" {
		return topologyZone
	}
	return topologyNone
}

func (m topologyMode) allows(e *endpoint, nodeName, zone string) bool {
	switch m {
	case topologyZone:
		return has(e.zoneHints, zone)
	case topologyNode:
		return has(e.nodeHints, nodeName)
	}
	return true
}

func filterEps(eps []*endpoint, keep func(*endpoint) bool) []*endpoint {
	var out []*endpoint
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// categorize splits endpoints as kube-proxy's CategorizeEndpoints: the endpoints cluster-wide
// traffic may use (topology applied, terminating ones only when none is ready), the local
// ones, and whether the service has any usable endpoint at all.
func categorize(eps []*endpoint, useCluster, useLocal bool, trafficDistribution *string, nodeName, zone string) (cluster, local []*endpoint, hasAny bool) {
	if useCluster {
		mode := topologyFromHints(eps, trafficDistribution, nodeName, zone)
		cluster = filterEps(eps, func(e *endpoint) bool { return e.ready && mode.allows(e, nodeName, zone) })
		if len(cluster) == 0 {
			cluster = filterEps(eps, func(e *endpoint) bool { return e.serving && e.terminating && mode.allows(e, nodeName, zone) })
		}
	}
	if useLocal {
		local = filterEps(eps, func(e *endpoint) bool { return e.local && e.ready })
		if len(local) == 0 {
			local = filterEps(eps, func(e *endpoint) bool { return e.local && e.serving && e.terminating })
		}
	}
	for _, e := range eps {
		if e.ready || (e.serving && e.terminating) {
			hasAny = true
		}
	}
	return cluster, local, hasAny
}
