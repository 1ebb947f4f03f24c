package nft

import (
	"errors"
	"fmt"
)

// Plan is what one sync sends to one table: the difference between what the kernel holds
// and the model. A transaction applies it in this order, so that every transaction boundary
// is safe: sets and chains are created before anything refers to them, and removed after
// nothing does.
type Plan struct {
	AddSets    []Set
	AddChains  []*Chain // created empty, then filled
	FillChains []*Chain // existing: flushed and refilled
	DelElems   []Element
	ReplElems  []Element // deleted and added again in the same transaction
	AddElems   []Element
	DelChains  []string // flushed, then deleted
	DelSets    []string
}

func (p *Plan) String() string {
	return fmt.Sprintf("+%d sets, +%d chains, ~%d chains, -%d elements, ~%d elements, +%d elements, -%d chains, -%d sets",
		len(p.AddSets), len(p.AddChains), len(p.FillChains), len(p.DelElems), len(p.ReplElems), len(p.AddElems), len(p.DelChains), len(p.DelSets))
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.AddSets)+len(p.AddChains)+len(p.FillChains)+len(p.DelElems)+len(p.ReplElems)+len(p.AddElems)+len(p.DelChains)+len(p.DelSets) == 0
}

// Split is the plan's additions and replacements, and its removals, for a caller that sends
// one table's additions before another table's changes and its removals after them.
func (p *Plan) Split() (adds, dels *Plan) {
	adds = &Plan{AddSets: p.AddSets, AddChains: p.AddChains, FillChains: p.FillChains, ReplElems: p.ReplElems, AddElems: p.AddElems}
	dels = &Plan{DelElems: p.DelElems, DelChains: p.DelChains, DelSets: p.DelSets}
	return adds, dels
}

// ErrRecreate says a set's definition changed: its owner must be removed and added again.
var ErrRecreate = errors.New("a set's definition changed")

// Diff adds to p what turns old into new (either may be nil). On ErrRecreate nothing was
// added.
func (p *Plan) Diff(old, new *Fragment) error {
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
			return ErrRecreate
		}
	}
	for _, s := range new.Sets {
		if _, ok := oldSets[s.Name]; !ok {
			p.AddSets = append(p.AddSets, s)
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
			p.AddChains = append(p.AddChains, c)
		case o != c && o.Body() != c.Body():
			p.FillChains = append(p.FillChains, c)
		}
		delete(oldChains, c.Name)
	}
	// Elements of plain sets that go with them are not deleted one by one. (Map elements are:
	// they may jump to chains that go before the map does.)
	oldElems := old.Elements
	if len(oldSets) > 0 {
		oldElems = nil
		for _, e := range old.Elements {
			if s, gone := oldSets[e.Set]; !gone || s.Map {
				oldElems = append(oldElems, e)
			}
		}
	}
	p.DiffElements(oldElems, new.Elements)
	for _, c := range old.Chains { // in the old order: deterministic
		if _, gone := oldChains[c.Name]; gone {
			p.DelChains = append(p.DelChains, c.Name)
		}
	}
	for _, s := range old.Sets {
		if _, gone := oldSets[s.Name]; gone {
			p.DelSets = append(p.DelSets, s.Name)
		}
	}
	return nil
}

// DiffElements adds to p what turns one list of elements into another.
func (p *Plan) DiffElements(old, new []Element) {
	oldElems := make(map[ElemID]Verdict, len(old))
	for _, e := range old {
		oldElems[e.ID()] = e.Verdict
	}
	for _, e := range new {
		v, ok := oldElems[e.ID()]
		switch {
		case !ok:
			p.AddElems = append(p.AddElems, e)
		case v != e.Verdict:
			p.ReplElems = append(p.ReplElems, e)
		}
		delete(oldElems, e.ID())
	}
	for _, e := range old { // in the old order: deterministic
		if v, gone := oldElems[e.ID()]; gone {
			p.DelElems = append(p.DelElems, Element{Set: e.Set, Key: e.Key, Verdict: v})
			delete(oldElems, e.ID())
		}
	}
}

// TableState is what an existing table holds, read once at start (or after a failure):
// chain and set names and the keys of the elements of the sets the reader asked for. Chain
// contents and element verdicts are not read: Reconcile refills those chains and replaces
// those map elements, each atomically, so traffic keeps flowing while an owner reconciles.
type TableState struct {
	Chains map[string]bool
	Sets   map[string]Set
	Elems  map[ElemID]bool
}

// State is what the kernel holds of some tables, by name.
type State map[string]*TableState

// Reconcile is the plan from the kernel's state of one table (nil: absent) to what the
// fragments want in it. ErrRecreate (wrapped) says a set the kernel holds has another
// definition: the table must be removed first.
func Reconcile(ts *TableState, desired []*Fragment) (*Plan, error) {
	if ts == nil {
		ts = &TableState{}
	}
	p := &Plan{}
	chains := map[string]bool{}
	sets := map[string]bool{}
	elems := map[ElemID]bool{}
	for _, f := range desired {
		for _, s := range f.Sets {
			sets[s.Name] = true
			if o, ok := ts.Sets[s.Name]; !ok {
				p.AddSets = append(p.AddSets, s)
			} else if o.Key != s.Key || o.Map != s.Map || o.Timeout != s.Timeout {
				return nil, fmt.Errorf("set %s (kernel key %d map %v timeout %v, model key %d map %v timeout %v): %w", s.Name, o.Key, o.Map, o.Timeout, s.Key, s.Map, s.Timeout, ErrRecreate)
			}
		}
		for _, c := range f.Chains {
			chains[c.Name] = true
			if ts.Chains[c.Name] {
				p.FillChains = append(p.FillChains, c)
			} else {
				p.AddChains = append(p.AddChains, c)
			}
		}
		for _, e := range f.Elements {
			elems[e.ID()] = true
			if ts.Elems[e.ID()] {
				p.ReplElems = append(p.ReplElems, e)
			} else {
				p.AddElems = append(p.AddElems, e)
			}
		}
	}
	for id := range ts.Elems {
		// Elements of sets about to go are deleted too: a map's elements may jump to chains
		// that go before the map does.
		if !elems[id] {
			p.DelElems = append(p.DelElems, Element{Set: id.Set, Key: id.Key})
		}
	}
	for c := range ts.Chains {
		if !chains[c] {
			p.DelChains = append(p.DelChains, c)
		}
	}
	for s := range ts.Sets {
		if !sets[s] {
			p.DelSets = append(p.DelSets, s)
		}
	}
	return p, nil
}
