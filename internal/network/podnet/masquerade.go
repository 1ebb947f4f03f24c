package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// MasqueradeTable names the nftables table (family ip) that masquerades
// the traffic of a bridge's pods leaving the cluster's pod network.
func MasqueradeTable(bridge string) string { return bridge + "-masq" }

// EnsureMasquerade programs, in one transaction, the table that
// masquerades traffic from the cluster's pod network to anywhere outside
// it (but multicast): pod-to-pod traffic keeps its addresses, traffic
// leaving the cluster takes the node's. It replaces the CNI bridge
// plugin's per-pod ipMasq chains, whose removal fails (and leaks the
// sandbox) when a pod's network setup was aborted half-way.
func EnsureMasquerade(conn *nftables.Conn, table string, cluster netip.Prefix) error {
	if !cluster.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %s: only IPv4 is supported", cluster)
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: table})
	c := conn.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	conn.FlushChain(c)
	var exprs []expr.Any
	exprs = append(exprs, matchPrefix(12, cluster, expr.CmpOpEq)...)
	exprs = append(exprs, matchPrefix(16, cluster, expr.CmpOpNeq)...)
	exprs = append(exprs, matchPrefix(16, netip.MustParsePrefix("224.0.0.0/4"), expr.CmpOpNeq)...)
	exprs = append(exprs, &expr.Counter{}, &expr.Masq{})
	conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: exprs,
		UserData: []byte("masquerade traffic leaving the pod network")})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("programming the masquerade table %s: %w", table, err)
	}
	return nil
}

// matchPrefix matches the IPv4 address at offset of the network header
// (12: source, 16: destination) against p.
func matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	p = p.Masked()
	m := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	addr := p.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: addr[:]},
	}
}

// RemoveTable deletes an nftables table of family ip; a missing table is
// no error.
func RemoveTable(conn *nftables.Conn, table string) error {
	conn.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: table})
	err := conn.Flush()
	if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
