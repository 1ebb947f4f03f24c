package proxy

import (
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/havre/havre/internal/network/nft"
)

// TestBatchLargeNumgen: a Service with more endpoints than one element message holds gets its
// balancing map in several messages, every endpoint in it.
func TestBatchLargeNumgen(t *testing.T) {
	ns := newNetns(t)
	bc := testBuildConfig()
	const n = 3*nft.MaxSetElems + 7
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
