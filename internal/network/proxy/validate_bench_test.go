package proxy

import (
	"fmt"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/havre/havre/internal/network/nft"
)

// BenchmarkCommitValidation measures what one small transaction costs the kernel, by kind of
// change, in a table holding n Services (all Services in one shard: n = 625 is one of 16
// shards of 10,000). It shows where a commit's time goes: nf_tables validates the whole
// table (every base chain's jump graph, verdict maps included) at a commit that added a rule
// whose expressions have a validate operation (any verdict, nat, reject, ...) or a verdict
// map element that jumps or goes to a chain; other commits, and commits to another table,
// do not pay it.
func BenchmarkCommitValidation(b *testing.B) {
	ns := newNetns(b)
	bc := benchBuildConfig()
	bc.Shards = 1
	shard := ShardTable(bc.Table, 0)
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer k.close()
	defer func() { _ = cleanup(bc.Table, int(ns)); _ = cleanup("small", int(ns)) }()
	for _, n := range []int{0, 625, 10000} {
		svcs, slices := world(n)
		m := Build(bc, svcs, slices)
		if err := k.deleteTables(); err != nil {
			b.Fatal(err)
		}
		program(b, k, m)
		// The changes are sent with google/nftables: a few messages per commit.
		table := &nftables.Table{Name: shard, Family: nftables.TableFamilyIPv4}
		scratch := &nftables.Chain{Name: "bench-scratch", Table: table}
		k.conn.NL().AddChain(scratch)
		if err := k.conn.NL().Flush(); err != nil {
			b.Fatal(err)
		}
		cmp := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1, 2, 3, 4}}}
		rule := func(extra ...expr.Any) func(int) {
			return func(int) {
				k.conn.NL().FlushChain(scratch)
				k.conn.NL().AddRule(&nftables.Rule{Table: table, Chain: scratch, Exprs: append(append([]expr.Any(nil), cmp...), extra...)})
			}
		}
		elem := func(set string, kind nft.KeyKind, isMap bool, v nft.Verdict) func(int) {
			return func(i int) {
				e := nftables.SetElement{Key: nft.EncodeKey(kind, nft.Key{Addr: netipMust("10.44.0.1"), Proto: nft.ProtoTCP, Port: 80})}
				if isMap {
					e.VerdictData = v.Expr()
				}
				s := &nftables.Set{Table: table, Name: set}
				if i%2 == 0 {
					_ = k.conn.NL().SetAddElements(s, []nftables.SetElement{e})
				} else {
					_ = k.conn.NL().SetDeleteElements(s, []nftables.SetElement{e})
				}
			}
		}
		cases := []struct {
			name string
			op   func(int)
		}{
			{"rule-cmp-only", rule()},
			{"rule-accept", rule(&expr.Verdict{Kind: expr.VerdictAccept})},
			{"rule-jump", rule(&expr.Verdict{Kind: expr.VerdictJump, Chain: chainMarkMasq})},
			{"set-element", elem(setNodePortIPs, nft.KeyAddr, false, nft.Verdict{})},
			{"vmap-element-drop", elem(mapServiceIPs, nft.KeyAddrProtoPort, true, nft.Verdict{Kind: nft.VerdictDrop})},
			{"vmap-element-goto", elem(mapServiceIPs, nft.KeyAddrProtoPort, true, nft.Verdict{Kind: nft.VerdictGoto, Chain: chainMarkMasq})},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("services=%d/%s", n, c.name), func(b *testing.B) {
				i := 0
				for b.Loop() {
					c.op(i)
					i++
					if err := k.conn.NL().Flush(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		if n == 10000 {
			// Another, small table of the same netns: validation is per table.
			other := &nftables.Table{Name: "small", Family: nftables.TableFamilyIPv4}
			k.conn.NL().AddTable(other)
			oc := &nftables.Chain{Name: "c", Table: other}
			k.conn.NL().AddChain(oc)
			k.conn.NL().AddChain(&nftables.Chain{Name: "d", Table: other})
			if err := k.conn.NL().Flush(); err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("services=%d/other-table-rule-jump", n), func(b *testing.B) {
				for b.Loop() {
					k.conn.NL().FlushChain(oc)
					k.conn.NL().AddRule(&nftables.Rule{Table: other, Chain: oc, Exprs: append(append([]expr.Any(nil), cmp...), &expr.Verdict{Kind: expr.VerdictJump, Chain: "d"})})
					if err := k.conn.NL().Flush(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
