package nft

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Proto is an L4 protocol number.
type Proto uint8

// The protocols Services and NetworkPolicies use.
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

// The key types of sets and maps.
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

// Text is the key as nft writes it in a set of this kind.
func (k Key) Text(kind KeyKind) string {
	switch kind {
	case KeyAddr:
		return k.Addr.String()
	case KeyProtoPort:
		return k.Proto.String() + " . " + strconv.Itoa(int(k.Port))
	default:
		return k.Addr.String() + " . " + k.Proto.String() + " . " + strconv.Itoa(int(k.Port))
	}
}

// KeyLess orders keys: address, then protocol, then port.
func KeyLess(a, b Key) bool {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c < 0
	}
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	return a.Port < b.Port
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
	Timeout time.Duration // > 0: a dynamic set whose elements expire
	Comment string
}

// WriteText writes the set and its elements (in the order given) as nft syntax.
func (s Set) WriteText(b *strings.Builder, elems []Element) {
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
			b.WriteString(e.Key.Text(s.Key))
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

// ElemID identifies an element: its set and key.
type ElemID struct {
	Set string
	Key Key
}

// ID is the element's identity (its set and key; not its verdict).
func (e Element) ID() ElemID { return ElemID{e.Set, e.Key} }

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

// WriteText writes the chain as nft syntax.
func (c *Chain) WriteText(b *strings.Builder) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Base != nil {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Base.Type, c.Base.Hook, c.Base.Priority)
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t")
		r.WriteText(b)
		b.WriteByte('\n')
	}
	b.WriteString("\t}\n")
}

// Body is the chain as text: two chains are equal when their bodies are.
func (c *Chain) Body() string {
	var b strings.Builder
	c.WriteText(&b)
	return b.String()
}

// Rule is matches (all must hold) and one statement.
type Rule struct {
	Match   []Match
	Stmt    Stmt
	Comment string
}

// WriteText writes the rule as nft syntax.
func (r Rule) WriteText(b *strings.Builder) {
	for _, m := range r.Match {
		m.text(b)
		b.WriteByte(' ')
	}
	r.Stmt.text(b)
	if r.Comment != "" {
		fmt.Fprintf(b, " comment %q", r.Comment)
	}
}

// Fragment is a part of one table: sets, chains and elements one owner (a Service, a
// NetworkPolicy, a table's fixed skeleton, ...) keeps. Elements may belong to another
// fragment's sets of the same table.
type Fragment struct {
	Sets     []Set
	Chains   []*Chain
	Elements []Element
}

// Table is one table (family ip) as the fragments that make it up.
type Table struct {
	Name  string
	Frags []*Fragment
}

// WriteText writes the table as nft syntax, deterministically: sets then chains, each by
// name, elements by key.
func (t Table) WriteText(b *strings.Builder) {
	var sets []Set
	var chains []*Chain
	elems := map[string][]Element{}
	for _, f := range t.Frags {
		sets = append(sets, f.Sets...)
		chains = append(chains, f.Chains...)
		for _, e := range f.Elements {
			elems[e.Set] = append(elems[e.Set], e)
		}
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	sort.Slice(chains, func(i, j int) bool { return chains[i].Name < chains[j].Name })
	fmt.Fprintf(b, "table ip %s {\n", t.Name)
	for _, s := range sets {
		es := elems[s.Name]
		sort.Slice(es, func(i, j int) bool { return KeyLess(es[i].Key, es[j].Key) })
		s.WriteText(b, es)
	}
	for _, c := range chains {
		c.WriteText(b)
	}
	b.WriteString("}\n")
}

// Text renders tables as nft syntax, in the order given.
func Text(tables []Table) string {
	var b strings.Builder
	for _, t := range tables {
		t.WriteText(&b)
	}
	return b.String()
}

// Defs is every named set of the fragments by name (a name means the same set wherever it
// is).
func Defs(frags ...*Fragment) map[string]Set {
	defs := map[string]Set{}
	for _, f := range frags {
		if f == nil {
			continue
		}
		for _, s := range f.Sets {
			defs[s.Name] = s
		}
	}
	return defs
}
