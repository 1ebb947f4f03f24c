package nft

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The rule vocabulary. Each primitive renders as nft text, compiles to netlink expressions
// and is evaluated by the tracer; nothing else may appear in a rule (the interfaces' methods
// are unexported so that every primitive lives here).

// Match is one condition of a rule.
type Match interface {
	text(b *strings.Builder)
	compile(c *compiler) []expr.Any
	eval(t *Tracer, p *packet) bool
}

// Stmt is the statement a rule ends with.
type Stmt interface {
	text(b *strings.Builder)
	compile(c *compiler) []expr.Any
	exec(t *Tracer, p *packet) step
}

// compiler collects what rules need besides their expressions (anonymous maps).
type compiler struct {
	anon []anonMap
}

// anonMap is a rule's own constant verdict map: key i goes to targets[i].
type anonMap struct {
	name    string
	id      uint32
	targets []string
}

// Field is an address field of the IPv4 header.
type Field uint8

// Address fields.
const (
	Saddr Field = iota
	Daddr
)

func (f Field) String() string {
	if f == Saddr {
		return "saddr"
	}
	return "daddr"
}

func (f Field) offset() uint32 {
	if f == Saddr {
		return 12
	}
	return 16
}

func (f Field) of(p *packet) netip.Addr {
	if f == Saddr {
		return p.src
	}
	return p.dst
}

func loadAddr(f Field, reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.offset(), Len: 4}
}

func neq(neg bool) expr.CmpOp {
	if neg {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

// MatchAddr is "ip saddr|daddr [!=] PREFIX".
type MatchAddr struct {
	Field  Field
	Prefix netip.Prefix
	Neg    bool
}

func (m MatchAddr) text(b *strings.Builder) {
	b.WriteString("ip " + m.Field.String() + " ")
	if m.Neg {
		b.WriteString("!= ")
	}
	if m.Prefix.IsSingleIP() {
		b.WriteString(m.Prefix.Addr().String())
	} else {
		b.WriteString(m.Prefix.String())
	}
}

func (m MatchAddr) compile(*compiler) []expr.Any {
	out := []expr.Any{loadAddr(m.Field, 1)}
	addr := m.Prefix.Masked().Addr().As4()
	if !m.Prefix.IsSingleIP() {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-m.Prefix.Bits()))
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	return append(out, &expr.Cmp{Op: neq(m.Neg), Register: 1, Data: addr[:]})
}

func (m MatchAddr) eval(_ *Tracer, p *packet) bool {
	return m.Prefix.Contains(m.Field.of(p)) != m.Neg
}

// MatchAddrInSet is "ip saddr|daddr @SET".
type MatchAddrInSet struct {
	Field Field
	Set   string
}

func (m MatchAddrInSet) text(b *strings.Builder) {
	b.WriteString("ip " + m.Field.String() + " @" + m.Set)
}

func (m MatchAddrInSet) compile(*compiler) []expr.Any {
	return []expr.Any{loadAddr(m.Field, 1), &expr.Lookup{SourceRegister: 1, SetName: m.Set}}
}

func (m MatchAddrInSet) eval(t *Tracer, p *packet) bool {
	return t.inSet(m.Set, Key{Addr: m.Field.of(p)})
}

// MatchL4Proto is "meta l4proto PROTO".
type MatchL4Proto struct{ Proto Proto }

func (m MatchL4Proto) text(b *strings.Builder) { b.WriteString("meta l4proto " + m.Proto.String()) }

func (m MatchL4Proto) compile(*compiler) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.Proto)}},
	}
}

func (m MatchL4Proto) eval(_ *Tracer, p *packet) bool { return p.proto == m.Proto }

// MatchDport is "PROTO dport PORT".
type MatchDport struct {
	Proto Proto
	Port  uint16
}

func (m MatchDport) text(b *strings.Builder) {
	b.WriteString(m.Proto.String() + " dport " + strconv.Itoa(int(m.Port)))
}

func (m MatchDport) compile(c *compiler) []expr.Any {
	return append(MatchL4Proto{m.Proto}.compile(c),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.Port)},
	)
}

func (m MatchDport) eval(_ *Tracer, p *packet) bool { return p.proto == m.Proto && p.dport == m.Port }

// MatchFibSaddrLocal is "fib saddr type local": the packet comes from one of this host's addresses.
type MatchFibSaddrLocal struct{}

func (MatchFibSaddrLocal) text(b *strings.Builder) { b.WriteString("fib saddr type local") }

func (MatchFibSaddrLocal) compile(*compiler) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func (MatchFibSaddrLocal) eval(t *Tracer, p *packet) bool { return t.local[p.src] }

// MatchMarkClear is "meta mark & BITS == 0".
type MatchMarkClear struct{ Bits uint32 }

func (m MatchMarkClear) text(b *strings.Builder) {
	fmt.Fprintf(b, "meta mark & 0x%08x == 0x00000000", m.Bits)
}

func (m MatchMarkClear) compile(*compiler) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(m.Bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}

func (m MatchMarkClear) eval(_ *Tracer, p *packet) bool { return p.mark&m.Bits == 0 }

// MatchCtNew is "ct state new".
type MatchCtNew struct{}

func (MatchCtNew) text(b *strings.Builder) { b.WriteString("ct state new") }

func (MatchCtNew) compile(*compiler) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func (MatchCtNew) eval(_ *Tracer, p *packet) bool { return !p.established }

// MatchCtEstablished is "ct state established,related": a packet of a connection conntrack
// already accepted (replies included), or one related to it (ICMP errors, FTP data, ...).
type MatchCtEstablished struct{}

func (MatchCtEstablished) text(b *strings.Builder) { b.WriteString("ct state established,related") }

func (MatchCtEstablished) compile(*compiler) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func (MatchCtEstablished) eval(_ *Tracer, p *packet) bool { return p.established }

// MatchDportRange is "PROTO dport LO-HI" (both ends included).
type MatchDportRange struct {
	Proto  Proto
	Lo, Hi uint16
}

func (m MatchDportRange) text(b *strings.Builder) {
	fmt.Fprintf(b, "%s dport %d-%d", m.Proto, m.Lo, m.Hi)
}

func (m MatchDportRange) compile(c *compiler) []expr.Any {
	return append(MatchL4Proto{m.Proto}.compile(c),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: binaryutil.BigEndian.PutUint16(m.Lo), ToData: binaryutil.BigEndian.PutUint16(m.Hi)},
	)
}

func (m MatchDportRange) eval(_ *Tracer, p *packet) bool {
	return p.proto == m.Proto && p.dport >= m.Lo && p.dport <= m.Hi
}

// loadAddrProtoPort loads "ip saddr|daddr . meta l4proto . th dport" into registers 1, 9
// and 10 (concatenations live in 32-bit registers: 1 is 8, then 9, 10).
func loadAddrProtoPort(f Field) []expr.Any {
	return []expr.Any{
		loadAddr(f, 1),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

// MatchAddrProtoPortInSet is "ip saddr|daddr . meta l4proto . th dport @SET" (a set of
// KeyAddrProtoPort).
type MatchAddrProtoPortInSet struct {
	Field Field
	Set   string
}

func (m MatchAddrProtoPortInSet) text(b *strings.Builder) {
	b.WriteString("ip " + m.Field.String() + " . meta l4proto . th dport @" + m.Set)
}

func (m MatchAddrProtoPortInSet) compile(*compiler) []expr.Any {
	return append(loadAddrProtoPort(m.Field), &expr.Lookup{SourceRegister: 1, SetName: m.Set})
}

func (m MatchAddrProtoPortInSet) eval(t *Tracer, p *packet) bool {
	return t.inSet(m.Set, Key{Addr: m.Field.of(p), Proto: p.proto, Port: p.dport})
}

// StmtVerdict is accept, drop, return, "jump CHAIN" or "goto CHAIN".
type StmtVerdict Verdict

func (s StmtVerdict) text(b *strings.Builder) { b.WriteString(Verdict(s).String()) }

func (s StmtVerdict) compile(*compiler) []expr.Any { return []expr.Any{nftVerdict(Verdict(s))} }

func (s StmtVerdict) exec(*Tracer, *packet) step { return verdictStep(Verdict(s)) }

// Expr is the verdict as a netlink expression.
func (v Verdict) Expr() *expr.Verdict { return nftVerdict(v) }

func nftVerdict(v Verdict) *expr.Verdict {
	switch v.Kind {
	case VerdictAccept:
		return &expr.Verdict{Kind: expr.VerdictAccept}
	case VerdictDrop:
		return &expr.Verdict{Kind: expr.VerdictDrop}
	case VerdictReturn:
		return &expr.Verdict{Kind: expr.VerdictReturn}
	case VerdictJump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}
	default:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: v.Chain}
	}
}

// StmtReject is "reject": ICMP port unreachable, so clients are refused at once.
type StmtReject struct{}

func (StmtReject) text(b *strings.Builder) { b.WriteString("reject") }

func (StmtReject) compile(*compiler) []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3 /* ICMP_PORT_UNREACH */}}
}

func (StmtReject) exec(*Tracer, *packet) step { return step{kind: stepReject} }

// StmtVmap is "ip daddr . meta l4proto . th dport vmap @MAP" (KeyAddrProtoPort) or
// "meta l4proto . th dport vmap @MAP" (KeyProtoPort).
type StmtVmap struct {
	Key KeyKind
	Map string
}

func (s StmtVmap) text(b *strings.Builder) {
	if s.Key == KeyAddrProtoPort {
		b.WriteString("ip daddr . ")
	}
	b.WriteString("meta l4proto . th dport vmap @" + s.Map)
}

func (s StmtVmap) compile(*compiler) []expr.Any {
	var out []expr.Any
	if s.Key == KeyAddrProtoPort {
		out = loadAddrProtoPort(Daddr)
	} else {
		// Concatenations live in 32-bit registers: 1 (= 8), then 9.
		out = []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		}
	}
	return append(out, &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: s.Map})
}

func (s StmtVmap) exec(t *Tracer, p *packet) step {
	k := Key{Proto: p.proto, Port: p.dport}
	if s.Key == KeyAddrProtoPort {
		k.Addr = p.dst
	}
	if v, ok := t.lookup(s.Map, k); ok {
		return verdictStep(v)
	}
	return step{}
}

// StmtAddrVmap is "ip saddr|daddr vmap @MAP" (a map of KeyAddr): dispatch on an address.
type StmtAddrVmap struct {
	Field Field
	Map   string
}

func (s StmtAddrVmap) text(b *strings.Builder) {
	b.WriteString("ip " + s.Field.String() + " vmap @" + s.Map)
}

func (s StmtAddrVmap) compile(*compiler) []expr.Any {
	return []expr.Any{loadAddr(s.Field, 1), &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: s.Map}}
}

func (s StmtAddrVmap) exec(t *Tracer, p *packet) step {
	if v, ok := t.lookup(s.Map, Key{Addr: s.Field.of(p)}); ok {
		return verdictStep(v)
	}
	return step{}
}

// StmtNumgen is "numgen random mod N vmap { 0 : goto A, 1 : goto B, ... }".
type StmtNumgen struct{ Targets []string }

func (s StmtNumgen) text(b *strings.Builder) {
	fmt.Fprintf(b, "numgen random mod %d vmap { ", len(s.Targets))
	for i, c := range s.Targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%d : goto %s", i, c)
	}
	b.WriteString(" }")
}

func (s StmtNumgen) compile(c *compiler) []expr.Any {
	// Named here rather than "__map%d": the kernel finds a free %d by scanning every set of
	// the table with sscanf, which makes a 10,000-service sync quadratic.
	a := anonMap{id: anonID.Add(1), name: fmt.Sprintf("__ng%s%x", anonPrefix, anonSeq.Add(1)), targets: s.Targets}
	c.anon = append(c.anon, a)
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(s.Targets)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: a.name, SetID: a.id},
	}
}

var (
	anonSeq    atomic.Uint64
	anonID     atomic.Uint32
	anonPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
)

func (s StmtNumgen) exec(t *Tracer, _ *packet) step {
	return step{kind: stepGoto, chain: s.Targets[t.choose(len(s.Targets))]}
}

// StmtDNAT is "dnat to ADDR:PORT" (the rule matches the protocol first).
type StmtDNAT struct {
	Addr netip.Addr
	Port uint16
}

func (s StmtDNAT) text(b *strings.Builder) {
	b.WriteString("dnat to " + netip.AddrPortFrom(s.Addr, s.Port).String())
}

func (s StmtDNAT) compile(*compiler) []expr.Any {
	a := s.Addr.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(s.Port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	}
}

func (s StmtDNAT) exec(t *Tracer, p *packet) step {
	p.dst, p.dport = s.Addr, s.Port
	p.dnat = netip.AddrPortFrom(s.Addr, s.Port).String()
	return step{kind: stepAccept}
}

// StmtMasquerade is "masquerade fully-random".
type StmtMasquerade struct{}

func (StmtMasquerade) text(b *strings.Builder) { b.WriteString("masquerade fully-random") }

func (StmtMasquerade) compile(*compiler) []expr.Any {
	return []expr.Any{&expr.Masq{FullyRandom: true}}
}

func (StmtMasquerade) exec(_ *Tracer, p *packet) step {
	p.masq = true
	return step{kind: stepAccept}
}

// StmtMark is "meta mark set meta mark | BITS" (Xor false) or "... ^ BITS" (Xor true).
type StmtMark struct {
	Bits uint32
	Xor  bool
}

func (s StmtMark) text(b *strings.Builder) {
	op := "|"
	if s.Xor {
		op = "^"
	}
	fmt.Fprintf(b, "meta mark set meta mark %s 0x%08x", op, s.Bits)
}

func (s StmtMark) compile(*compiler) []expr.Any {
	mask := ^s.Bits
	if s.Xor {
		mask = ^uint32(0)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(s.Bits)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

func (s StmtMark) exec(_ *Tracer, p *packet) step {
	if s.Xor {
		p.mark ^= s.Bits
	} else {
		p.mark |= s.Bits
	}
	return step{}
}

// StmtAffinity is "update @SET { ip saddr }": remember the client for ClientIP affinity.
type StmtAffinity struct{ Set string }

func (s StmtAffinity) text(b *strings.Builder) { b.WriteString("update @" + s.Set + " { ip saddr }") }

func (s StmtAffinity) compile(*compiler) []expr.Any {
	return []expr.Any{
		loadAddr(Saddr, 1),
		&expr.Dynset{SrcRegKey: 1, SetName: s.Set, Operation: unix.NFT_DYNSET_OP_UPDATE},
	}
}

func (s StmtAffinity) exec(t *Tracer, p *packet) step {
	t.remember(s.Set, p.src)
	return step{}
}
