package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Bounds of one transaction: a cold sync of 10,000 Services is sent as ~150 of these, never
// as one giant netlink message. Larger ones were measured to save nothing (the proxy's
// shards: each commit validates only the tables it touched).
const (
	MaxTxnMessages = 1000
	MaxTxnBytes    = 192 << 10 // the writer's send buffer holds twice this
	MaxSetElems    = 256       // elements per element message
)

// Conn programs nftables tables over netlink: it writes with batches of its own (nlbatch.go)
// and reads with google/nftables.
type Conn struct {
	nl    *nftables.Conn // reads
	w     *nlWriter      // writes
	what  string         // the tables it programs, for errors
	Stats Stats          // what the transactions since the last Begin sent
}

// Stats counts what transactions sent.
type Stats struct {
	Transactions, Chains, Rules, Elements, Sets int
}

// Open connects to nf_tables in the network namespace nsFD (-1: the process's own). what
// names the tables the connection programs, for errors ("the tables of ip havre0").
func Open(nsFD int, what string) (*Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		_ = c.SetReadBuffer(8 << 20) // room for dumps of a large table
		return nil
	})}
	if nsFD >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFD))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket for nftables (is the process root, with CAP_NET_ADMIN?): %w", err)
	}
	w, err := newWriter(nsFD)
	if err != nil {
		_ = c.CloseLasting()
		return nil, err
	}
	return &Conn{nl: c, w: w, what: what}, nil
}

// Close closes the connection's sockets.
func (c *Conn) Close() {
	_ = c.nl.CloseLasting()
	c.w.close()
}

// NL is the google/nftables connection the reads use (tests send odd messages with it).
func (c *Conn) NL() *nftables.Conn { return c.nl }

// Txn gathers messages, possibly for several tables, and commits them as one transaction
// whenever the next atomic unit would pass the bounds. The kernel validates, at each commit,
// only the tables it touched.
type Txn struct {
	c    *Conn
	b    batch // queued, not yet sent
	unit batch // the unit being encoded
}

// Begin starts a sequence of bounded transactions and resets Stats.
func (c *Conn) Begin() *Txn {
	c.Stats = Stats{}
	return &Txn{c: c}
}

// push queues the encoded unit, committing what was queued before if both would not fit.
func (t *Txn) push() error {
	u := &t.unit
	defer u.reset()
	if t.b.messages() > 0 && (t.b.messages()+u.messages() > MaxTxnMessages || t.b.bytes()+u.bytes() > MaxTxnBytes) {
		if err := t.Commit(); err != nil {
			return err
		}
	}
	t.b.append(u)
	return nil
}

// Commit sends what is queued as one transaction (nothing queued: nothing sent).
func (t *Txn) Commit() error {
	if t.b.messages() == 0 {
		return t.b.err
	}
	defer t.b.reset()
	t.c.Stats.Transactions++
	if err := t.c.w.send(&t.b); err != nil {
		return fmt.Errorf("nftables transaction on %s: %w", t.c.what, err)
	}
	return nil
}

// EncodeKey is a key as the kernel stores it in a set of this kind.
func EncodeKey(kind KeyKind, k Key) []byte {
	switch kind {
	case KeyAddr:
		a := k.Addr.As4()
		return a[:]
	case KeyProtoPort:
		return []byte{byte(k.Proto), 0, 0, 0, byte(k.Port >> 8), byte(k.Port), 0, 0}
	default:
		a := k.Addr.As4()
		return []byte{a[0], a[1], a[2], a[3], byte(k.Proto), 0, 0, 0, byte(k.Port >> 8), byte(k.Port), 0, 0}
	}
}

func decodeKey(kind KeyKind, b []byte) (Key, bool) {
	switch {
	case kind == KeyAddr && len(b) == 4:
		return Key{Addr: netip.AddrFrom4([4]byte(b))}, true
	case kind == KeyProtoPort && len(b) == 8:
		return Key{Proto: Proto(b[0]), Port: uint16(b[4])<<8 | uint16(b[5])}, true
	case kind == KeyAddrProtoPort && len(b) == 12:
		return Key{Addr: netip.AddrFrom4([4]byte(b[:4])), Proto: Proto(b[4]), Port: uint16(b[8])<<8 | uint16(b[9])}, true
	}
	return Key{}, false
}

// encodeRules encodes the chain's rules into the unit, each compiled from its primitives,
// with the anonymous maps they use before them.
func (t *Txn) encodeRules(table string, c *Chain) {
	for _, r := range c.Rules {
		cc := &compiler{}
		var exprs []expr.Any
		for _, m := range r.Match {
			exprs = append(exprs, m.compile(cc)...)
		}
		exprs = append(exprs, r.Stmt.compile(cc)...)
		for _, a := range cc.anon {
			t.unit.addAnonMap(table, a)
		}
		t.unit.addRule(table, c.Name, exprs, r.Comment)
		t.c.Stats.Rules++
	}
}

// elementOps queues element additions or deletions (replacements: both, in one unit),
// grouped by set and chunked.
func (t *Txn) elementOps(table string, elems []Element, defs map[string]Set, del, add bool) error {
	bySet := map[string][]Element{}
	var names []string
	for _, e := range elems {
		if bySet[e.Set] == nil {
			names = append(names, e.Set)
		}
		bySet[e.Set] = append(bySet[e.Set], e)
	}
	sort.Strings(names)
	for _, name := range names {
		def, ok := defs[name]
		if !ok {
			return fmt.Errorf("element of unknown set %s", name)
		}
		list := bySet[name]
		for len(list) > 0 {
			n := min(len(list), MaxSetElems)
			if del {
				t.unit.setElements(table, def, list[:n], true)
			}
			if add {
				t.unit.setElements(table, def, list[:n], false)
			}
			if err := t.push(); err != nil {
				return err
			}
			t.c.Stats.Elements += n
			list = list[n:]
		}
	}
	return nil
}

// Queue adds a table's plan to the transaction (in the plan's order; see Plan), committing
// what came before whenever the bounds would be passed. defs are the definitions of the
// sets the plan's elements belong to; createTable adds the table first (no error if it
// exists).
func (t *Txn) Queue(table string, p *Plan, defs map[string]Set, createTable bool) error {
	st := &t.c.Stats
	if createTable {
		t.unit.addTable(table)
		if err := t.push(); err != nil {
			return err
		}
	}
	for _, s := range p.AddSets {
		t.unit.addSet(table, s)
		if err := t.push(); err != nil {
			return err
		}
		st.Sets++
	}
	for _, c := range p.AddChains {
		t.unit.addChain(table, c)
		if err := t.push(); err != nil {
			return err
		}
		st.Chains++
	}
	for _, c := range p.AddChains {
		if err := t.fill(table, c, false); err != nil {
			return err
		}
	}
	for _, c := range p.FillChains {
		if err := t.fill(table, c, true); err != nil {
			return err
		}
	}
	if err := t.elementOps(table, p.DelElems, defs, true, false); err != nil {
		return err
	}
	if err := t.elementOps(table, p.ReplElems, defs, true, true); err != nil {
		return err
	}
	if err := t.elementOps(table, p.AddElems, defs, false, true); err != nil {
		return err
	}
	for _, name := range p.DelChains {
		t.unit.flushChain(table, name)
		if err := t.push(); err != nil {
			return err
		}
	}
	for _, name := range p.DelChains {
		t.unit.delChain(table, name)
		if err := t.push(); err != nil {
			return err
		}
		st.Chains++
	}
	for _, name := range p.DelSets {
		t.unit.delSet(table, name)
		if err := t.push(); err != nil {
			return err
		}
		st.Sets++
	}
	return nil
}

// fill queues a chain's rules (after a flush when it already existed) as one atomic unit.
func (t *Txn) fill(table string, c *Chain, flush bool) error {
	if flush {
		t.unit.flushChain(table, c.Name)
		t.c.Stats.Chains++
	}
	t.encodeRules(table, c)
	return t.push()
}

// DeleteTable queues the removal of a whole table.
func (t *Txn) DeleteTable(name string) error {
	t.unit.delTable(name)
	return t.push()
}

// ReadTables lists, once, the tables of family ip that owned says are the caller's: their
// chains, their sets, and the element keys of the sets elemsOf names (with their key kind:
// google/nftables v0.3.0 reports a map's data type as its key type, so the caller says).
func (c *Conn) ReadTables(owned func(table string) bool, elemsOf func(table, set string) (KeyKind, bool)) (State, error) {
	st := State{}
	tables, err := c.nl.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if owned(t.Name) {
			st[t.Name] = &TableState{Chains: map[string]bool{}, Sets: map[string]Set{}, Elems: map[ElemID]bool{}}
		}
	}
	if len(st) == 0 {
		return st, nil
	}
	chains, err := c.nl.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains of %s: %w", c.what, err)
	}
	for _, ch := range chains {
		if ts := st[ch.Table.Name]; ts != nil {
			ts.Chains[ch.Name] = true
		}
	}
	for _, name := range SortedTables(st) {
		if err := c.readSets(name, st[name], elemsOf); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// SortedTables is the state's table names, sorted.
func SortedTables(st State) []string {
	out := make([]string, 0, len(st))
	for n := range st {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Conn) readSets(name string, ts *TableState, elemsOf func(table, set string) (KeyKind, bool)) error {
	sets, err := c.nl.GetSets(&nftables.Table{Name: name, Family: nftables.TableFamilyIPv4})
	if err != nil {
		return fmt.Errorf("list sets of table ip %s: %w", name, err)
	}
	for _, s := range sets {
		if s.Anonymous || strings.HasPrefix(s.Name, "__") {
			continue // a rule's own map (numgen): goes with the rule
		}
		def := Set{Name: s.Name, Map: s.IsMap}
		def.Key = KeyKind(255) // a type no owner uses: recreated
		for _, kind := range []KeyKind{KeyAddr, KeyProtoPort, KeyAddrProtoPort} {
			if kt := setKeyType(kind); s.KeyType.GetNFTMagic() == kt.GetNFTMagic() {
				def.Key = kind
			}
		}
		kind, read := elemsOf(name, s.Name)
		if read && s.IsMap {
			def.Key = kind // see ReadTables
		}
		if s.HasTimeout {
			def.Timeout = s.Timeout
		}
		ts.Sets[s.Name] = def
		if !read {
			continue
		}
		elems, err := c.nl.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("list elements of set %s in table ip %s: %w", s.Name, name, err)
		}
		for _, e := range elems {
			if key, ok := decodeKey(kind, e.Key); ok {
				ts.Elems[ElemID{s.Name, key}] = true
			}
		}
	}
	return nil
}

// DeleteTables removes, in one transaction, those of the named tables that exist (none: no
// error).
func (c *Conn) DeleteTables(owned func(table string) bool) error {
	st, err := c.ReadTables(owned, func(string, string) (KeyKind, bool) { return 0, false })
	if err != nil || len(st) == 0 {
		return err
	}
	t := c.Begin()
	for _, name := range SortedTables(st) {
		if err := t.DeleteTable(name); err != nil {
			return err
		}
	}
	if err := t.Commit(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete %s: %w", c.what, err)
	}
	return nil
}
