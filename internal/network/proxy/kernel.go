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
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Bounds of one transaction: a cold sync of 10,000 Services is sent as several of these,
// never as one giant netlink message.
const (
	maxTxnMessages = 1000
	maxTxnBytes    = 192 << 10 // estimated: under the socket's default send buffer
	maxSetElems    = 256       // elements per element message
)

// kernel programs the proxy's tables over netlink: the main table and its shards.
type kernel struct {
	conn   *nftables.Conn
	table  string // the main table's name
	tables map[string]*nftables.Table
	// what the last transactions sent, for metrics
	stats applyStats
}

type applyStats struct {
	transactions, chains, rules, elements, sets int
}

func newKernel(table string, nsFD int) (*kernel, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		_ = c.SetReadBuffer(8 << 20) // room for a transaction's acknowledgements
		_ = c.SetWriteBuffer(4 << 20)
		return nil
	})}
	if nsFD >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFD))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket for nftables (is the process root, with CAP_NET_ADMIN?): %w", err)
	}
	return &kernel{conn: c, table: table, tables: map[string]*nftables.Table{}}, nil
}

func (k *kernel) close() { _ = k.conn.CloseLasting() }

func (k *kernel) tableRef(name string) *nftables.Table {
	t := k.tables[name]
	if t == nil {
		t = &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
		k.tables[name] = t
	}
	return t
}

// txn batches messages, possibly for several tables, and commits them when a unit would
// overflow the bound. The kernel validates, at each commit, only the tables it touched.
type txn struct {
	k     *kernel
	msgs  int
	bytes int
}

// begin starts a sequence of bounded transactions.
func (k *kernel) begin() *txn {
	k.stats = applyStats{}
	return &txn{k: k}
}

// unit makes room for an atomic group of n messages of about size bytes: everything queued
// so far is committed first if the group would not fit.
func (t *txn) unit(n int) error { return t.unitSized(n, n*128) }

func (t *txn) unitSized(n, size int) error {
	var err error
	if t.msgs > 0 && (t.msgs+n > maxTxnMessages || t.bytes+size > maxTxnBytes) {
		err = t.commit()
	}
	t.bytes += size
	return err
}

func (t *txn) commit() error {
	if t.msgs == 0 {
		return nil
	}
	t.msgs, t.bytes = 0, 0
	t.k.stats.transactions++
	if err := t.k.conn.Flush(); err != nil {
		return fmt.Errorf("nftables transaction on the tables of ip %s: %w", t.k.table, err)
	}
	return nil
}

func setKeyType(k KeyKind) nftables.SetDatatype {
	switch k {
	case KeyAddr:
		return nftables.TypeIPAddr
	case KeyProtoPort:
		return protoPortType
	default:
		return addrProtoPortType
	}
}

var (
	protoPortType     = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	addrProtoPortType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
)

func nftSet(table *nftables.Table, s Set) *nftables.Set {
	ns := &nftables.Set{Table: table, Name: s.Name, KeyType: setKeyType(s.Key), Comment: s.Comment, Concatenation: s.Key != KeyAddr}
	if s.Map {
		ns.IsMap = true
		ns.DataType = nftables.TypeVerdict
	}
	if s.Timeout > 0 {
		ns.HasTimeout, ns.Dynamic, ns.Timeout = true, true, s.Timeout
	}
	return ns
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

func chainRef(table *nftables.Table, name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: table}
}

func (k *kernel) addChain(table *nftables.Table, c *Chain) {
	nc := chainRef(table, c.Name)
	if c.Base != nil {
		accept := nftables.ChainPolicyAccept
		nc.Policy = &accept
		nc.Type = nftables.ChainTypeFilter
		if c.Base.Type == "nat" {
			nc.Type = nftables.ChainTypeNAT
		}
		nc.Hooknum = map[string]*nftables.ChainHook{
			"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
			"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
			"postrouting": nftables.ChainHookPostrouting,
		}[c.Base.Hook]
		nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Base.Priority))
	}
	k.conn.AddChain(nc)
}

// ruleMessages is how many messages a chain's rules take, and about how many bytes.
func ruleMessages(c *Chain) (n, size int) {
	n = len(c.Rules)
	for _, r := range c.Rules {
		size += 256 + len(c.Name) + len(r.Comment)
		switch s := r.Stmt.(type) {
		case StmtNumgen:
			n += 2
			for _, t := range s.Targets {
				size += 64 + len(t)
			}
		case StmtVerdict:
			size += len(s.Chain)
		case StmtAffinity:
			size += len(s.Set)
		}
		for _, m := range r.Match {
			if m, ok := m.(MatchAddrInSet); ok {
				size += len(m.Set)
			}
		}
	}
	return n, size
}

// addRules queues the chain's rules, each compiled from the model's primitives.
func (k *kernel) addRules(table *nftables.Table, c *Chain) error {
	ref := chainRef(table, c.Name)
	for _, r := range c.Rules {
		cc := &compiler{table: table}
		var exprs []expr.Any
		for _, m := range r.Match {
			exprs = append(exprs, m.compile(cc)...)
		}
		exprs = append(exprs, r.Stmt.compile(cc)...)
		for _, a := range cc.anon {
			if err := k.conn.AddSet(a.set, a.elems); err != nil {
				return err
			}
			for _, e := range exprs {
				if l, ok := e.(*expr.Lookup); ok && l.SetName == anonRef {
					l.SetName, l.SetID = a.set.Name, a.set.ID
				}
			}
		}
		nr := &nftables.Rule{Table: table, Chain: ref, Exprs: exprs}
		if r.Comment != "" {
			nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
		}
		k.conn.AddRule(nr)
		k.stats.rules++
	}
	return nil
}

func nftElement(e Element, kind KeyKind, isMap bool) nftables.SetElement {
	se := nftables.SetElement{Key: encodeKey(kind, e.Key)}
	if isMap {
		se.VerdictData = nftVerdict(e.Verdict)
	}
	return se
}

// elementOps queues element additions or deletions, grouped by set and chunked.
func (t *txn) elementOps(table *nftables.Table, elems []Element, defs map[string]Set, del, add bool) error {
	k := t.k
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
		ns := &nftables.Set{Table: table, Name: name}
		list := bySet[name]
		for len(list) > 0 {
			n := min(len(list), maxSetElems)
			chunk := make([]nftables.SetElement, n)
			for i, e := range list[:n] {
				chunk[i] = nftElement(e, def.Key, def.Map)
			}
			msgs, size := 0, 0
			for _, e := range list[:n] {
				size += 48 + len(e.Verdict.Chain)
			}
			if del {
				msgs++
			}
			if add {
				msgs++
			}
			if err := t.unitSized(msgs, msgs*size); err != nil {
				return err
			}
			if del {
				if err := k.conn.SetDeleteElements(ns, chunk); err != nil {
					return err
				}
			}
			if add {
				if err := k.conn.SetAddElements(ns, chunk); err != nil {
					return err
				}
			}
			t.msgs += msgs
			k.stats.elements += n
			list = list[n:]
		}
	}
	return nil
}

// queue adds a table's plan to the transaction (see plan for the order), committing what
// came before whenever the bound would be passed.
func (t *txn) queue(name string, p *plan, defs map[string]Set, createTable bool) error {
	k := t.k
	table := k.tableRef(name)
	if createTable {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.AddTable(table)
		t.msgs++
	}
	for _, s := range p.addSets {
		if err := t.unit(1); err != nil {
			return err
		}
		if err := k.conn.AddSet(nftSet(table, s), nil); err != nil {
			return err
		}
		t.msgs++
		k.stats.sets++
	}
	for _, c := range p.addChains {
		if err := t.unit(1); err != nil {
			return err
		}
		k.addChain(table, c)
		t.msgs++
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
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.FlushChain(chainRef(table, name))
		t.msgs++
	}
	for _, name := range p.delChains {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.DelChain(chainRef(table, name))
		t.msgs++
		k.stats.chains++
	}
	for _, name := range p.delSets {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.DelSet(&nftables.Set{Table: table, Name: name})
		t.msgs++
		k.stats.sets++
	}
	return nil
}

// fill queues a chain's rules (after a flush when it already existed) as one atomic unit.
func (t *txn) fill(table *nftables.Table, c *Chain, flush bool) error {
	n, size := ruleMessages(c)
	if flush {
		n++
		size += 128
	}
	if err := t.unitSized(n, size); err != nil {
		return err
	}
	if flush {
		t.k.conn.FlushChain(chainRef(table, c.Name))
		t.k.stats.chains++
	}
	if err := t.k.addRules(table, c); err != nil {
		return err
	}
	t.msgs += n
	return nil
}

// deleteTable queues the removal of a whole table.
func (t *txn) deleteTable(name string) error {
	if err := t.unit(1); err != nil {
		return err
	}
	t.k.conn.DelTable(t.k.tableRef(name))
	t.msgs++
	return nil
}

// syncModel turns what the kernel holds (ks, read once) into the whole model m: the main
// table's additions, every shard, the main table's removals, then the removal of shard
// tables m does not have (the shard count went down).
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
	sets, err := k.conn.GetSets(k.tableRef(name))
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
