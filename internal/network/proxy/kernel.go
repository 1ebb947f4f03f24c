package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Bounds of one transaction: a cold sync of 10,000 Services is sent as ~150 of these, never
// as one giant netlink message. Larger ones were measured to save nothing: each commit
// validates only the one or two shards it touched.
const (
	maxTxnMessages = 1000
	maxTxnBytes    = 192 << 10 // the writer's send buffer holds twice this
	maxSetElems    = 256       // elements per element message
)

// kernel programs the proxy's tables over netlink: the main table and its shards. It writes
// with batches of its own (nlbatch.go) and reads with google/nftables.
type kernel struct {
	conn  *nftables.Conn // reads
	w     *nlWriter      // writes
	table string         // the main table's name
	// what the last transactions sent, for metrics
	stats applyStats
}

type applyStats struct {
	transactions, chains, rules, elements, sets int
}

func newKernel(table string, nsFD int) (*kernel, error) {
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
	return &kernel{conn: c, w: w, table: table}, nil
}

func (k *kernel) close() {
	_ = k.conn.CloseLasting()
	k.w.close()
}

// txn gathers messages, possibly for several tables, and commits them as one transaction
// whenever the next atomic unit would pass the bound. The kernel validates, at each commit,
// only the tables it touched.
type txn struct {
	k    *kernel
	b    batch // queued, not yet sent
	unit batch // the unit being encoded
}

// begin starts a sequence of bounded transactions.
func (k *kernel) begin() *txn {
	k.stats = applyStats{}
	return &txn{k: k}
}

// push queues the encoded unit, committing what was queued before if both would not fit.
func (t *txn) push() error {
	u := &t.unit
	defer u.reset()
	if t.b.messages() > 0 && (t.b.messages()+u.messages() > maxTxnMessages || t.b.bytes()+u.bytes() > maxTxnBytes) {
		if err := t.commit(); err != nil {
			return err
		}
	}
	t.b.append(u)
	return nil
}

func (t *txn) commit() error {
	if t.b.messages() == 0 {
		return t.b.err
	}
	defer t.b.reset()
	t.k.stats.transactions++
	if err := t.k.w.send(&t.b); err != nil {
		return fmt.Errorf("nftables transaction on the tables of ip %s: %w", t.k.table, err)
	}
	return nil
}

func encodeKey(kind KeyKind, k Key) []byte {
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

// sharedSets are the fixed sets and maps whose elements the proxy reads back at start: the
// main table's and the shards' (a name means the same set wherever it is).
var sharedSets = map[string]KeyKind{
	setClusterIPs: KeyAddr, setNodePortIPs: KeyAddr,
	mapServiceIPs: KeyAddrProtoPort, mapNoEndpointServices: KeyAddrProtoPort,
	mapServiceNodePorts: KeyProtoPort, mapNoEndpointNodePorts: KeyProtoPort,
}

// encodeRules encodes the chain's rules into the unit, each compiled from the model's
// primitives, with the anonymous maps they use before them.
func (t *txn) encodeRules(table string, c *Chain) {
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
		t.k.stats.rules++
	}
}

// elementOps queues element additions or deletions (replacements: both, in one unit),
// grouped by set and chunked.
func (t *txn) elementOps(table string, elems []Element, defs map[string]Set, del, add bool) error {
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
			n := min(len(list), maxSetElems)
			if del {
				t.unit.setElements(table, def, list[:n], true)
			}
			if add {
				t.unit.setElements(table, def, list[:n], false)
			}
			if err := t.push(); err != nil {
				return err
			}
			t.k.stats.elements += n
			list = list[n:]
		}
	}
	return nil
}

// queue adds a table's plan to the transaction (see plan for the order), committing what
// came before whenever the bound would be passed.
func (t *txn) queue(table string, p *plan, defs map[string]Set, createTable bool) error {
	k := t.k
	if createTable {
		t.unit.addTable(table)
		if err := t.push(); err != nil {
			return err
		}
	}
	for _, s := range p.addSets {
		t.unit.addSet(table, s)
		if err := t.push(); err != nil {
			return err
		}
		k.stats.sets++
	}
	for _, c := range p.addChains {
		t.unit.addChain(table, c)
		if err := t.push(); err != nil {
			return err
		}
		k.stats.chains++
	}
	for _, c := range p.addChains {
		if err := t.fill(table, c, false); err != nil {
			return err
		}
	}
	for _, c := range p.fillChains {
		if err := t.fill(table, c, true); err != nil {
			return err
		}
	}
	if err := t.elementOps(table, p.delElems, defs, true, false); err != nil {
		return err
	}
	if err := t.elementOps(table, p.replElems, defs, true, true); err != nil {
		return err
	}
	if err := t.elementOps(table, p.addElems, defs, false, true); err != nil {
		return err
	}
	for _, name := range p.delChains {
		t.unit.flushChain(table, name)
		if err := t.push(); err != nil {
			return err
		}
	}
	for _, name := range p.delChains {
		t.unit.delChain(table, name)
		if err := t.push(); err != nil {
			return err
		}
		k.stats.chains++
	}
	for _, name := range p.delSets {
		t.unit.delSet(table, name)
		if err := t.push(); err != nil {
			return err
		}
		k.stats.sets++
	}
	return nil
}

// fill queues a chain's rules (after a flush when it already existed) as one atomic unit.
func (t *txn) fill(table string, c *Chain, flush bool) error {
	if flush {
		t.unit.flushChain(table, c.Name)
		t.k.stats.chains++
	}
	t.encodeRules(table, c)
	return t.push()
}

// deleteTable queues the removal of a whole table.
func (t *txn) deleteTable(name string) error {
	t.unit.delTable(name)
	return t.push()
}

func (k *kernel) syncModel(ks kernelState, m *Model) error {
	defs := m.setDefs()
	views := m.tables()
	plans := make([]*plan, len(views))
	for i, v := range views {
		p, err := reconcile(ks[v.name], v.frags)
		if errors.Is(err, errRecreate) {
			slog.Warn("proxy: a table holds a set the proxy would define differently; recreating the table", "table", v.name, "err", err)
			t := k.begin()
			if err := t.deleteTable(v.name); err != nil {
				return err
			}
			if err := t.commit(); err != nil {
				return err
			}
			delete(ks, v.name)
			p, err = reconcile(nil, v.frags)
		}
		if err != nil {
			return err
		}
		plans[i] = p
	}
	t := k.begin()
	mainAdds, mainDels := plans[0].split()
	if err := t.queue(views[0].name, mainAdds, defs, true); err != nil {
		return err
	}
	for i := 1; i < len(views); i++ {
		if err := t.queue(views[i].name, plans[i], defs, true); err != nil {
			return err
		}
	}
	if err := t.queue(views[0].name, mainDels, defs, false); err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, v := range views {
		wanted[v.name] = true
	}
	for _, name := range sortedTables(ks) {
		if !wanted[name] {
			if err := t.deleteTable(name); err != nil {
				return err
			}
		}
	}
	return t.commit()
}

func sortedTables(ks kernelState) []string {
	out := make([]string, 0, len(ks))
	for n := range ks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// read lists the proxy's tables once: their chains, their sets and the fixed sets' element
// keys.
func (k *kernel) read() (kernelState, error) {
	ks := kernelState{}
	tables, err := k.conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == k.table || isShardTable(k.table, t.Name) {
			ks[t.Name] = &kstate{chains: map[string]bool{}, sets: map[string]Set{}, elems: map[elemID]bool{}}
		}
	}
	if len(ks) == 0 {
		return ks, nil
	}
	chains, err := k.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains of the tables of ip %s: %w", k.table, err)
	}
	for _, c := range chains {
		if ts := ks[c.Table.Name]; ts != nil {
			ts.chains[c.Name] = true
		}
	}
	for _, name := range sortedTables(ks) {
		if err := k.readSets(name, ks[name]); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

func (k *kernel) readSets(name string, ts *kstate) error {
	sets, err := k.conn.GetSets(&nftables.Table{Name: name, Family: nftables.TableFamilyIPv4})
	if err != nil {
		return fmt.Errorf("list sets of table ip %s: %w", name, err)
	}
	for _, s := range sets {
		if s.Anonymous || strings.HasPrefix(s.Name, "__") {
			continue // a rule's own map (numgen): goes with the rule
		}
		def := Set{Name: s.Name, Map: s.IsMap}
		def.Key = KeyKind(255) // a type the proxy does not use: recreated
		for _, kind := range []KeyKind{KeyAddr, KeyProtoPort, KeyAddrProtoPort} {
			if kt := setKeyType(kind); s.KeyType.GetNFTMagic() == kt.GetNFTMagic() {
				def.Key = kind
			}
		}
		if kind, ok := sharedSets[s.Name]; ok && s.IsMap {
			// google/nftables v0.3.0 reports a map's data type as its key type: the
			// fixed maps' key types are taken as the proxy made them.
			def.Key = kind
		}
		if s.HasTimeout {
			def.Timeout = s.Timeout
		}
		ts.sets[s.Name] = def
		kind, shared := sharedSets[s.Name]
		if !shared {
			continue
		}
		elems, err := k.conn.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("list elements of set %s in table ip %s: %w", s.Name, name, err)
		}
		for _, e := range elems {
			if key, ok := decodeKey(kind, e.Key); ok {
				ts.elems[elemID{s.Name, key}] = true
			}
		}
	}
	return nil
}

// deleteTables removes, in one transaction, the proxy's tables that exist: the main table
// and its shard tables of any shard count.
func (k *kernel) deleteTables() error {
	ks, err := k.read()
	if err != nil || len(ks) == 0 {
		return err
	}
	t := k.begin()
	for _, name := range sortedTables(ks) {
		if err := t.deleteTable(name); err != nil {
			return err
		}
	}
	if err := t.commit(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete the tables of ip %s: %w", k.table, err)
	}
	return nil
}

// Cleanup removes the proxy's tables: the main table named table and its shard tables
// (table-s00, table-s01, ...), for `havre agent reset`. Tables that are not there are not an
// error.
func Cleanup(table string) error {
	return cleanup(table, -1)
}

func cleanup(table string, nsFD int) error {
	k, err := newKernel(table, nsFD)
	if err != nil {
		return err
	}
	defer k.close()
	return k.deleteTables()
}
