package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

func typesNN(ns, n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }

// nftTable is the part of one table of `nft -j list ruleset` the tests read.
type nftTable struct {
	chains map[string]bool
	sets   map[string][]string // set name → elements as JSON text
	rules  map[string][]string // chain → rule expressions as JSON text
}

// parseNftJSON is the ruleset by table name.
func parseNftJSON(t testing.TB, out []byte) map[string]*nftTable {
	t.Helper()
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output does not parse: %v\n%s", err, out)
	}
	tables := map[string]*nftTable{}
	table := func(name string) *nftTable {
		if tables[name] == nil {
			tables[name] = &nftTable{chains: map[string]bool{}, sets: map[string][]string{}, rules: map[string][]string{}}
		}
		return tables[name]
	}
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			switch kind {
			case "table":
				var x struct{ Name string }
				_ = json.Unmarshal(raw, &x)
				table(x.Name)
			case "chain":
				var c struct{ Table, Name string }
				_ = json.Unmarshal(raw, &c)
				table(c.Table).chains[c.Name] = true
			case "set", "map":
				var s struct {
					Table, Name string
					Elem        []json.RawMessage
				}
				_ = json.Unmarshal(raw, &s)
				nt := table(s.Table)
				nt.sets[s.Name] = []string{}
				for _, e := range s.Elem {
					nt.sets[s.Name] = append(nt.sets[s.Name], string(e))
				}
			case "rule":
				var r struct {
					Table, Chain string
					Expr         json.RawMessage
				}
				_ = json.Unmarshal(raw, &r)
				nt := table(r.Table)
				nt.rules[r.Chain] = append(nt.rules[r.Chain], string(r.Expr))
			}
		}
	}
	return tables
}

func (nt *nftTable) hasElem(set string, parts ...string) bool {
	if nt == nil {
		return false
	}
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

// TestShardTables: shard names, recognised at any count, and Services spread over shards.
func TestShardTables(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"havre0-s00", true}, {"havre0-s15", true}, {"havre0-s99", true},
		{"havre0", false}, {"havre0-masq", false}, {"havre0-s1", false}, {"havre0-s100", false}, {"havre1-s00", false}, {"havre0-sx0", false},
	} {
		if got := isShardTable("havre0", tc.name); got != tc.want {
			t.Errorf("isShardTable(havre0, %s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := ShardTable("havre0", 7); got != "havre0-s07" || !isShardTable("havre0", got) {
		t.Errorf("ShardTable(havre0, 7) = %s", got)
	}
	counts := make([]int, DefaultShards)
	for i := range 10000 {
		counts[shardOf(typesNN("bench", "svc-"+strconv.Itoa(i)), DefaultShards)]++
	}
	for i, c := range counts {
		if c < 10000/DefaultShards*8/10 || c > 10000/DefaultShards*12/10 {
			t.Errorf("shard %d holds %d of 10000 Services: %v", i, c, counts)
		}
	}
}

// TestDispatchInOneShard: every dispatch key (address, protocol, port; node port) of a large
// model is in exactly one shard's maps, every Service's chains in its own shard only, and the
// main table holds every ClusterIP: so a packet is dispatched by at most one shard, and what
// no shard dispatches meets the main table's checks as before.
func TestDispatchInOneShard(t *testing.T) {
	bc := testBuildConfig()
	bc.Shards = DefaultShards
	svcs, slices := world(2000)
	svcs[7] = svc("bench", "svc-00007", svcs[7].Spec.ClusterIP, typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30007))
	m := Build(bc, svcs, slices)
	keys := map[nft.ElemID]string{}
	chains := map[string]string{}
	clusterIPs := 0
	for _, v := range m.tables() {
		for i, f := range v.frags {
			for _, e := range f.Elements {
				if e.Set != mapServiceIPs && e.Set != mapServiceNodePorts {
					continue
				}
				if other, ok := keys[e.ID()]; ok {
					t.Errorf("%s %s is in %s and in %s", e.Set, e.Key.Text(nft.KeyAddrProtoPort), other, v.name)
				}
				keys[e.ID()] = v.name
			}
			for _, c := range f.Chains {
				if i == 0 {
					continue // the skeleton's chains are in every shard
				}
				if other, ok := chains[c.Name]; ok {
					t.Errorf("chain %s is in %s and in %s", c.Name, other, v.name)
				}
				chains[c.Name] = v.name
			}
			if v.shard < 0 {
				for _, e := range f.Elements {
					if e.Set == setClusterIPs {
						clusterIPs++
					}
				}
			}
		}
	}
	if len(keys) != len(svcs)+1 || clusterIPs != len(svcs) {
		t.Errorf("%d dispatch keys and %d ClusterIPs in the main table, want %d and %d", len(keys), clusterIPs, len(svcs)+1, len(svcs))
	}
	if got := keys[nft.ElemID{Set: mapServiceNodePorts, Key: nft.Key{Proto: nft.ProtoTCP, Port: 30007}}]; got != ShardTable(bc.Table, shardOf(typesNN("bench", "svc-00007"), bc.Shards)) {
		t.Errorf("node port 30007 is in %q, not in its Service's shard", got)
	}
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
	shard := func(n string) string { return ShardTable(bc.Table, shardOf(typesNN("default", n), m.Shards)) }
	if shard("web") == shard("dns") && shard("dns") == shard("empty") {
		t.Fatal("the test's Services all hash to one shard: pick other names")
	}
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	ks, err := k.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 0 {
		t.Fatalf("fresh netns already has tables: %v", sortedTables(ks))
	}
	program(t, k, m)
	out, err := nftJSON(t, ns)
	if err != nil {
		t.Fatalf("nft list: %v", err)
	}
	tables := parseNftJSON(t, out)
	if len(tables) != 1+m.Shards {
		t.Errorf("tables: %d, want the main table and %d shards", len(tables), m.Shards)
	}
	main, web := tables[bc.Table], tables[shard("web")]
	if main == nil || web == nil {
		t.Fatalf("tables %s and %s missing", bc.Table, shard("web"))
	}
	for _, c := range []string{chainFilterForward, chainNATPostrouting, chainServiceEndpoints, chainReject} {
		if !main.chains[c] {
			t.Errorf("main table lacks chain %s", c)
		}
	}
	for i := range m.Shards {
		st := tables[ShardTable(bc.Table, i)]
		if st == nil || !st.chains[chainNATPrerouting] || !st.chains[chainNATOutput] || !st.chains[chainServices] || !st.hasElem(setNodePortIPs, testNodeIP.String()) {
			t.Errorf("shard %d lacks its skeleton", i)
		}
	}
	webChain := prefixed("service", "default/web/tcp/http")
	for _, c := range []string{webChain,
		prefixed("external", "default/web/tcp/http"),
		prefixed("endpoint", "default/web/tcp/http__10.42.0.5/8080")} {
		if !web.chains[c] {
			t.Errorf("chain %s missing in %s; have %v", c, shard("web"), web.chains)
		}
	}
	if !tables[shard("dns")].chains[prefixed("endpoint", "default/dns/udp/dns__10.42.0.7/53")] {
		t.Errorf("dns endpoint chain missing in %s", shard("dns"))
	}
	if !web.hasElem(mapServiceIPs, "10.43.0.20", "80", webChain) {
		t.Errorf("service-ips lacks 10.43.0.20 . tcp . 80: %v", web.sets[mapServiceIPs])
	}
	if !main.hasElem(setClusterIPs, "10.43.0.20") || !main.hasElem(setClusterIPs, "10.43.0.40") {
		t.Errorf("cluster-ips of the main table: %v", main.sets[setClusterIPs])
	}
	if !main.hasElem(mapNoEndpointServices, "10.43.0.40", chainReject) {
		t.Errorf("no-endpoint-services lacks 10.43.0.40: %v", main.sets[mapNoEndpointServices])
	}
	if !web.hasElem(mapServiceNodePorts, "30080") {
		t.Errorf("service-nodeports lacks 30080: %v", web.sets[mapServiceNodePorts])
	}
	if _, ok := web.sets[prefixed("affinity", "default/web/tcp/http__10.42.0.5/8080")]; !ok {
		t.Errorf("affinity set missing: %v", web.sets)
	}
	if len(web.rules[webChain]) == 0 || !strings.Contains(strings.Join(web.rules[webChain], ""), "numgen") {
		t.Errorf("service chain rules: %v", web.rules[webChain])
	}

	// Incremental: the empty service gets an endpoint, web loses one, dns goes away.
	services2 := []*v1.Service{services[0], services[2]}
	slices2 := []*discovery.EndpointSlice{
		slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5")),
		slice("default", "empty", "empty-1", []slicePort{tcp("http", 80)}, ep("10.42.0.9")),
	}
	m2 := Build(bc, services2, slices2)
	applyChange(t, k, m, m2, typesNN("default", "web"), typesNN("default", "dns"), typesNN("default", "empty"))
	out, err = nftJSON(t, ns)
	if err != nil {
		t.Fatalf("nft list: %v", err)
	}
	tables = parseNftJSON(t, out)
	main = tables[bc.Table]
	if tables[shard("web")].chains[prefixed("endpoint", "default/web/tcp/http__10.42.1.6/8080")] {
		t.Error("removed endpoint's chain still there")
	}
	if tables[shard("dns")].chains[prefixed("service", "default/dns/udp/dns")] || tables[shard("dns")].hasElem(mapServiceIPs, "10.43.0.30") || main.hasElem(setClusterIPs, "10.43.0.30") {
		t.Error("removed service still programmed")
	}
	if main.hasElem(mapNoEndpointServices, "10.43.0.40") || !tables[shard("empty")].hasElem(mapServiceIPs, "10.43.0.40", prefixed("service", "default/empty/tcp/http")) {
		t.Errorf("service that gained an endpoint: service-ips %v, no-endpoint-services %v", tables[shard("empty")].sets[mapServiceIPs], main.sets[mapNoEndpointServices])
	}

	// A restart reconciles against what the kernel holds.
	ks, err = k.read()
	if err != nil {
		t.Fatal(err)
	}
	if ks[bc.Table] == nil || !ks[shard("web")].Chains[webChain] || !ks[shard("web")].Elems[nft.ElemID{Set: mapServiceIPs, Key: nft.Key{Addr: netipMust("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80}}] ||
		!ks[bc.Table].Elems[nft.ElemID{Set: setClusterIPs, Key: nft.Key{Addr: netipMust("10.43.0.20")}}] {
		t.Fatalf("read back: %+v", ks)
	}
	for _, v := range m2.tables() {
		p, err := nft.Reconcile(ks[v.name], v.frags)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.AddChains) != 0 || len(p.DelChains) != 0 || len(p.AddElems) != 0 || len(p.DelElems) != 0 || len(p.AddSets) != 0 || len(p.DelSets) != 0 {
			t.Errorf("reconcile of an up-to-date table %s adds or removes: %s", v.name, p)
		}
	}
	program(t, k, m2)

	if err := cleanup(bc.Table, int(ns)); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if out, err := nftJSON(t, ns); err != nil || len(parseNftJSON(t, out)) != 0 {
		t.Errorf("tables left after Cleanup (%v): %s", err, out)
	}
	if err := cleanup(bc.Table, int(ns)); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

// singleTable is the layout before sharding: every set, chain and element in the main table.
func singleTable(m *Model) []*nft.Fragment {
	shardBase := &nft.Fragment{Chains: m.ShardBase.Chains}
	for _, s := range m.ShardBase.Sets {
		if s.Name != setNodePortIPs { // the main table has it
			shardBase.Sets = append(shardBase.Sets, s)
		}
	}
	frags := []*nft.Fragment{m.Base, shardBase}
	for _, n := range sortedNames(m.Services) {
		f := m.Services[n].Fragment
		f.Elements = append(append([]nft.Element(nil), f.Elements...), m.Services[n].Main...)
		frags = append(frags, &f)
	}
	return frags
}

// TestUpgradeFromSingleTable: a node whose table holds the single-table layout (before
// sharding) is reconciled at start into exactly what a fresh start programs, and traffic
// to a ClusterIP flows.
func TestUpgradeFromSingleTable(t *testing.T) {
	tn := newTestNet(t)
	tn.serve(t, 8080, 5353)
	fresh := newNetns(t)
	bc := testBuildConfig()
	bc.NodeIPs = []netip.Addr{tn.nodeIP}
	services := []*v1.Service{
		svc("default", "web", "10.43.0.20", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30080)),
		svc("default", "sticky", "10.43.0.22", port("http", v1.ProtocolTCP, 80, 0), affinity(600)),
		svc("default", "empty", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0)),
	}
	slices := []*discovery.EndpointSlice{
		slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5"), ep("10.42.0.6")),
		slice("default", "sticky", "sticky-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.6")),
	}
	m := Build(bc, services, slices)

	k, err := newKernel(bc.Table, int(tn.node))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	t.Cleanup(func() { _ = cleanup(bc.Table, int(tn.node)) })
	old, err := nft.Reconcile(nil, singleTable(m))
	if err != nil {
		t.Fatal(err)
	}
	tx := k.begin()
	if err := tx.Queue(bc.Table, old, m.setDefs(), true); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("program the single-table layout: %v", err)
	}
	if got, err := tn.dialTCP(t, "10.43.0.20:80"); err != nil || (got != "10.42.0.5" && got != "10.42.0.6") {
		t.Fatalf("the single-table layout does not serve the ClusterIP: %q, %v", got, err)
	}

	program(t, k, m) // the restart's reconciliation

	kf, err := newKernel(bc.Table, int(fresh))
	if err != nil {
		t.Fatal(err)
	}
	defer kf.close()
	t.Cleanup(func() { _ = cleanup(bc.Table, int(fresh)) })
	program(t, kf, m)
	upgraded, err := nftJSON(t, tn.node)
	if err != nil {
		t.Fatal(err)
	}
	want, err := nftJSON(t, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := normalized(parseNftJSON(t, upgraded)), normalized(parseNftJSON(t, want)); got != want {
		t.Errorf("the upgraded tables differ from a fresh start's:\n%s\nwant:\n%s", got, want)
	}
	for range 8 {
		if got, err := tn.dialTCP(t, "10.43.0.20:80"); err != nil || (got != "10.42.0.5" && got != "10.42.0.6") {
			t.Fatalf("after the upgrade the ClusterIP answers %q, %v", got, err)
		}
	}
	if got, err := tn.dialTCP(t, "10.43.0.22:80"); err != nil || got != "10.42.0.6" {
		t.Fatalf("after the upgrade the affinity Service answers %q, %v", got, err)
	}
	if _, err := tn.dialTCP(t, "10.43.0.21:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after the upgrade a Service without endpoints: want connection refused, got %v", err)
	}
}

// normalized is the ruleset as comparable text: tables, chains, sets with sorted elements,
// and rules, each in order.
func normalized(tables map[string]*nftTable) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		nt := tables[name]
		fmt.Fprintf(&b, "table %s\n", name)
		for _, c := range slices.Sorted(maps.Keys(nt.chains)) {
			fmt.Fprintf(&b, " chain %s\n", c)
			for _, r := range nt.rules[c] {
				fmt.Fprintf(&b, "  %s\n", r)
			}
		}
		for _, s := range slices.Sorted(maps.Keys(nt.sets)) {
			fmt.Fprintf(&b, " set %s %v\n", s, slices.Sorted(slices.Values(nt.sets[s])))
		}
	}
	return b.String()
}
