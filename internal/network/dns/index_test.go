package dns

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not an address
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"255.0.43.10.in-addr.arpa.", "10.43.0.255"},
		{"3.2.1.in-addr.arpa.", ""},
		{"5.4.3.2.1.in-addr.arpa.", ""},
		{"04.3.2.1.in-addr.arpa.", ""},
		{"256.3.2.1.in-addr.arpa.", ""},
		{"x.3.2.1.in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "::1"},
		{"0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", "fd00:43::50"},
		{"g.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", ""},
		{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", ""},
		{"example.com.", ""},
	}
	for _, tt := range tests {
		a, ok := parseReverse(tt.name)
		if tt.want == "" {
			if ok {
				t.Errorf("%s: parsed as %s, want not an address", tt.name, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tt.want) {
			t.Errorf("%s: %s %v, want %s", tt.name, a, ok, tt.want)
		}
	}
}

func TestUndash(t *testing.T) {
	tests := []struct {
		label, want string
	}{
		{"10-42-0-5", "10.42.0.5"},
		{"1-2-3-4", "1.2.3.4"},
		{"fd00-42--5", "fd00:42::5"},
		{"10-42-0", ""},
		{"10-42-0-256", ""},
		{"web", ""},
		{"", ""},
	}
	for _, tt := range tests {
		a, ok := undash(tt.label)
		if tt.want == "" {
			if ok {
				t.Errorf("%q: %s, want invalid", tt.label, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tt.want) {
			t.Errorf("%q: %s %v, want %s", tt.label, a, ok, tt.want)
		}
	}
}

// TestIndexIncremental drives the index through events and checks what
// each leaves behind, down to nothing.
func TestIndexIncremental(t *testing.T) {
	ix := newIndex("cluster.local.", 5, func() uint32 { return 100 })
	ports := []discoveryv1.EndpointPort{slicePort("web", v1.ProtocolTCP, 8080)}
	rev := func(ip string) []string { return ix.rev[netip.MustParseAddr(ip)] }
	serial := ix.serial.Load()

	// A slice before its Service: kept, no records.
	ix.upsertSlice(slice("ns", "hs", "hs-1", ports, ep{ip: "10.42.0.1", hostname: "a"}))
	if e := ix.entries[nsName{"ns", "hs"}]; e == nil || e.svc != nil || e.hl != nil || len(ix.rev) != 0 {
		t.Fatalf("slice without Service: %+v, rev %v", e, ix.rev)
	}
	if ix.serial.Load() <= serial {
		t.Errorf("SOA serial not advanced by a change")
	}
	ix.upsertService(headlessService("ns", "hs", port("web", v1.ProtocolTCP, 80)))
	if got := rev("10.42.0.1"); !slices.Equal(got, []string{"a.hs.ns.svc.cluster.local."}) {
		t.Fatalf("PTR after the Service came: %v", got)
	}
	// Headless → ClusterIP: endpoint PTRs go, the ClusterIP's comes.
	ix.upsertService(service("ns", "hs", "10.43.0.9"))
	if rev("10.42.0.1") != nil || !slices.Equal(rev("10.43.0.9"), []string{"hs.ns.svc.cluster.local."}) {
		t.Fatalf("after becoming ClusterIP: %v", ix.rev)
	}
	// Two Services share an address (headless endpoints of two Services).
	ix.upsertService(headlessService("ns", "hs", port("web", v1.ProtocolTCP, 80)))
	ix.upsertService(headlessService("ns", "other", port("web", v1.ProtocolTCP, 80)))
	ix.upsertSlice(slice("ns", "other", "other-1", ports, ep{ip: "10.42.0.1"}))
	if got := rev("10.42.0.1"); len(got) != 2 {
		t.Fatalf("shared address: %v", got)
	}
	// The slice's label moves it to another Service.
	ix.upsertSlice(slice("ns", "other", "hs-1", ports, ep{ip: "10.42.0.2", hostname: "b"}))
	if e := ix.entries[nsName{"ns", "hs"}]; e.hl != nil {
		t.Errorf("hs keeps endpoints of a slice that moved away: %+v", e.hl)
	}
	if got := rev("10.42.0.2"); !slices.Equal(got, []string{"b.other.ns.svc.cluster.local."}) {
		t.Errorf("moved slice's PTR: %v", got)
	}
	// Everything goes.
	ix.deleteSlice("ns", "hs-1")
	ix.deleteSlice("ns", "other-1")
	ix.deleteService("ns", "other")
	ix.deleteService("ns", "hs")
	ix.deleteService("ns", "never-existed")
	if len(ix.entries) != 0 || len(ix.rev) != 0 || len(ix.sliceOwner) != 0 || len(ix.nsServices) != 0 {
		t.Fatalf("left behind: entries %v rev %v owners %v ns %v", ix.entries, ix.rev, ix.sliceOwner, ix.nsServices)
	}
}
