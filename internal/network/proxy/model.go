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

// Fragment is the part of the table that one Service (or the fixed skeleton) owns.
type Fragment struct {
	Sets     []Set
	Chains   []*Chain
	Elements []Element

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

// Model is the whole table: the fixed skeleton and one fragment per Service.
type Model struct {
	Table    string
	Base     *Fragment
	Services map[types.NamespacedName]*Fragment
}

// Text renders the model as nft syntax, deterministically: sets then chains, each by name.
func (m *Model) Text() string {
	var sets []Set
	var chains []*Chain
	elems := map[string][]Element{}
	add := func(f *Fragment) {
		sets = append(sets, f.Sets...)
		chains = append(chains, f.Chains...)
		for _, e := range f.Elements {
			elems[e.Set] = append(elems[e.Set], e)
		}
	}
	add(m.Base)
	for _, f := range m.Services {
		add(f)
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	sort.Slice(chains, func(i, j int) bool { return chains[i].Name < chains[j].Name })
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", m.Table)
	for _, s := range sets {
		es := elems[s.Name]
		sort.Slice(es, func(i, j int) bool { return keyLess(es[i].Key, es[j].Key) })
		s.text(&b, es)
	}
	for _, c := range chains {
		c.text(&b)
	}
	b.WriteString("}\n")
	return b.String()
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

// fragments is the skeleton and every service's fragment.
func (m *Model) fragments() []*Fragment {
	out := make([]*Fragment, 0, len(m.Services)+1)
	out = append(out, m.Base)
	for _, f := range m.Services {
		out = append(out, f)
	}
	return out
}

// setDefs is every named set of the model by name.
func (m *Model) setDefs() map[string]Set {
	defs := map[string]Set{}
	for _, f := range m.fragments() {
		for _, s := range f.Sets {
			defs[s.Name] = s
		}
	}
	return defs
}
