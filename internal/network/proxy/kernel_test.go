package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

func typesNN(ns, n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }

// nftTable is the part of `nft -j list table` the tests read.
type nftTable struct {
	chains map[string]bool
	sets   map[string][]string // set name → elements as JSON text
	rules  map[string][]string // chain → rule expressions as JSON text
}

func parseNftJSON(t testing.TB, out []byte) *nftTable {
	t.Helper()
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output does not parse: %v\n%s", err, out)
	}
	nt := &nftTable{chains: map[string]bool{}, sets: map[string][]string{}, rules: map[string][]string{}}
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			switch kind {
			case "chain":
				var c struct{ Name string }
				_ = json.Unmarshal(raw, &c)
				nt.chains[c.Name] = true
			case "set", "map":
				var s struct {
					Name string
					Elem []json.RawMessage
				}
				_ = json.Unmarshal(raw, &s)
				nt.sets[s.Name] = []string{}
				for _, e := range s.Elem {
					nt.sets[s.Name] = append(nt.sets[s.Name], string(e))
				}
			case "rule":
				var r struct {
					Chain string
					Expr  json.RawMessage
				}
				_ = json.Unmarshal(raw, &r)
				nt.rules[r.Chain] = append(nt.rules[r.Chain], string(r.Expr))
			}
		}
	}
	return nt
}

func (nt *nftTable) hasElem(set string, parts ...string) bool {
	for _, e := range nt.sets[set] {
		ok := true
		for _, p := range parts {
			if !strings.Contains(e, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestKernelProgramsModel programs a model in a fresh netns, reads it back with nft, applies
// incremental changes and cleans up.
func TestKernelProgramsModel(t *testing.T) {
	ns := newNetns(t)
	bc := testBuildConfig()
	services := []*v1.Service{
		svc("default", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 30080), typ(v1.ServiceTypeNodePort), affinity(60)),
		svc("default", "dns", "10.43.0.30", port("dns", v1.ProtocolUDP, 53, 0), port("dns-tcp", v1.ProtocolTCP, 53, 0)),
		svc("default", "empty", "10.43.0.40", port("http", v1.ProtocolTCP, 80, 0)),
	}
	slices := []*discovery.EndpointSlice{
		slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5"), ep("10.42.1.6", onNode("node-b"))),
		slice("default", "dns", "dns-1", []slicePort{udp("dns", 53), tcp("dns-tcp", 53)}, ep("10.42.0.7")),
	}
	m := Build(bc, services, slices)
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	ks, err := k.read()
	if err != nil {
		t.Fatal(err)
	}
	if ks.exists {
		t.Fatal("fresh netns already has the table")
	}
	p, err := reconcile(ks, m.fragments())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.apply(p, m.setDefs(), true); err != nil {
		t.Fatalf("apply: %v", err)
	}
	out, err := nftJSON(t, ns, bc.Table)
	if err != nil {
		t.Fatalf("nft list: %v", err)
	}
	nt := parseNftJSON(t, out)
	webChain := prefixed("service", "default/web/tcp/http")
	for _, c := range []string{chainServices, chainFilterForward, chainNATPostrouting, webChain,
		prefixed("external", "default/web/tcp/http"),
		prefixed("endpoint", "default/web/tcp/http__10.42.0.5/8080"),
		prefixed("endpoint", "default/dns/udp/dns__10.42.0.7/53")} {
		if !nt.chains[c] {
			t.Errorf("chain %s missing; have %v", c, nt.chains)
		}
	}
	if !nt.hasElem(mapServiceIPs, "10.43.0.20", "80", webChain) {
		t.Errorf("service-ips lacks 10.43.0.20 . tcp . 80: %v", nt.sets[mapServiceIPs])
	}
	if !nt.hasElem(mapNoEndpointServices, "10.43.0.40", chainReject) {
		t.Errorf("no-endpoint-services lacks 10.43.0.40: %v", nt.sets[mapNoEndpointServices])
	}
	if !nt.hasElem(mapServiceNodePorts, "30080") {
		t.Errorf("service-nodeports lacks 30080: %v", nt.sets[mapServiceNodePorts])
	}
	if _, ok := nt.sets[prefixed("affinity", "default/web/tcp/http__10.42.0.5/8080")]; !ok {
		t.Errorf("affinity set missing: %v", nt.sets)
	}
	if len(nt.rules[webChain]) == 0 || !strings.Contains(strings.Join(nt.rules[webChain], ""), "numgen") {
		t.Errorf("service chain rules: %v", nt.rules[webChain])
	}

	// Incremental: the empty service gets an endpoint, web loses one, dns goes away.
	services2 := []*v1.Service{services[0], services[2]}
	slices2 := []*discovery.EndpointSlice{
		slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5")),
		slice("default", "empty", "empty-1", []slicePort{tcp("http", 80)}, ep("10.42.0.9")),
	}
	m2 := Build(bc, services2, slices2)
	p2 := &plan{}
	for _, name := range []types.NamespacedName{typesNN("default", "web"), typesNN("default", "dns"), typesNN("default", "empty")} {
		if err := p2.diff(m.Services[name], m2.Services[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.apply(p2, m2.setDefs(), false); err != nil {
		t.Fatalf("incremental apply: %v", err)
	}
	out, err = nftJSON(t, ns, bc.Table)
	if err != nil {
		t.Fatalf("nft list: %v", err)
	}
	nt = parseNftJSON(t, out)
	if nt.chains[prefixed("endpoint", "default/web/tcp/http__10.42.1.6/8080")] {
		t.Error("removed endpoint's chain still there")
	}
	if nt.chains[prefixed("service", "default/dns/udp/dns")] || nt.hasElem(mapServiceIPs, "10.43.0.30") {
		t.Error("removed service still programmed")
	}
	if nt.hasElem(mapNoEndpointServices, "10.43.0.40") || !nt.hasElem(mapServiceIPs, "10.43.0.40", prefixed("service", "default/empty/tcp/http")) {
		t.Errorf("service that gained an endpoint: service-ips %v, no-endpoint-services %v", nt.sets[mapServiceIPs], nt.sets[mapNoEndpointServices])
	}

	// A restart reconciles against what the kernel holds.
	ks, err = k.read()
	if err != nil {
		t.Fatal(err)
	}
	if !ks.exists || !ks.chains[webChain] || !ks.elems[elemID{mapServiceIPs, Key{netipMust("10.43.0.20"), ProtoTCP, 80}}] {
		t.Fatalf("read back: %+v", ks)
	}
	p3, err := reconcile(ks, m2.fragments())
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.addChains) != 0 || len(p3.delChains) != 0 || len(p3.addElems) != 0 || len(p3.delElems) != 0 {
		t.Errorf("reconcile of an up-to-date table adds or removes: %s", p3)
	}
	if err := k.apply(p3, m2.setDefs(), true); err != nil {
		t.Fatalf("reconcile apply: %v", err)
	}

	if err := cleanup(bc.Table, int(ns)); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if _, err := nftJSON(t, ns, bc.Table); err == nil {
		t.Error("table still listed after Cleanup")
	}
	if err := cleanup(bc.Table, int(ns)); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}
