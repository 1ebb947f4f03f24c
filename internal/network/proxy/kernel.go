package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
)

// Bounds of one transaction: a cold sync of 10,000 Services is sent as many of these, never
// as one giant netlink message.
const (
	maxTxnMessages = 1000
	maxTxnBytes    = 192 << 10 // estimated: under the socket's default send buffer
	maxSetElems    = 256       // elements per element message
)

// kernel programs one table over netlink.
type kernel struct {
	conn  *nftables.Conn
	table *nftables.Table
	// what the last apply sent, for metrics
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
	return &kernel{conn: c, table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}}, nil
}

func (k *kernel) close() { _ = k.conn.CloseLasting() }

// txn batches messages and commits them when a unit would overflow the bound.
type txn struct {
	k     *kernel
	msgs  int
	bytes int
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
		return fmt.Errorf("nftables transaction on table ip %s: %w", t.k.table.Name, err)
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

func (k *kernel) nftSet(s Set) *nftables.Set {
	ns := &nftables.Set{Table: k.table, Name: s.Name, KeyType: setKeyType(s.Key), Comment: s.Comment, Concatenation: s.Key != KeyAddr}
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

// sharedSets are the fixed sets and maps whose elements the proxy reads back at start.
var sharedSets = map[string]KeyKind{
	setClusterIPs: KeyAddr, setNodePortIPs: KeyAddr,
	mapServiceIPs: KeyAddrProtoPort, mapNoEndpointServices: KeyAddrProtoPort,
	mapServiceNodePorts: KeyProtoPort, mapNoEndpointNodePorts: KeyProtoPort,
}

func (k *kernel) chainRef(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: k.table}
}

func (k *kernel) addChain(c *Chain) {
	nc := k.chainRef(c.Name)
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
func (k *kernel) addRules(c *Chain) error {
	ref := k.chainRef(c.Name)
	for _, r := range c.Rules {
		cc := &compiler{table: k.table}
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
		nr := &nftables.Rule{Table: k.table, Chain: ref, Exprs: exprs}
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
func (k *kernel) elementOps(t *txn, elems []Element, defs map[string]Set, del, add bool) error {
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
		ns := &nftables.Set{Table: k.table, Name: name}
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

// apply sends the plan in bounded transactions (see plan for the order).
func (k *kernel) apply(p *plan, defs map[string]Set, createTable bool) error {
	k.stats = applyStats{}
	t := &txn{k: k}
	if createTable {
		k.conn.AddTable(k.table)
		t.msgs++
	}
	for _, s := range p.addSets {
		if err := t.unit(1); err != nil {
			return err
		}
		if err := k.conn.AddSet(k.nftSet(s), nil); err != nil {
			return err
		}
		t.msgs++
		k.stats.sets++
	}
	for _, c := range p.addChains {
		if err := t.unit(1); err != nil {
			return err
		}
		k.addChain(c)
		t.msgs++
		k.stats.chains++
	}
	for _, c := range p.addChains {
		if err := t.fill(c, false); err != nil {
			return err
		}
	}
	for _, c := range p.fillChains {
		if err := t.fill(c, true); err != nil {
			return err
		}
	}
	if err := k.elementOps(t, p.delElems, defs, true, false); err != nil {
		return err
	}
	if err := k.elementOps(t, p.replElems, defs, true, true); err != nil {
		return err
	}
	if err := k.elementOps(t, p.addElems, defs, false, true); err != nil {
		return err
	}
	for _, name := range p.delChains {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.FlushChain(k.chainRef(name))
		t.msgs++
	}
	for _, name := range p.delChains {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.DelChain(k.chainRef(name))
		t.msgs++
		k.stats.chains++
	}
	for _, name := range p.delSets {
		if err := t.unit(1); err != nil {
			return err
		}
		k.conn.DelSet(&nftables.Set{Table: k.table, Name: name})
		t.msgs++
		k.stats.sets++
	}
	return t.commit()
}

// fill queues a chain's rules (after a flush when it already existed) as one atomic unit.
func (t *txn) fill(c *Chain, flush bool) error {
	n, size := ruleMessages(c)
	if flush {
		n++
		size += 128
	}
	if err := t.unitSized(n, size); err != nil {
		return err
	}
	if flush {
		t.k.conn.FlushChain(t.k.chainRef(c.Name))
		t.k.stats.chains++
	}
	if err := t.k.addRules(c); err != nil {
		return err
	}
	t.msgs += n
	return nil
}

// read lists the table once: its chains, its sets and the shared maps' element keys.
func (k *kernel) read() (*kstate, error) {
	ks := &kstate{chains: map[string]bool{}, sets: map[string]Set{}, elems: map[elemID]bool{}}
	tables, err := k.conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == k.table.Name {
			ks.exists = true
		}
	}
	if !ks.exists {
		return ks, nil
	}
	chains, err := k.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains of table ip %s: %w", k.table.Name, err)
	}
	for _, c := range chains {
		if c.Table.Name == k.table.Name {
			ks.chains[c.Name] = true
		}
	}
	sets, err := k.conn.GetSets(k.table)
	if err != nil {
		return nil, fmt.Errorf("list sets of table ip %s: %w", k.table.Name, err)
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
		ks.sets[s.Name] = def
		kind, shared := sharedSets[s.Name]
		if !shared {
			continue
		}
		elems, err := k.conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s in table ip %s: %w", s.Name, k.table.Name, err)
		}
		for _, e := range elems {
			if key, ok := decodeKey(kind, e.Key); ok {
				ks.elems[elemID{s.Name, key}] = true
			}
		}
	}
	return ks, nil
}

// deleteTable removes the table and everything in it, if it exists.
func (k *kernel) deleteTable() error {
	ks, err := k.read()
	if err != nil || !ks.exists {
		return err
	}
	k.conn.DelTable(k.table)
	if err := k.conn.Flush(); err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("delete table ip %s: %w", k.table.Name, err)
	}
	return nil
}

var errNotFound = errors.New("not found")

// Cleanup removes the proxy's table (for `havre agent reset`). A table that is not there is
// not an error.
func Cleanup(table string) error {
	return cleanup(table, -1)
}

func cleanup(table string, nsFD int) error {
	k, err := newKernel(table, nsFD)
	if err != nil {
		return err
	}
	defer k.close()
	return k.deleteTable()
}
