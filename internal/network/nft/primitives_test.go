package nft

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/havre/havre/internal/network/netnstest"
)

// everyPrimitive is a table whose rules use every primitive, each where the tracer can tell
// whether it matched: the input hook accepts or drops by the first rule that matches.
func everyPrimitive() Table {
	a := netip.MustParseAddr
	base := &Fragment{
		Sets: []Set{
			{Name: "addrs", Key: KeyAddr, Comment: "plain addresses"},
			{Name: "app", Key: KeyAddrProtoPort},
			{Name: "pp", Key: KeyProtoPort, Map: true},
			{Name: "dispatch", Key: KeyAddr, Map: true},
			{Name: "app-map", Key: KeyAddrProtoPort, Map: true},
			{Name: "aff", Key: KeyAddr, Timeout: 60e9},
		},
		Chains: []*Chain{
			{Name: "in", Base: &Hook{Type: "filter", Hook: "input", Priority: 0}, Rules: []Rule{
				{Match: []Match{MatchCtEstablished{}}, Stmt: StmtVerdict{Kind: VerdictAccept}},
				{Match: []Match{MatchAddr{Field: Saddr, Prefix: netip.MustParsePrefix("10.0.0.0/8")}, MatchAddr{Field: Saddr, Prefix: netip.MustParsePrefix("10.1.0.0/16"), Neg: true}, MatchDportRange{Proto: ProtoTCP, Lo: 1000, Hi: 2000}}, Stmt: StmtVerdict{Kind: VerdictAccept}, Comment: "a block with a hole"},
				{Match: []Match{MatchAddrProtoPortInSet{Field: Daddr, Set: "app"}}, Stmt: StmtVerdict{Kind: VerdictAccept}},
				{Match: []Match{MatchAddrInSet{Field: Saddr, Set: "addrs"}, MatchL4Proto{Proto: ProtoUDP}}, Stmt: StmtVerdict{Kind: VerdictAccept}},
				{Match: []Match{MatchDport{Proto: ProtoSCTP, Port: 9}}, Stmt: StmtVerdict{Kind: VerdictAccept}},
				{Stmt: StmtAddrVmap{Field: Saddr, Map: "dispatch"}},
				{Match: []Match{MatchCtNew{}, MatchFibSaddrLocal{}}, Stmt: StmtVerdict{Kind: VerdictJump, Chain: "local"}},
				{Match: []Match{MatchMarkClear{Bits: 0x10}}, Stmt: StmtVmap{Key: KeyProtoPort, Map: "pp"}},
				{Stmt: StmtVmap{Key: KeyAddrProtoPort, Map: "app-map"}},
				{Stmt: StmtVerdict{Kind: VerdictDrop}},
			}},
			{Name: "local", Rules: []Rule{{Stmt: StmtMark{Bits: 0x10}}, {Stmt: StmtAffinity{Set: "aff"}}, {Stmt: StmtReturn()}}},
			{Name: "rejecting", Rules: []Rule{{Stmt: StmtReject{}}}},
			{Name: "nat-pre", Base: &Hook{Type: "nat", Hook: "prerouting", Priority: -100}, Rules: []Rule{
				{Match: []Match{MatchAddr{Field: Daddr, Prefix: netip.MustParsePrefix("10.43.0.1/32")}}, Stmt: StmtNumgen{Targets: []string{"ep"}}},
			}},
			{Name: "ep", Rules: []Rule{{Match: []Match{MatchL4Proto{Proto: ProtoTCP}}, Stmt: StmtDNAT{Addr: a("192.0.2.1"), Port: 1500}}}},
			{Name: "nat-post", Base: &Hook{Type: "nat", Hook: "postrouting", Priority: 100}, Rules: []Rule{{Stmt: StmtMasquerade{}}}},
		},
		Elements: []Element{
			{Set: "addrs", Key: Key{Addr: a("192.0.2.7")}},
			{Set: "app", Key: Key{Addr: a("192.0.2.1"), Proto: ProtoTCP, Port: 8080}},
			{Set: "pp", Key: Key{Proto: ProtoTCP, Port: 22}, Verdict: Verdict{Kind: VerdictAccept}},
			{Set: "dispatch", Key: Key{Addr: a("198.51.100.1")}, Verdict: Verdict{Kind: VerdictGoto, Chain: "rejecting"}},
			{Set: "app-map", Key: Key{Addr: a("192.0.2.1"), Proto: ProtoUDP, Port: 53}, Verdict: Verdict{Kind: VerdictAccept}},
		},
	}
	return Table{Name: "nfttest", Frags: []*Fragment{base}}
}

// StmtReturn is a return verdict (test shorthand).
func StmtReturn() Stmt { return StmtVerdict{Kind: VerdictReturn} }

// TestTracePrimitives: each primitive decides as the kernel would.
func TestTracePrimitives(t *testing.T) {
	a := netip.MustParseAddr
	node := a("192.0.2.1")
	tr := NewTracer([]Table{everyPrimitive()}, node)
	for _, tc := range []struct {
		name string
		p    TracePacket
		want string
	}{
		{"established is accepted", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoTCP, Port: 5, Established: true}, "ACCEPT"},
		{"new is not", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoTCP, Port: 5}, "DROP"},
		{"in the block and the port range", TracePacket{Src: a("10.2.0.1"), Dst: node, Proto: ProtoTCP, Port: 1000}, "ACCEPT"},
		{"in the block, range end", TracePacket{Src: a("10.2.0.1"), Dst: node, Proto: ProtoTCP, Port: 2000}, "ACCEPT"},
		{"in the block, past the range", TracePacket{Src: a("10.2.0.1"), Dst: node, Proto: ProtoTCP, Port: 2001}, "DROP"},
		{"in the block's hole", TracePacket{Src: a("10.1.0.1"), Dst: node, Proto: ProtoTCP, Port: 1500}, "DROP"},
		{"range is TCP only", TracePacket{Src: a("10.2.0.1"), Dst: node, Proto: ProtoUDP, Port: 1500}, "DROP"},
		{"address.proto.port in set", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoTCP, Port: 8080}, "ACCEPT"},
		{"address.proto.port, other proto", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoUDP, Port: 8080}, "DROP"},
		{"address in set and udp", TracePacket{Src: a("192.0.2.7"), Dst: node, Proto: ProtoUDP, Port: 1}, "ACCEPT"},
		{"address in set but tcp", TracePacket{Src: a("192.0.2.7"), Dst: node, Proto: ProtoTCP, Port: 1}, "DROP"},
		{"sctp port", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoSCTP, Port: 9}, "ACCEPT"},
		{"address vmap goes to a rejecting chain", TracePacket{Src: a("198.51.100.1"), Dst: node, Proto: ProtoUDP, Port: 53}, "REJECT"},
		{"proto.port vmap, mark clear", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoTCP, Port: 22}, "ACCEPT"},
		{"local source: marked, so the proto.port vmap is skipped", TracePacket{Src: node, Dst: node, Proto: ProtoTCP, Port: 22, Local: true}, "ACCEPT"},
		{"address.proto.port vmap", TracePacket{Src: a("203.0.113.1"), Dst: node, Proto: ProtoUDP, Port: 53}, "ACCEPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.Trace(tc.p); got.Verdict != tc.want {
				t.Errorf("%+v: %s, want %s", tc.p, got, tc.want)
			}
		})
	}
	// DNAT in prerouting: the input hook sees the new destination and port.
	got := tr.Trace(TracePacket{Src: a("10.2.0.1"), Dst: a("10.43.0.1"), Proto: ProtoTCP, Port: 80})
	if got.Verdict != "ACCEPT" || len(got.Endpoints) != 1 || got.Endpoints[0] != "192.0.2.1:1500" {
		t.Errorf("DNAT then input: %s", got)
	}
}

// TestPrimitivesInKernel: the kernel takes every primitive, and nft reads the table back.
func TestPrimitivesInKernel(t *testing.T) {
	ns, _ := netnstest.New(t)
	tab := everyPrimitive()
	c, err := Open(int(ns), "table ip "+tab.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	owned := func(n string) bool { return n == tab.Name }
	t.Cleanup(func() { _ = c.DeleteTables(owned) })
	p, err := Reconcile(nil, tab.Frags)
	if err != nil {
		t.Fatal(err)
	}
	tx := c.Begin()
	if err := tx.Queue(tab.Name, p, Defs(tab.Frags...), true); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("program: %v", err)
	}
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("nft is not installed (/usr/sbin/nft), needed to read the table back")
	}
	var out []byte
	if err := netnstest.Do(ns, func() error {
		var err error
		out, err = exec.Command("/usr/sbin/nft", "-j", "list", "table", "ip", tab.Name).Output()
		return err
	}); err != nil {
		t.Fatalf("nft -j list table: %v", err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output does not parse: %v\n%s", err, out)
	}
	rules := 0
	for _, o := range doc.Nftables {
		if _, ok := o["rule"]; ok {
			rules++
		}
	}
	want := 0
	for _, ch := range tab.Frags[0].Chains {
		want += len(ch.Rules)
	}
	if rules != want {
		t.Errorf("nft lists %d rules, the table has %d", rules, want)
	}
	text := string(out)
	for _, s := range []string{`"range"`, `"established"`, `"th"`, `"vmap"`, `"concat"`, `"masquerade"`} {
		if !strings.Contains(text, s) {
			t.Errorf("nft's listing lacks %s:\n%s", s, out)
		}
	}
	// Read back: the plan from what is there to the same table adds and removes nothing.
	st, err := c.ReadTables(owned, func(_, set string) (KeyKind, bool) {
		for _, s := range tab.Frags[0].Sets {
			if s.Name == set && s.Timeout == 0 {
				return s.Key, true
			}
		}
		return 0, false
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Reconcile(st[tab.Name], tab.Frags)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.AddSets)+len(again.AddChains)+len(again.AddElems)+len(again.DelElems)+len(again.DelChains)+len(again.DelSets) != 0 {
		t.Errorf("reconciling an up-to-date table: %s", again)
	}
}
