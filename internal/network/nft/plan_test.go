package nft

import (
	"net/netip"
	"testing"
)

// TestPlanDiff: what turns one fragment into another, in the order the kernel needs.
func TestPlanDiff(t *testing.T) {
	a := func(s string) Key { return Key{Addr: netip.MustParseAddr(s)} }
	set := Set{Name: "s", Key: KeyAddr}
	vmap := Set{Name: "m", Key: KeyAddr, Map: true}
	chain := &Chain{Name: "c", Rules: []Rule{{Stmt: StmtVerdict{Kind: VerdictAccept}}}}
	chain2 := &Chain{Name: "c", Rules: []Rule{{Stmt: StmtVerdict{Kind: VerdictDrop}}}}
	old := &Fragment{Sets: []Set{set, vmap}, Chains: []*Chain{chain}, Elements: []Element{
		{Set: "s", Key: a("10.0.0.1")}, {Set: "s", Key: a("10.0.0.2")},
		{Set: "m", Key: a("10.0.0.1"), Verdict: Verdict{Kind: VerdictGoto, Chain: "c"}},
	}}
	for _, tc := range []struct {
		name string
		old  *Fragment
		new  *Fragment
		want string
	}{
		{"same", old, old, "+0 sets, +0 chains, ~0 chains, -0 elements, ~0 elements, +0 elements, -0 chains, -0 sets"},
		{"created", nil, old, "+2 sets, +1 chains, ~0 chains, -0 elements, ~0 elements, +3 elements, -0 chains, -0 sets"},
		// The plain set's elements go with it; the map's are deleted before the chain they
		// jump to.
		{"removed", old, nil, "+0 sets, +0 chains, ~0 chains, -1 elements, ~0 elements, +0 elements, -1 chains, -2 sets"},
		{"changed", old, &Fragment{Sets: []Set{set, vmap}, Chains: []*Chain{chain2}, Elements: []Element{
			{Set: "s", Key: a("10.0.0.2")}, {Set: "s", Key: a("10.0.0.3")},
			{Set: "m", Key: a("10.0.0.1"), Verdict: Verdict{Kind: VerdictAccept}},
		}}, "+0 sets, +0 chains, ~1 chains, -1 elements, ~1 elements, +1 elements, -0 chains, -0 sets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{}
			if err := p.Diff(tc.old, tc.new); err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	p := &Plan{}
	if err := p.Diff(old, &Fragment{Sets: []Set{{Name: "s", Key: KeyAddrProtoPort}}}); err != ErrRecreate || !p.Empty() {
		t.Errorf("a set whose definition changed: %v, %s", err, p)
	}
}
