package proxy

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
)

// plan is what one sync sends to one table: the difference between what the kernel holds
// and the model. The kernel applies it in this order, so that every transaction boundary is
// safe: sets and chains are created before anything refers to them, and removed after
// nothing does.
type plan struct {
	addSets    []Set
	addChains  []*Chain // created empty, then filled
	fillChains []*Chain // existing: flushed and refilled
	delElems   []Element
	replElems  []Element // deleted and added again in the same transaction
	addElems   []Element
	delChains  []string // flushed, then deleted
	delSets    []string
}

func (p *plan) String() string {
	return fmt.Sprintf("+%d sets, +%d chains, ~%d chains, -%d elements, ~%d elements, +%d elements, -%d chains, -%d sets",
		len(p.addSets), len(p.addChains), len(p.fillChains), len(p.delElems), len(p.replElems), len(p.addElems), len(p.delChains), len(p.delSets))
}

// split is the plan's additions and replacements, and its removals: a sync sends the main
// table's additions before the shards' changes and its removals after them, so that a
// Service moving between "no endpoints" (main table) and "endpoints" (its shard) is at
// every instant in one of the two, or both.
func (p *plan) split() (adds, dels *plan) {
	adds = &plan{addSets: p.addSets, addChains: p.addChains, fillChains: p.fillChains, replElems: p.replElems, addElems: p.addElems}
	dels = &plan{delElems: p.delElems, delChains: p.delChains, delSets: p.delSets}
	return adds, dels
}

// errRecreate says a set's definition changed: the owner must be removed and added again.
var errRecreate = fmt.Errorf("a set's definition changed")

// diff adds to p what turns old into new (either may be nil).
func (p *plan) diff(old, new *Fragment) error {
	if old == nil {
		old = &Fragment{}
	}
	if new == nil {
		new = &Fragment{}
	}
	oldSets := make(map[string]Set, len(old.Sets))
	for _, s := range old.Sets {
		oldSets[s.Name] = s
	}
	for _, s := range new.Sets {
		if o, ok := oldSets[s.Name]; ok && o != s {
			return errRecreate // nothing added to p yet
		}
	}
	for _, s := range new.Sets {
		if _, ok := oldSets[s.Name]; !ok {
			p.addSets = append(p.addSets, s)
		}
		delete(oldSets, s.Name)
	}
	oldChains := make(map[string]*Chain, len(old.Chains))
	for _, c := range old.Chains {
		oldChains[c.Name] = c
	}
	for _, c := range new.Chains {
		o, ok := oldChains[c.Name]
		switch {
		case !ok:
			p.addChains = append(p.addChains, c)
		case o.body() != c.body():
			p.fillChains = append(p.fillChains, c)
		}
		delete(oldChains, c.Name)
	}
	p.diffElements(old.Elements, new.Elements)
	for name := range oldChains {
		p.delChains = append(p.delChains, name)
	}
	for name := range oldSets {
		p.delSets = append(p.delSets, name)
	}
	return nil
}

// diffElements adds to p what turns one list of elements into another.
func (p *plan) diffElements(old, new []Element) {
	oldElems := make(map[elemID]Verdict, len(old))
	for _, e := range old {
		oldElems[e.id()] = e.Verdict
	}
	for _, e := range new {
		v, ok := oldElems[e.id()]
		switch {
		case !ok:
			p.addElems = append(p.addElems, e)
		case v != e.Verdict:
			p.replElems = append(p.replElems, e)
		}
		delete(oldElems, e.id())
	}
	for id, v := range oldElems {
		p.delElems = append(p.delElems, Element{Set: id.Set, Key: id.Key, Verdict: v})
	}
}

// kstate is what an existing table holds, read once at start (or after a failure): chain
// and set names and the keys of the shared maps' elements. Chain contents and element
// verdicts are not read: those chains are refilled and those elements replaced, each
// atomically, so traffic keeps flowing while the proxy reconciles.
type kstate struct {
	chains map[string]bool
	sets   map[string]Set
	elems  map[elemID]bool
}

// kernelState is what the kernel holds of the proxy's tables, by name: the main table and
// shard tables of any shard count (those beyond the current count are removed).
type kernelState map[string]*kstate

// reconcile is the plan from the kernel's state of one table (nil: absent) to what the model
// wants in it.
func reconcile(ks *kstate, desired []*Fragment) (*plan, error) {
	if ks == nil {
		ks = &kstate{}
	}
	p := &plan{}
	chains := map[string]bool{}
	sets := map[string]bool{}
	elems := map[elemID]bool{}
	for _, f := range desired {
		for _, s := range f.Sets {
			sets[s.Name] = true
			if o, ok := ks.sets[s.Name]; !ok {
				p.addSets = append(p.addSets, s)
			} else if o.Key != s.Key || o.Map != s.Map || o.Timeout != s.Timeout {
				return nil, fmt.Errorf("set %s (kernel key %d map %v timeout %v, model key %d map %v timeout %v): %w", s.Name, o.Key, o.Map, o.Timeout, s.Key, s.Map, s.Timeout, errRecreate)
			}
		}
		for _, c := range f.Chains {
			chains[c.Name] = true
			if ks.chains[c.Name] {
				p.fillChains = append(p.fillChains, c)
			} else {
				p.addChains = append(p.addChains, c)
			}
		}
		for _, e := range f.Elements {
			elems[e.id()] = true
			if ks.elems[e.id()] {
				p.replElems = append(p.replElems, e)
			} else {
				p.addElems = append(p.addElems, e)
			}
		}
	}
	for id := range ks.elems {
		if !elems[id] {
			p.delElems = append(p.delElems, Element{Set: id.Set, Key: id.Key})
		}
	}
	for c := range ks.chains {
		if !chains[c] {
			p.delChains = append(p.delChains, c)
		}
	}
	for s := range ks.sets {
		if !sets[s] {
			p.delSets = append(p.delSets, s)
		}
	}
	return p, nil
}

// changeSet is a partial sync's plans: one for the main table, one per touched shard.
type changeSet struct {
	table  string
	shards int
	main   *plan
	shard  map[int]*plan
}

func newChangeSet(table string, shards int) *changeSet {
	return &changeSet{table: table, shards: shards, main: &plan{}, shard: map[int]*plan{}}
}

func (c *changeSet) shardPlan(i int) *plan {
	if c.shard[i] == nil {
		c.shard[i] = &plan{}
	}
	return c.shard[i]
}

// service adds what turns a Service's old fragment into new (either may be nil). On
// errRecreate the Service's main-table elements are in, its shard part is not.
func (c *changeSet) service(n types.NamespacedName, old, new *Fragment) error {
	c.main.diffElements(mainElements(old), mainElements(new))
	return c.shardPlan(shardOf(n, c.shards)).diff(old, new)
}

// skeletons adds what turns the committed skeletons into new ones, in every table.
func (c *changeSet) skeletons(oldBase, base, oldShardBase, shardBase *Fragment) error {
	if err := c.main.diff(oldBase, base); err != nil {
		return err
	}
	for i := range c.shards {
		if err := c.shardPlan(i).diff(oldShardBase, shardBase); err != nil {
			return err
		}
	}
	return nil
}

// send queues the changes: the main table's additions, the touched shards in order, the main
// table's removals (see plan.split).
func (c *changeSet) send(t *txn, defs map[string]Set) error {
	adds, dels := c.main.split()
	if err := t.queue(c.table, adds, defs, false); err != nil {
		return err
	}
	shards := make([]int, 0, len(c.shard))
	for i := range c.shard {
		shards = append(shards, i)
	}
	sort.Ints(shards)
	for _, i := range shards {
		if err := t.queue(ShardTable(c.table, i), c.shard[i], defs, false); err != nil {
			return err
		}
	}
	return t.queue(c.table, dels, defs, false)
}

func mainElements(f *Fragment) []Element {
	if f == nil {
		return nil
	}
	return f.Main
}
