package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

// Fragment is the part of the ruleset that one Service owns. Its sets, chains and Elements
// live in its shard's table; its Main elements are its entries in the main table's sets
// (cluster-ips and the no-endpoint maps).
type Fragment struct {
	nft.Fragment
	Main []nft.Element

	// What the proxier needs besides the rules.
	HealthCheckPort uint16
	LocalEndpoints  int
	UDP             []udpPort
}

// udpPort is a UDP service port: its addresses and the endpoints traffic to them goes to.
type udpPort struct {
	VIPs      []netip.Addr
	Port      uint16
	NodePort  uint16
	Endpoints []netip.Addr
}

// Model is the whole ruleset: the main table (its skeleton Base and every Service's Main
// elements) and Shards shard tables, each holding the ShardBase skeleton and the fragments
// of the Services that hash to it.
type Model struct {
	Table     string
	Shards    int
	Base      *nft.Fragment
	ShardBase *nft.Fragment
	Services  map[types.NamespacedName]*Fragment
}

// frag is a Service's part of its shard table (nil: none).
func (f *Fragment) frag() *nft.Fragment {
	if f == nil {
		return nil
	}
	return &f.Fragment
}

// DefaultShards is how many shard tables the proxy spreads Services over (see doc.go).
const DefaultShards = 16

// MaxShards bounds Config.Shards: shard tables are numbered with two digits.
const MaxShards = 100

// ShardTable is the name of shard i of the proxy whose main table is table.
func ShardTable(table string, i int) string { return fmt.Sprintf("%s-s%02d", table, i) }

// isShardTable reports whether name is one of table's shard tables, of any shard count.
func isShardTable(table, name string) bool {
	rest, ok := strings.CutPrefix(name, table+"-s")
	return ok && len(rest) == 2 && rest[0] >= '0' && rest[0] <= '9' && rest[1] >= '0' && rest[1] <= '9'
}

// shardOf is the shard a Service lives in: FNV-1a of "namespace/name" modulo the shard
// count, stable across restarts.
func shardOf(n types.NamespacedName, shards int) int {
	h := uint32(2166136261)
	for _, s := range []string{n.Namespace, "/", n.Name} {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
	}
	return int(h % uint32(shards))
}

// tableView is what one table of the model holds, as fragments to diff or reconcile.
type tableView struct {
	name  string
	shard int // -1: the main table
	frags []*nft.Fragment
}

// tables is every table of the model: the main table first, then the shards in order.
func (m *Model) tables() []tableView {
	main := tableView{name: m.Table, shard: -1, frags: []*nft.Fragment{m.Base}}
	shards := make([]tableView, m.Shards)
	for i := range shards {
		shards[i] = tableView{name: ShardTable(m.Table, i), shard: i, frags: []*nft.Fragment{m.ShardBase}}
	}
	for _, n := range sortedNames(m.Services) {
		f := m.Services[n]
		if len(f.Main) > 0 {
			main.frags = append(main.frags, &nft.Fragment{Elements: f.Main})
		}
		s := &shards[shardOf(n, m.Shards)]
		s.frags = append(s.frags, &f.Fragment)
	}
	return append([]tableView{main}, shards...)
}

// Tables is every table of the model, the main table first, then the shards in order: for
// a tracer, or to program the model elsewhere (tests of other components).
func (m *Model) Tables() []nft.Table {
	views := m.tables()
	out := make([]nft.Table, len(views))
	for i, v := range views {
		out[i] = nft.Table{Name: v.name, Frags: v.frags}
	}
	return out
}

func sortedNames(m map[types.NamespacedName]*Fragment) []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Text renders the model as nft syntax, deterministically: the main table, then the shards;
// in each, sets then chains, each by name.
func (m *Model) Text() string { return nft.Text(m.Tables()) }

// hashName is kube-proxy's chain-name hash: the first 8 characters of the base32 SHA-256.
func hashName(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:8]
}

// prefixed returns "prefix-HASH-suffix", the chain and set names of kube-proxy's nftables mode.
func prefixed(prefix, suffix string) string {
	return prefix + "-" + hashName(suffix) + "-" + suffix
}

// setDefs is every named set of the model by name (a name means the same set in every
// table that has it).
func (m *Model) setDefs() map[string]nft.Set {
	var frags []*nft.Fragment
	for _, t := range m.tables() {
		frags = append(frags, t.frags...)
	}
	return nft.Defs(frags...)
}
