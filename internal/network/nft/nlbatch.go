package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Tables are written with nf_tables batches of our own, encoded here; google/nftables
// marshals every rule expression and reads the tables back (once, at start). Why: google/
// nftables v0.3.0 asks the kernel to acknowledge every message and to echo every rule, and
// receives each reply with two system calls and a fresh page; a cold sync of 10,000 Services
// is ~110,000 messages, and receiving their replies cost more than the kernel's own work. A
// batch here asks one acknowledgement, for its last message, as nft does; the kernel still
// reports every failing message. The messages are encoded into one buffer, sent with one
// sendmsg.

// Constants golang.org/x/sys/unix lacks.
const (
	nftaSetFieldLen = 1 // NFTA_SET_FIELD_LEN, in an element of NFTA_SET_DESC_CONCAT
	nfDrop          = 0 // NF_DROP
	nfAccept        = 1 // NF_ACCEPT

	nlmsgHdrLen = 16 // struct nlmsghdr
	nlaHdrLen   = 4  // struct nlattr
)

// msgInfo says what a message of a batch does, for errors.
type msgInfo struct {
	op, table, name string
}

// batch is the messages of one nf_tables transaction, encoded back to back (struct nlmsghdr,
// struct nfgenmsg, attributes); sequence numbers are set when it is sent.
type batch struct {
	buf  []byte
	offs []int // where each message starts
	info []msgInfo
	err  error // the first encoding error
}

func (b *batch) reset() {
	b.buf, b.offs, b.info, b.err = b.buf[:0], b.offs[:0], b.info[:0], nil
}

func (b *batch) messages() int { return len(b.offs) }
func (b *batch) bytes() int    { return len(b.buf) }

func (b *batch) append(o *batch) {
	base := len(b.buf)
	b.buf = append(b.buf, o.buf...)
	for _, off := range o.offs {
		b.offs = append(b.offs, base+off)
	}
	b.info = append(b.info, o.info...)
	if b.err == nil {
		b.err = o.err
	}
}

// msg starts a message; end finishes it.
func (b *batch) msg(typ int, flags uint16, info msgInfo) int {
	start := len(b.buf)
	b.offs = append(b.offs, start)
	b.info = append(b.info, info)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, 0) // length, set by end
	b.buf = binary.NativeEndian.AppendUint16(b.buf, uint16(unix.NFNL_SUBSYS_NFTABLES<<8|typ))
	b.buf = binary.NativeEndian.AppendUint16(b.buf, unix.NLM_F_REQUEST|flags)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, 0) // sequence, set when sent
	b.buf = binary.NativeEndian.AppendUint32(b.buf, 0) // port id: the kernel's
	b.buf = append(b.buf, unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0)
	return start
}

func (b *batch) end(start int) {
	binary.NativeEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
}

// attr appends an attribute (its payload padded to 4 bytes).
func (b *batch) attr(typ uint16, data []byte) {
	if len(data) > 0xffff-nlaHdrLen && b.err == nil {
		b.err = fmt.Errorf("netlink attribute %d of %d bytes is too large", typ, len(data))
	}
	b.buf = binary.NativeEndian.AppendUint16(b.buf, uint16(nlaHdrLen+len(data)))
	b.buf = binary.NativeEndian.AppendUint16(b.buf, typ)
	b.buf = append(b.buf, data...)
	b.pad()
}

func (b *batch) pad() {
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
}

func (b *batch) str(typ uint16, s string) {
	b.buf = binary.NativeEndian.AppendUint16(b.buf, uint16(nlaHdrLen+len(s)+1))
	b.buf = binary.NativeEndian.AppendUint16(b.buf, typ)
	b.buf = append(b.buf, s...)
	b.buf = append(b.buf, 0)
	b.pad()
}

func (b *batch) u32(typ uint16, v uint32) { b.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }

// nest starts a nested attribute; unnest finishes it.
func (b *batch) nest(typ uint16) int {
	start := len(b.buf)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, uint32(unix.NLA_F_NESTED|typ)<<16)
	return start
}

func (b *batch) unnest(start int) {
	n := len(b.buf) - start
	if n > 0xffff && b.err == nil {
		b.err = fmt.Errorf("nested netlink attribute of %d bytes is too large", n)
	}
	binary.NativeEndian.PutUint16(b.buf[start:], uint16(n))
}

func (b *batch) addTable(name string) {
	m := b.msg(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, msgInfo{"add table", name, name})
	b.str(unix.NFTA_TABLE_NAME, name)
	b.u32(unix.NFTA_TABLE_FLAGS, 0)
	b.end(m)
}

func (b *batch) delTable(name string) {
	m := b.msg(unix.NFT_MSG_DELTABLE, 0, msgInfo{"delete table", name, name})
	b.str(unix.NFTA_TABLE_NAME, name)
	b.end(m)
}

var hookNums = map[string]uint32{
	"prerouting": unix.NF_INET_PRE_ROUTING, "input": unix.NF_INET_LOCAL_IN, "forward": unix.NF_INET_FORWARD,
	"output": unix.NF_INET_LOCAL_OUT, "postrouting": unix.NF_INET_POST_ROUTING,
}

func (b *batch) addChain(table string, c *Chain) {
	m := b.msg(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE, msgInfo{"add chain", table, c.Name})
	b.str(unix.NFTA_CHAIN_TABLE, table)
	b.str(unix.NFTA_CHAIN_NAME, c.Name)
	if c.Base != nil {
		num, ok := hookNums[c.Base.Hook]
		if !ok && b.err == nil {
			b.err = fmt.Errorf("chain %s: unknown hook %q", c.Name, c.Base.Hook)
		}
		h := b.nest(unix.NFTA_CHAIN_HOOK)
		b.u32(unix.NFTA_HOOK_HOOKNUM, num)
		b.u32(unix.NFTA_HOOK_PRIORITY, uint32(int32(c.Base.Priority)))
		b.unnest(h)
		b.u32(unix.NFTA_CHAIN_POLICY, nfAccept)
		b.str(unix.NFTA_CHAIN_TYPE, c.Base.Type)
	}
	b.end(m)
}

func (b *batch) delChain(table, name string) {
	m := b.msg(unix.NFT_MSG_DELCHAIN, 0, msgInfo{"delete chain", table, name})
	b.str(unix.NFTA_CHAIN_TABLE, table)
	b.str(unix.NFTA_CHAIN_NAME, name)
	b.end(m)
}

// flushChain removes every rule of a chain.
func (b *batch) flushChain(table, name string) {
	m := b.msg(unix.NFT_MSG_DELRULE, 0, msgInfo{"flush chain", table, name})
	b.str(unix.NFTA_RULE_TABLE, table)
	b.str(unix.NFTA_RULE_CHAIN, name)
	b.end(m)
}

// addRule appends a rule, its expressions marshalled by google/nftables.
func (b *batch) addRule(table, chain string, exprs []expr.Any, comment string) {
	m := b.msg(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, msgInfo{"add rule to chain", table, chain})
	b.str(unix.NFTA_RULE_TABLE, table)
	b.str(unix.NFTA_RULE_CHAIN, chain)
	l := b.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range exprs {
		data, err := expr.Marshal(unix.NFPROTO_IPV4, e)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("marshal %T of a rule of chain %s: %w", e, chain, err)
		}
		el := b.nest(unix.NFTA_LIST_ELEM)
		b.buf = append(b.buf, data...) // attributes, each padded
		b.unnest(el)
	}
	b.unnest(l)
	if comment != "" {
		b.attr(unix.NFTA_RULE_USERDATA, userdata.AppendString(nil, userdata.TypeComment, comment))
	}
	b.end(m)
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

// addSet adds a named set or verdict map.
func (b *batch) addSet(table string, s Set) {
	kt := setKeyType(s.Key)
	flags := uint32(0)
	if s.Map {
		flags |= unix.NFT_SET_MAP
	}
	if s.Timeout > 0 {
		flags |= unix.NFT_SET_TIMEOUT | unix.NFT_SET_EVAL
	}
	if s.Key != KeyAddr {
		flags |= nftables.NFT_SET_CONCAT
	}
	m := b.msg(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, msgInfo{"add set", table, s.Name})
	b.str(unix.NFTA_SET_TABLE, table)
	b.str(unix.NFTA_SET_NAME, s.Name)
	b.u32(unix.NFTA_SET_FLAGS, flags)
	b.u32(unix.NFTA_SET_KEY_TYPE, kt.GetNFTMagic())
	b.u32(unix.NFTA_SET_KEY_LEN, kt.Bytes)
	b.u32(unix.NFTA_SET_ID, anonID.Add(1)) // any ID unique within the transaction
	if s.Map {
		b.u32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
		b.u32(unix.NFTA_SET_DATA_LEN, 0)
	}
	if s.Timeout > 0 {
		b.attr(unix.NFTA_SET_TIMEOUT, binary.BigEndian.AppendUint64(nil, uint64(s.Timeout.Milliseconds())))
	}
	if s.Key != KeyAddr {
		// The concatenation's fields, so that the kernel (and nft) know where each ends.
		d := b.nest(unix.NFTA_SET_DESC)
		c := b.nest(nftables.NFTA_SET_DESC_CONCAT)
		for _, f := range nftables.ConcatSetTypeElements(kt) {
			e := b.nest(unix.NFTA_LIST_ELEM)
			b.u32(nftaSetFieldLen, f.Bytes)
			b.unnest(e)
		}
		b.unnest(c)
		b.unnest(d)
	}
	if s.Comment != "" {
		b.attr(unix.NFTA_SET_USERDATA, userdata.AppendString(nil, userdata.NFTNL_UDATA_SET_COMMENT, s.Comment))
	}
	b.end(m)
}

// addAnonMap adds a rule's own constant verdict map (numgen's), its elements in chunks.
func (b *batch) addAnonMap(table string, a anonMap) {
	m := b.msg(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, msgInfo{"add map", table, a.name})
	b.str(unix.NFTA_SET_TABLE, table)
	b.str(unix.NFTA_SET_NAME, a.name)
	b.u32(unix.NFTA_SET_FLAGS, unix.NFT_SET_ANONYMOUS|unix.NFT_SET_CONSTANT|unix.NFT_SET_MAP)
	b.u32(unix.NFTA_SET_KEY_TYPE, nftables.TypeInteger.GetNFTMagic())
	b.u32(unix.NFTA_SET_KEY_LEN, 4)
	b.u32(unix.NFTA_SET_ID, a.id)
	b.u32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
	b.u32(unix.NFTA_SET_DATA_LEN, 0)
	d := b.nest(unix.NFTA_SET_DESC)
	b.u32(unix.NFTA_SET_DESC_SIZE, uint32(len(a.targets)))
	b.unnest(d)
	// The keys are numgen's results, in host byte order (for nft to print them).
	b.attr(unix.NFTA_SET_USERDATA, userdata.AppendUint32(nil, userdata.NFTNL_UDATA_SET_KEYBYTEORDER, 1))
	b.end(m)
	for start := 0; start < len(a.targets); start += MaxSetElems {
		chunk := a.targets[start:min(start+MaxSetElems, len(a.targets))]
		m := b.msg(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, msgInfo{"add elements to map", table, a.name})
		b.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
		b.str(unix.NFTA_SET_ELEM_LIST_SET, a.name)
		b.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, a.id)
		l := b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
		var key [4]byte
		for i, target := range chunk {
			binary.NativeEndian.PutUint32(key[:], uint32(start+i))
			b.element(key[:], &Verdict{Kind: VerdictGoto, Chain: target})
		}
		b.unnest(l)
		b.end(m)
	}
}

func (b *batch) delSet(table, name string) {
	m := b.msg(unix.NFT_MSG_DELSET, 0, msgInfo{"delete set", table, name})
	b.str(unix.NFTA_SET_TABLE, table)
	b.str(unix.NFTA_SET_NAME, name)
	b.end(m)
}

// setElements adds (or deletes) elements of a named set or map, in one message.
func (b *batch) setElements(table string, def Set, elems []Element, del bool) {
	typ, flags, info := unix.NFT_MSG_NEWSETELEM, uint16(unix.NLM_F_CREATE), msgInfo{"add elements to set", table, def.Name}
	if del {
		typ, flags, info = unix.NFT_MSG_DELSETELEM, 0, msgInfo{"delete elements of set", table, def.Name}
	}
	m := b.msg(typ, flags, info)
	b.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b.str(unix.NFTA_SET_ELEM_LIST_SET, def.Name)
	l := b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for i := range elems {
		var v *Verdict
		if def.Map && !del {
			v = &elems[i].Verdict
		}
		b.element(EncodeKey(def.Key, elems[i].Key), v)
	}
	b.unnest(l)
	b.end(m)
}

// element is one element: its key and, in a verdict map, its verdict.
func (b *batch) element(key []byte, v *Verdict) {
	e := b.nest(unix.NFTA_LIST_ELEM)
	k := b.nest(unix.NFTA_SET_ELEM_KEY)
	b.attr(unix.NFTA_DATA_VALUE, key)
	b.unnest(k)
	if v != nil {
		d := b.nest(unix.NFTA_SET_ELEM_DATA)
		vd := b.nest(unix.NFTA_DATA_VERDICT)
		var code int32
		switch v.Kind {
		case VerdictAccept:
			code = nfAccept
		case VerdictDrop:
			code = nfDrop
		case VerdictReturn:
			code = unix.NFT_RETURN
		case VerdictJump:
			code = unix.NFT_JUMP
		default:
			code = unix.NFT_GOTO
		}
		b.u32(unix.NFTA_VERDICT_CODE, uint32(code))
		if v.Kind == VerdictJump || v.Kind == VerdictGoto {
			b.str(unix.NFTA_VERDICT_CHAIN, v.Chain)
		}
		b.unnest(vd)
		b.unnest(d)
	}
	b.unnest(e)
}

// nlWriter sends batches over a netlink socket of its own and reads the kernel's verdict.
type nlWriter struct {
	conn *netlink.Conn
	rc   syscall.RawConn
	seq  uint32
	buf  []byte // replies
}

func newWriter(nsFD int) (*nlWriter, error) {
	cfg := &netlink.Config{}
	if nsFD >= 0 {
		cfg.NetNS = nsFD
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket for nftables (is the process root, with CAP_NET_ADMIN?): %w", err)
	}
	// Errors without the failed message in them: replies stay small.
	_ = c.SetOption(netlink.CapAcknowledge, true)
	rc, err := c.SyscallConn()
	if err == nil {
		err = forceSendBuffer(c, rc, 2*MaxTxnBytes)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &nlWriter{conn: c, rc: rc, buf: make([]byte, 64<<10)}, nil
}

func (w *nlWriter) close() { _ = w.conn.Close() }

// forceSendBuffer makes the socket's send buffer hold a whole transaction: past
// net.core.wmem_max with CAP_NET_ADMIN, else as large as wmem_max allows.
func forceSendBuffer(c *netlink.Conn, rc syscall.RawConn, bytes int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bytes)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetWriteBuffer(bytes)
	}
	return nil
}

// send commits a batch as one transaction. The kernel has processed it (applied it, or failed
// and rolled it back) when sendmsg returns, its replies queued: the acknowledgement of the
// last message, an error for each message that failed, or one error for the whole batch.
func (w *nlWriter) send(b *batch) error {
	if b.err != nil {
		return b.err
	}
	if len(b.offs) == 0 {
		return nil
	}
	w.seq++
	first := w.seq
	buf := make([]byte, 0, len(b.buf)+2*(nlmsgHdrLen+4))
	buf = batchMsg(buf, unix.NFNL_MSG_BATCH_BEGIN, first)
	for i, off := range b.offs {
		w.seq++
		binary.NativeEndian.PutUint32(b.buf[off+8:], w.seq)
		if i == len(b.offs)-1 {
			flags := binary.NativeEndian.Uint16(b.buf[off+6:])
			binary.NativeEndian.PutUint16(b.buf[off+6:], flags|unix.NLM_F_ACK)
		}
	}
	last := w.seq
	buf = append(buf, b.buf...)
	w.seq++
	buf = batchMsg(buf, unix.NFNL_MSG_BATCH_END, w.seq)
	var serr error
	if err := w.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), buf, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return true
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("send an nftables transaction of %d messages (%d bytes): %w", len(b.offs), len(buf), serr)
	}
	return w.replies(first, last, b)
}

func batchMsg(buf []byte, typ uint16, seq uint32) []byte {
	buf = binary.NativeEndian.AppendUint32(buf, nlmsgHdrLen+4)
	buf = binary.NativeEndian.AppendUint16(buf, typ)
	buf = binary.NativeEndian.AppendUint16(buf, unix.NLM_F_REQUEST)
	buf = binary.NativeEndian.AppendUint32(buf, seq)
	buf = binary.NativeEndian.AppendUint32(buf, 0)
	// nfgenmsg: no family, version 0, resource id: nf_tables (big endian)
	return append(buf, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES)
}

// replies reads, without waiting, what the kernel queued for the batch whose messages have
// sequence numbers first (the batch begin) to last.
func (w *nlWriter) replies(first, last uint32, b *batch) error {
	var errs []error
	acked := false
	for {
		var n int
		var rerr error
		if err := w.rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), w.buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
			return true
		}); err != nil {
			return err
		}
		if errors.Is(rerr, unix.EAGAIN) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read the kernel's replies to an nftables transaction: %w", rerr)
		}
		if n > len(w.buf) {
			return fmt.Errorf("a reply of the kernel to an nftables transaction is %d bytes, more than %d", n, len(w.buf))
		}
		msgs, err := syscall.ParseNetlinkMessage(w.buf[:n])
		if err != nil {
			return fmt.Errorf("parse the kernel's replies to an nftables transaction: %w", err)
		}
		for _, m := range msgs {
			seq := m.Header.Seq
			if m.Header.Type != unix.NLMSG_ERROR || seq < first || seq > last || len(m.Data) < 4 {
				continue // an earlier transaction's, or not a reply
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				errs = append(errs, replyError(m, -code, int(seq-first)-1, b))
			}
			if seq == last {
				acked = true
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the kernel rejected the transaction, none of it applied: %w", errors.Join(errs...))
	}
	if !acked {
		return errors.New("the kernel did not acknowledge the nftables transaction")
	}
	return nil
}

// replyError describes a failed message (idx: its place in the batch, -1 for the batch
// itself): what it did, the errno and the kernel's explanation.
func replyError(m syscall.NetlinkMessage, errno int32, idx int, b *batch) error {
	what := "the transaction"
	if idx >= 0 && idx < len(b.info) {
		in := b.info[idx]
		what = in.op + " " + in.name
		if in.table != in.name {
			what += " in table ip " + in.table
		}
	}
	err := fmt.Errorf("%s: %w", what, syscall.Errno(errno))
	// After the error code and the failed message's header: NLMSGERR_ATTR_MSG, when the
	// kernel explains (extended acknowledgements, which netlink.Dial asks for).
	if m.Header.Flags&unix.NLM_F_ACK_TLVS != 0 && len(m.Data) > 4+nlmsgHdrLen {
		ad, derr := netlink.NewAttributeDecoder(m.Data[4+nlmsgHdrLen:])
		for derr == nil && ad.Next() {
			if ad.Type() == unix.NLMSGERR_ATTR_MSG {
				err = fmt.Errorf("%w (%s)", err, ad.String())
			}
		}
	}
	return err
}
