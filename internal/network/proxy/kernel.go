package proxy

import (
	"errors"
	"log/slog"

	"github.com/havre/havre/internal/network/nft"
)

// kernel programs the proxy's tables over netlink: the main table and its shards.
type kernel struct {
	conn  *nft.Conn
	table string // the main table's name
}

func newKernel(table string, nsFD int) (*kernel, error) {
	c, err := nft.Open(nsFD, "the tables of ip "+table)
	if err != nil {
		return nil, err
	}
	return &kernel{conn: c, table: table}, nil
}

func (k *kernel) close() { k.conn.Close() }

// begin starts a sequence of bounded transactions (see nft.Txn).
func (k *kernel) begin() *nft.Txn { return k.conn.Begin() }

// sharedSets are the fixed sets and maps whose elements the proxy reads back at start: the
// main table's and the shards' (a name means the same set wherever it is).
var sharedSets = map[string]nft.KeyKind{
	setClusterIPs: nft.KeyAddr, setNodePortIPs: nft.KeyAddr,
	mapServiceIPs: nft.KeyAddrProtoPort, mapNoEndpointServices: nft.KeyAddrProtoPort,
	mapServiceNodePorts: nft.KeyProtoPort, mapNoEndpointNodePorts: nft.KeyProtoPort,
}

func (k *kernel) syncModel(ks kernelState, m *Model) error {
	defs := m.setDefs()
	views := m.tables()
	plans := make([]*nft.Plan, len(views))
	for i, v := range views {
		p, err := nft.Reconcile(ks[v.name], v.frags)
		if errors.Is(err, nft.ErrRecreate) {
			slog.Warn("proxy: a table holds a set the proxy would define differently; recreating the table", "table", v.name, "err", err)
			t := k.begin()
			if err := t.DeleteTable(v.name); err != nil {
				return err
			}
			if err := t.Commit(); err != nil {
				return err
			}
			delete(ks, v.name)
			p, err = nft.Reconcile(nil, v.frags)
		}
		if err != nil {
			return err
		}
		plans[i] = p
	}
	t := k.begin()
	mainAdds, mainDels := plans[0].Split()
	if err := t.Queue(views[0].name, mainAdds, defs, true); err != nil {
		return err
	}
	for i := 1; i < len(views); i++ {
		if err := t.Queue(views[i].name, plans[i], defs, true); err != nil {
			return err
		}
	}
	if err := t.Queue(views[0].name, mainDels, defs, false); err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, v := range views {
		wanted[v.name] = true
	}
	for _, name := range sortedTables(ks) {
		if !wanted[name] {
			if err := t.DeleteTable(name); err != nil {
				return err
			}
		}
	}
	return t.Commit()
}

// owns reports whether a table is one of the proxy's: the main table or a shard table of
// any shard count.
func (k *kernel) owns(name string) bool { return name == k.table || isShardTable(k.table, name) }

// read lists the proxy's tables once: their chains, their sets and the fixed sets' element
// keys.
func (k *kernel) read() (kernelState, error) {
	st, err := k.conn.ReadTables(k.owns, func(_, set string) (nft.KeyKind, bool) {
		kind, ok := sharedSets[set]
		return kind, ok
	})
	return kernelState(st), err
}

// deleteTables removes, in one transaction, the proxy's tables that exist: the main table
// and its shard tables of any shard count.
func (k *kernel) deleteTables() error { return k.conn.DeleteTables(k.owns) }

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
