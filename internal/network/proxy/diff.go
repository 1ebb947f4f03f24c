package proxy

import (
	"sort"

	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

// changeSet is a partial sync's plans: one for the main table, one per touched shard.
type changeSet struct {
	table  string
	shards int
	main   *nft.Plan
	shard  map[int]*nft.Plan
}

func newChangeSet(table string, shards int) *changeSet {
	return &changeSet{table: table, shards: shards, main: &nft.Plan{}, shard: map[int]*nft.Plan{}}
}

func (c *changeSet) shardPlan(i int) *nft.Plan {
	if c.shard[i] == nil {
		c.shard[i] = &nft.Plan{}
	}
	return c.shard[i]
}

// service adds what turns a Service's old fragment into new (either may be nil). On
// nft.ErrRecreate the Service's main-table elements are in, its shard part is not.
func (c *changeSet) service(n types.NamespacedName, old, new *Fragment) error {
	c.main.DiffElements(mainElements(old), mainElements(new))
	return c.shardPlan(shardOf(n, c.shards)).Diff(old.frag(), new.frag())
}

// skeletons adds what turns the committed skeletons into new ones, in every table.
func (c *changeSet) skeletons(oldBase, base, oldShardBase, shardBase *nft.Fragment) error {
	if err := c.main.Diff(oldBase, base); err != nil {
		return err
	}
	for i := range c.shards {
		if err := c.shardPlan(i).Diff(oldShardBase, shardBase); err != nil {
			return err
		}
	}
	return nil
}

// send queues the changes: the main table's additions, the touched shards in order, the main
// table's removals, so that a Service moving between "no endpoints" (main table) and
// "endpoints" (its shard) is at every instant in one of the two, or both.
func (c *changeSet) send(t *nft.Txn, defs map[string]nft.Set) error {
	adds, dels := c.main.Split()
	if err := t.Queue(c.table, adds, defs, false); err != nil {
		return err
	}
	shards := make([]int, 0, len(c.shard))
	for i := range c.shard {
		shards = append(shards, i)
	}
	sort.Ints(shards)
	for _, i := range shards {
		if err := t.Queue(ShardTable(c.table, i), c.shard[i], defs, false); err != nil {
			return err
		}
	}
	return t.Queue(c.table, dels, defs, false)
}

// kernelState is what the kernel holds of the proxy's tables, by name: the main table and
// shard tables of any shard count (those beyond the current count are removed).
type kernelState = nft.State

func sortedTables(ks kernelState) []string { return nft.SortedTables(ks) }

func mainElements(f *Fragment) []nft.Element {
	if f == nil {
		return nil
	}
	return f.Main
}
