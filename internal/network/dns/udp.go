package dns

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is how many datagrams a worker reads (recvmmsg) and answers
// (sendmmsg) in one system call.
const udpBatch = 32

// maxWaiting bounds the queries of one socket waiting for an upstream at
// once; past it a query that needs one is answered SERVFAIL at once (a
// flood of uncached names must not grow the agent without bound).
var maxWaiting int64 = 1024 // a variable for tests

// batchConn is ipv4.PacketConn or ipv6.PacketConn (their Message types
// are one type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpServer answers one UDP socket bound to a specific address.
//
// miekg/dns's server starts a goroutine per datagram and makes two system
// calls per query; at tens of thousands of queries a second on a small
// node that, and growing each new goroutine's stack, is most of the cost.
// Here a few long-lived workers read queries in batches, answer at once
// what needs no waiting (cluster names, cached answers: respond with
// inline set) and send the answers in one batch. A query that has to wait
// for an upstream is handed to a goroutine of its own, so a slow upstream
// never holds up cluster names.
//
// Sockets bound to a wildcard address are served by miekg/dns's server
// instead, which answers from the address each query was sent to.
type udpServer struct {
	s       *Server
	conn    *net.UDPConn
	bc      batchConn
	wg      sync.WaitGroup // workers and slow queries
	waiting atomic.Int64   // slow queries under way
}

func newUDPServer(s *Server, conn *net.UDPConn) *udpServer {
	u := &udpServer{s: s, conn: conn}
	if conn.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		u.bc = ipv4.NewPacketConn(conn)
	} else {
		u.bc = ipv6.NewPacketConn(conn)
	}
	return u
}

// serve runs the workers until the socket is closed.
func (u *udpServer) serve() {
	n := max(2, runtime.GOMAXPROCS(0))
	for range n {
		u.wg.Add(1)
		go u.worker()
	}
	u.wg.Wait()
}

func (u *udpServer) worker() {
	defer u.wg.Done()
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.DefaultMsgSize)}
	}
	out := make([]ipv4.Message, udpBatch)
	outBufs := make([][]byte, udpBatch)
	for i := range out {
		outBufs[i] = make([]byte, dns.DefaultMsgSize) // PackBuffer packs into its length
		out[i].Buffers = make([][]byte, 1)
	}
	// One request and one answer per worker, reused: an answer is packed
	// before the next query is read into the request. A request handed to
	// a slow query's goroutine is replaced.
	req, resp := new(dns.Msg), new(dns.Msg)
	for {
		n, err := u.bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || u.s.closing.Load() {
				return
			}
			u.s.log.Debug("reading DNS queries failed", "err", err)
			continue
		}
		k := 0
		for i := range n {
			ua, ok := in[i].Addr.(*net.UDPAddr)
			b := in[i].Buffers[0][:in[i].N]
			if !ok || len(b) < 12 || b[2]&0x80 != 0 {
				continue // too short for a header, or a response: never answer those
			}
			if err := req.Unpack(b); err != nil {
				*resp = dns.Msg{}
				resp.SetRcodeFormatError(&dns.Msg{MsgHdr: dns.MsgHdr{Id: uint16(b[0])<<8 | uint16(b[1])}})
				u.s.m.request(0, dns.RcodeFormatError)
			} else {
				client, _ := netip.AddrFromSlice(ua.IP)
				if !u.s.respond(resp, client.Unmap(), req, true, true) {
					if u.waiting.Add(1) <= maxWaiting {
						// Needs an upstream: answer it on its own.
						u.wg.Add(1)
						go u.slow(req, ua)
						req = new(dns.Msg)
						continue
					}
					u.waiting.Add(-1)
					resp.SetRcode(req, dns.RcodeServerFailure)
					u.s.m.request(req.Question[0].Qtype, dns.RcodeServerFailure)
				}
			}
			packed, err := resp.PackBuffer(outBufs[k])
			if err != nil {
				u.s.log.Debug("packing a DNS answer failed", "err", err)
				continue
			}
			out[k].Buffers[0] = packed
			out[k].Addr = ua
			k++
		}
		for sent := 0; sent < k; {
			m, err := u.bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				u.s.log.Debug("sending DNS answers failed", "err", err)
				break
			}
			sent += m
		}
	}
}

// slow answers a query that needs an upstream.
func (u *udpServer) slow(req *dns.Msg, to *net.UDPAddr) {
	defer u.wg.Done()
	defer u.waiting.Add(-1)
	client, _ := netip.AddrFromSlice(to.IP)
	m := new(dns.Msg)
	u.s.respond(m, client.Unmap(), req, true, false)
	b, err := m.Pack()
	if err == nil {
		_, err = u.conn.WriteToUDP(b, to)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		u.s.log.Debug("sending a DNS answer failed", "client", to, "err", err)
	}
}
