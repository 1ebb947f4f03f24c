package nft

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/havre/havre/internal/network/netnstest"
)

// TestBatchRejected: a transaction with a failing message in the middle is rejected whole,
// the error says which message failed and why, and the next transaction is not confused by
// the replies of the rejected one.
func TestBatchRejected(t *testing.T) {
	ns, _ := netnstest.New(t)
	const table = "nfttest"
	c, err := Open(int(ns), "table ip "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	set := Set{Name: "addrs", Key: KeyAddr}
	defs := Defs(&Fragment{Sets: []Set{set}})
	p, err := Reconcile(nil, []*Fragment{{Sets: []Set{set}, Chains: []*Chain{{Name: "c"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tx := c.Begin()
	if err := tx.Queue(table, p, defs, true); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	owned := func(n string) bool { return n == table }
	elem := func(a string) []Element { return []Element{{Set: set.Name, Key: Key{Addr: netip.MustParseAddr(a)}}} }
	has := func(a string) bool {
		st, err := c.ReadTables(owned, func(_, s string) (KeyKind, bool) { return KeyAddr, s == set.Name })
		if err != nil {
			t.Fatal(err)
		}
		return st[table].Elems[ElemID{set.Name, Key{Addr: netip.MustParseAddr(a)}}]
	}

	tx = c.Begin()
	tx.unit.setElements(table, set, elem("10.43.9.1"), false)
	tx.unit.addRule(table, "no-such-chain", []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, "")
	tx.unit.setElements(table, set, elem("10.43.9.2"), false)
	if err := tx.push(); err != nil {
		t.Fatal(err)
	}
	err = tx.Commit()
	if err == nil {
		t.Fatal("a transaction adding a rule to a chain that does not exist was accepted")
	}
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "add rule to chain no-such-chain in table ip "+table) {
		t.Errorf("the error does not name the failed message and ENOENT: %v", err)
	}
	if has("10.43.9.1") || has("10.43.9.2") {
		t.Error("part of the rejected transaction was applied")
	}

	tx = c.Begin()
	if err := tx.Queue(table, &Plan{AddElems: elem("10.43.9.3")}, defs, false); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the transaction after a rejected one: %v", err)
	}
	if !has("10.43.9.3") {
		t.Error("the transaction after a rejected one was not applied")
	}
	if err := c.DeleteTables(owned); err != nil {
		t.Fatal(err)
	}
	if st, err := c.ReadTables(owned, func(string, string) (KeyKind, bool) { return 0, false }); err != nil || len(st) != 0 {
		t.Errorf("after DeleteTables: %v, %v", st, err)
	}
}
