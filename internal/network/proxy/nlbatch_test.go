package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// TestBatchRejected: a transaction with a failing message in the middle is rejected whole,
// the error says which message failed and why, and the next transaction is not confused by
// the replies of the rejected one.
func TestBatchRejected(t *testing.T) {
	ns := newNetns(t)
	bc := testBuildConfig()
	m := Build(bc, nil, nil)
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	t.Cleanup(func() { _ = cleanup(bc.Table, int(ns)) })
	program(t, k, m)
	defs := m.setDefs()
	elem := func(a string) []Element {
		return []Element{{Set: setClusterIPs, Key: Key{Addr: netip.MustParseAddr(a)}}}
	}
	has := func(a string) bool {
		ks, err := k.read()
		if err != nil {
			t.Fatal(err)
		}
		return ks[bc.Table].elems[elemID{setClusterIPs, Key{Addr: netip.MustParseAddr(a)}}]
	}

	tx := k.begin()
	tx.unit.setElements(bc.Table, defs[setClusterIPs], elem("10.43.9.1"), false)
	tx.unit.addRule(bc.Table, "no-such-chain", []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, "")
	tx.unit.setElements(bc.Table, defs[setClusterIPs], elem("10.43.9.2"), false)
	if err := tx.push(); err != nil {
		t.Fatal(err)
	}
	err = tx.commit()
	if err == nil {
		t.Fatal("a transaction adding a rule to a chain that does not exist was accepted")
	}
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "add rule to chain no-such-chain in table ip "+bc.Table) {
		t.Errorf("the error does not name the failed message and ENOENT: %v", err)
	}
	if has("10.43.9.1") || has("10.43.9.2") {
		t.Error("part of the rejected transaction was applied")
	}

	tx = k.begin()
	tx.unit.setElements(bc.Table, defs[setClusterIPs], elem("10.43.9.3"), false)
	if err := tx.push(); err != nil {
		t.Fatal(err)
	}
	if err := tx.commit(); err != nil {
		t.Fatalf("the transaction after a rejected one: %v", err)
	}
	if !has("10.43.9.3") {
		t.Error("the transaction after a rejected one was not applied")
	}
}

// TestBatchLargeNumgen: a Service with more endpoints than one element message holds gets its
// balancing map in several messages, every endpoint in it.
func TestBatchLargeNumgen(t *testing.T) {
	ns := newNetns(t)
	bc := testBuildConfig()
	const n = 3*maxSetElems + 7
	eps := make([]discovery.Endpoint, n)
	for i := range eps {
		eps[i] = ep(fmt.Sprintf("10.42.%d.%d", 10+i/250, 1+i%250), onNode("node-b"))
	}
	m := Build(bc, []*v1.Service{svc("ns1", "big", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0))},
		[]*discovery.EndpointSlice{slice("ns1", "big", "big-1", []slicePort{tcp("http", 8080)}, eps...)})
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	t.Cleanup(func() { _ = cleanup(bc.Table, int(ns)) })
	program(t, k, m)
	out, err := nftJSON(t, ns)
	if err != nil {
		t.Fatal(err)
	}
	shard := ShardTable(bc.Table, shardOf(typesNN("ns1", "big"), m.Shards))
	rules := parseNftJSON(t, out)[shard].rules[prefixed("service", "ns1/big/tcp/http")]
	all := strings.ReplaceAll(strings.Join(rules, ""), " ", "")
	if !strings.Contains(all, fmt.Sprintf(`"mod":%d`, n)) || strings.Count(all, `"goto"`) != n {
		t.Errorf("the balancing rule does not go to all %d endpoints (%d gotos)", n, strings.Count(all, `"goto"`))
	}
}
