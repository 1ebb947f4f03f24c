package proxy

import (
	"net/netip"

	"github.com/havre/havre/internal/network/nft"
)

// NewTracer is a packet tracer (nft.Tracer) for the model on a host whose own addresses are
// local: the node IPs (nodeport-ips) always are.
func NewTracer(m *Model, local ...netip.Addr) *nft.Tracer {
	local = append([]netip.Addr(nil), local...)
	for _, e := range m.ShardBase.Elements {
		if e.Set == setNodePortIPs {
			local = append(local, e.Key.Addr)
		}
	}
	for _, e := range m.Base.Elements {
		if e.Set == setNodePortIPs {
			local = append(local, e.Key.Addr)
		}
	}
	return nft.NewTracer(m.Tables(), local...)
}
