package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Proto is an L4 protocol number.
type Proto uint8

// The protocols Services use.
const (
	ProtoTCP  Proto = 6
	ProtoUDP  Proto = 17
	ProtoSCTP Proto = 132
)

func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// KeyKind is the type of a set's keys.
type KeyKind uint8

// The key types the proxy's sets and maps use.
const (
	KeyAddr          KeyKind = iota // ipv4_addr
	KeyProtoPort                    // inet_proto . inet_service
	KeyAddrProtoPort                // ipv4_addr . inet_proto . inet_service
)

func (k KeyKind) String() string {
	switch k {
	case KeyAddr:
		return "ipv4_addr"
	case KeyProtoPort:
		return "inet_proto . inet_service"
	default:
		return "ipv4_addr . inet_proto . inet_service"
	}
}

// Key is a set or map key; the set's KeyKind says which fields count.
type Key struct {
	Addr  netip.Addr
	Proto Proto
	Port  uint16
}

func (k Key) text(kind KeyKind) string {
	switch kind {
	case KeyAddr:
		return k.Addr.String()
	case KeyProtoPort:
		return k.Proto.String() + " . " + strconv.Itoa(int(k.Port))
	default:
		return k.Addr.String() + " . " + k.Proto.String() + " . " + strconv.Itoa(int(k.Port))
	}
}

// VerdictKind is what a verdict does.
type VerdictKind uint8

// Verdicts.
const (
	VerdictAccept VerdictKind = iota
	VerdictDrop
	VerdictReturn
	VerdictJump
	VerdictGoto
)

// Verdict is a verdict statement or map value.
type Verdict struct {
	Kind  VerdictKind
	Chain string
}

func (v Verdict) String() string {
	switch v.Kind {
	case VerdictAccept:
		return "accept"
	case VerdictDrop:
		return "drop"
	case VerdictReturn:
		return "return"
	case VerdictJump:
		return "jump " + v.Chain
	default:
		return "goto " + v.Chain
	}
}

// Set is a named set, or a verdict map when Map is true.
type Set struct {
	Name    string
	Key     KeyKind
	Map     bool
	Timeout time.Duration // > 0: a dynamic set whose elements expire (ClientIP affinity)
	Comment string
}

func (s Set) text(b *strings.Builder, elems []Element) {
	kw := "set"
	typ := s.Key.String()
	if s.Map {
		kw = "map"
		typ += " : verdict"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s\n", kw, s.Name, typ)
	if s.Timeout > 0 {
		fmt.Fprintf(b, "\t\tflags dynamic,timeout\n\t\ttimeout %ds\n", int64(s.Timeout/time.Second))
	}
	if s.Comment != "" {
		fmt.Fprintf(b, "\t\tcomment %q\n", s.Comment)
	}
	if len(elems) > 0 {
		b.WriteString("\t\telements = {\n")
		for _, e := range elems {
			b.WriteString("\t\t\t")
			b.WriteString(e.Key.text(s.Key))
			if s.Map {
				b.WriteString(" : ")
				b.WriteString(e.Verdict.String())
			}
			b.WriteString(",\n")
		}
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t}\n")
}

// Element is one element of a named set or map.
type Element struct {
	Set     string
	Key     Key
	Verdict Verdict // maps only
}

// elemID identifies an element: its set and key.
type elemID struct {
	Set string
	Key Key
}

func (e Element) id() elemID { return elemID{e.Set, e.Key} }

// Hook makes a chain a base chain.
type Hook struct {
	Type     string // filter or nat
	Hook     string // prerouting, input, forward, output, postrouting
	Priority int
}

// Chain is a chain and its rules.
type Chain struct {
	Name  string
	Base  *Hook
	Rules []Rule
}

func (c *Chain) text(b *strings.Builder) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Base != nil {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Base.Type, c.Base.Hook, c.Base.Priority)
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t")
		r.text(b)
		b.WriteByte('\n')
	}
	b.WriteString("\t}\n")
}

// body is the chain's rules as text: two chains are equal when their bodies are.
func (c *Chain) body() string {
	var b strings.Builder
	c.text(&b)
	return b.String()
}

// Rule is matches (all must hold) and one statement.
type Rule struct {
	Match   []Match
	Stmt    Stmt
	Comment string
}

func (r Rule) text(b *strings.Builder) {
	for _, m := range r.Match {
		m.text(b)
		b.WriteByte(' ')
	}
	r.Stmt.text(b)
	if r.Comment != "" {
		fmt.Fprintf(b, " comment %q", r.Comment)
	}
}

// Fragment is the part of the ruleset that one Service (or a table's fixed skeleton) owns.
// A Service's sets, chains and Elements live in its shard's table; its Main elements are
// its entries in the main table's sets (cluster-ips and the no-endpoint maps).
type Fragment struct {
	Sets     []Set
	Chains   []*Chain
	Elements []Element
	Main     []Element

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
	Base      *Fragment
	ShardBase *Fragment
	Services  map[types.NamespacedName]*Fragment
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
	frags []*Fragment
}

// tables is every table of the model: the main table first, then the shards in order.
func (m *Model) tables() []tableView {
	main := tableView{name: m.Table, shard: -1, frags: []*Fragment{m.Base}}
	shards := make([]tableView, m.Shards)
	for i := range shards {
		shards[i] = tableView{name: ShardTable(m.Table, i), shard: i, frags: []*Fragment{m.ShardBase}}
	}
	for _, n := range sortedNames(m.Services) {
		f := m.Services[n]
		if len(f.Main) > 0 {
			main.frags = append(main.frags, &Fragment{Elements: f.Main})
		}
		s := &shards[shardOf(n, m.Shards)]
		s.frags = append(s.frags, f)
	}
	return append([]tableView{main}, shards...)
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
func (m *Model) Text() string {
	var b strings.Builder
	for _, t := range m.tables() {
		tableText(&b, t)
	}
	return b.String()
}

func tableText(b *strings.Builder, t tableView) {
	var sets []Set
	var chains []*Chain
	elems := map[string][]Element{}
	for _, f := range t.frags {
		sets = append(sets, f.Sets...)
		chains = append(chains, f.Chains...)
		for _, e := range f.Elements {
			elems[e.Set] = append(elems[e.Set], e)
		}
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	sort.Slice(chains, func(i, j int) bool { return chains[i].Name < chains[j].Name })
	fmt.Fprintf(b, "table ip %s {\n", t.name)
	for _, s := range sets {
		es := elems[s.Name]
		sort.Slice(es, func(i, j int) bool { return keyLess(es[i].Key, es[j].Key) })
		s.text(b, es)
	}
	for _, c := range chains {
		c.text(b)
	}
	b.WriteString("}\n")
}

func keyLess(a, b Key) bool {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c < 0
	}
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	return a.Port < b.Port
}

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
func (m *Model) setDefs() map[string]Set {
	defs := map[string]Set{}
	for _, t := range m.tables() {
		for _, f := range t.frags {
			for _, s := range f.Sets {
				defs[s.Name] = s
			}
		}
	}
	return defs
}
