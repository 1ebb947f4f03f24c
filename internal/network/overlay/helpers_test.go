package overlay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/network/netnstest"
	"github.com/havre/havre/internal/network/podnet"
)

// The kernel tests build a small cluster out of anonymous network
// namespaces: an underlay namespace with a bridge, one namespace per node
// joined to it by a veth (eth0, 100.64.0.(10+i)/24; no default route),
// and behind each node's pod bridge (havre0, 10.42.i.1/24) one pod
// namespace (eth0, 10.42.i.2/24). Every node runs an Overlay fed by an
// informer of one fake API holding the Nodes. Nothing leaves the
// namespaces; they go when the test ends.

const (
	testBridge = "havre0"
	testDevice = "havre0.vx"
	tcpPort    = 7000
	udpPort    = 7001
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type testCluster struct {
	t      testing.TB
	under  *netlink.Handle
	client *fake.Clientset
	nodes  []*testNode
	probes atomic.Int32
}

type testNode struct {
	c     *testCluster
	i     int
	name  string
	ns    netns.NsHandle
	h     *netlink.Handle
	ip    netip.Addr
	cidr  netip.Prefix
	pod   netns.NsHandle
	podH  *netlink.Handle
	podIP netip.Addr
	clock *clocktesting.FakeClock
	logs  *syncBuffer

	ov   *Overlay
	stop func()
}

// newTestCluster builds n nodes (their Node objects in the fake API, no
// overlay running yet).
func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	_, uh := netnstest.New(t)
	c := &testCluster{t: t, under: uh, client: fake.NewClientset()}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	must(t, uh.LinkAdd(br), "underlay bridge")
	brLink, err := uh.LinkByName("br0")
	must(t, err, "underlay bridge")
	must(t, uh.LinkSetUp(brLink), "underlay bridge up")
	for i := range n {
		c.nodes = append(c.nodes, c.addNode(i, brLink.Attrs().Index))
	}
	return c
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (c *testCluster) addNode(i, br int) *testNode {
	t := c.t
	t.Helper()
	ns, h := netnstest.New(t)
	pod, podH := netnstest.New(t)
	n := &testNode{c: c, i: i, name: fmt.Sprintf("n%d", i), ns: ns, h: h, pod: pod, podH: podH,
		ip:    netip.AddrFrom4([4]byte{100, 64, 0, byte(10 + i)}),
		cidr:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i), 0}), 24),
		podIP: netip.AddrFrom4([4]byte{10, 42, byte(i), 2}),
		clock: clocktesting.NewFakeClock(epoch), logs: &syncBuffer{}}

	// The underlay: eth0 on the underlay's bridge.
	must(t, c.under.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.name, MasterIndex: br}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}), "underlay veth")
	under, err := c.under.LinkByName(n.name)
	must(t, err, "underlay veth")
	must(t, c.under.LinkSetUp(under), "underlay veth up")
	eth0, err := h.LinkByName("eth0")
	must(t, err, "eth0")
	must(t, h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.ip, 24))}), "node IP")
	must(t, h.LinkSetUp(eth0), "eth0 up")
	// What the agent sets (podnet.SetSysctls), and strict reverse-path
	// filtering, which a wrong route would fall foul of.
	must(t, netnstest.Do(ns, func() error {
		for k, v := range map[string]string{"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/default/rp_filter": "1"} {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	}), "sysctls")

	// The pod: behind the node's bridge.
	gw := podnet.Gateway(n.cidr)
	must(t, podnet.EnsureBridge(h, testBridge, gw, 0), "pod bridge")
	bridge, err := h.LinkByName(testBridge)
	must(t, err, "pod bridge")
	must(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p0", MasterIndex: bridge.Attrs().Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(pod))}), "pod veth")
	p0, err := h.LinkByName("p0")
	must(t, err, "pod veth")
	must(t, h.LinkSetUp(p0), "pod veth up")
	peth, err := podH.LinkByName("eth0")
	must(t, err, "pod eth0")
	must(t, podH.AddrAdd(peth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.podIP, 24))}), "pod IP")
	must(t, podH.LinkSetUp(peth), "pod eth0 up")
	must(t, podH.RouteAdd(&netlink.Route{LinkIndex: peth.Attrs().Index, Gw: gw.Addr().AsSlice()}), "pod default route")

	_, err = c.client.CoreV1().Nodes().Create(context.Background(), node(n.name, n.ip.String(), n.cidr.String()), metav1.CreateOptions{})
	must(t, err, "Node "+n.name)
	return n
}

// start runs an Overlay on the node (edit may change its Config) and
// waits until it has programmed its peers; the pods get its MTU.
func (n *testNode) start(t testing.TB, edit func(*Config)) {
	t.Helper()
	if n.stop != nil {
		n.stop()
	}
	factory := informers.NewSharedInformerFactory(n.c.client, 0)
	cfg := Config{Device: testDevice, NodeName: n.name, NodeIP: n.ip, PodCIDR: n.cidr, Handle: n.h, Clock: n.clock,
		Logger: slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	ov, err := New(cfg, factory.Core().V1().Nodes())
	must(t, err, "New on "+n.name)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- ov.Run(ctx) }()
	var once sync.Once
	n.ov = ov
	n.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run on %s: %v", n.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run on %s did not return after its context was cancelled", n.name)
			}
			factory.Shutdown()
		})
	}
	t.Cleanup(n.stop)
	select {
	case <-ov.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("the overlay on %s was not ready after 20 s; its log:\n%s", n.name, n.logs)
	}
	n.setPodMTU(t, ov.PodMTU())
}

// setPodMTU gives the bridge and the pod's veth (both ends) mtu, as the
// agent and the CNI configuration do.
func (n *testNode) setPodMTU(t testing.TB, mtu int) {
	t.Helper()
	must(t, podnet.EnsureBridge(n.h, testBridge, podnet.Gateway(n.cidr), mtu), "bridge MTU")
	p0, err := n.h.LinkByName("p0")
	must(t, err, "p0")
	must(t, n.h.LinkSetMTU(p0, mtu), "p0 MTU")
	eth0, err := n.podH.LinkByName("eth0")
	must(t, err, "pod eth0")
	must(t, n.podH.LinkSetMTU(eth0, mtu), "pod eth0 MTU")
}

// startAll starts an overlay on every node.
func (c *testCluster) startAll(t testing.TB, edit func(*Config)) {
	t.Helper()
	for _, n := range c.nodes {
		n.start(t, edit)
	}
	c.watching(t)
}

// watching waits until every running overlay's informer watches (the fake
// API delivers no deletion that happens between an informer's list and
// its watch): a Node created now reaches a lister through the watch only.
func (c *testCluster) watching(t testing.TB) {
	t.Helper()
	name := fmt.Sprintf("probe-%d", c.probes.Add(1))
	nodes := c.client.CoreV1().Nodes()
	_, err := nodes.Create(context.Background(), &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(t, err, "probe Node")
	eventually(t, "every overlay's informer watches", func() bool {
		for _, n := range c.nodes {
			if n.ov == nil {
				continue
			}
			if _, err := n.ov.lister.Get(name); err != nil {
				return false
			}
		}
		return true
	})
	must(t, nodes.Delete(context.Background(), name, metav1.DeleteOptions{}), "probe Node")
}

// eventually waits for cond, failing the test after a generous deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// serve starts, in the pod, a TCP server that writes the client's address
// on a line and then echoes, and a UDP server that answers "<client
// address>|<payload>".
func (n *testNode) serve(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	must(t, netnstest.Do(n.pod, func() (err error) {
		if ln, err = net.Listen("tcp4", netip.AddrPortFrom(n.podIP, tcpPort).String()); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(n.podIP, udpPort).String())
		return err
	}), "pod servers")
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := fmt.Fprintf(c, "%s\n", c.RemoteAddr()); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(from.String()+"|"), buf[:k]...), from)
		}
	}()
}

// tcpConn is a connection from ns to a pod's TCP server, with the address
// the server saw it come from.
type tcpConn struct {
	net.Conn
	r    *bufio.Reader
	seen string
}

func dialTCP(ns netns.NsHandle, to netip.Addr) (*tcpConn, error) {
	var c net.Conn
	err := netnstest.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(to, tcpPort).String(), 5*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	tc := &tcpConn{Conn: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := tc.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading the server's greeting: %w", err)
	}
	tc.seen = strings.TrimSpace(line)
	return tc, nil
}

// echo sends msg and reads it back.
func (c *tcpConn) echo(msg string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, got); err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return nil
}

// udpAsk sends payload from ns to a pod's UDP server and returns the
// address the server saw.
func udpAsk(ns netns.NsHandle, to netip.Addr, payload string) (string, error) {
	var c net.Conn
	err := netnstest.Do(ns, func() (err error) {
		c, err = net.Dial("udp4", netip.AddrPortFrom(to, udpPort).String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, payload); err != nil {
		return "", err
	}
	buf := make([]byte, 65536)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	from, got, _ := strings.Cut(string(buf[:k]), "|")
	if got != payload {
		return "", fmt.Errorf("UDP answer %q, want %q", got, payload)
	}
	return from, nil
}

// pingResult is what became of an ICMP echo request.
type pingResult struct {
	reply    bool // an echo reply came back
	tooBig   bool // the sender's own route refused it (EMSGSIZE)
	fragMTU  int  // > 0: a router answered "fragmentation needed" with this MTU
	unreach  int  // >= 0: another "destination unreachable" code came back
	noAnswer bool
}

var pingID atomic.Uint32

// ping sends, from ns, one ICMP echo request of size bytes (IP header
// included) to dst, with DF set or not, and waits up to 3 s for what
// comes back.
func ping(ns netns.NsHandle, dst netip.Addr, size int, df bool) (pingResult, error) {
	res := pingResult{unreach: -1}
	var c net.PacketConn
	if err := netnstest.Do(ns, func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return res, err
	}
	defer c.Close()
	pmtu := unix.IP_PMTUDISC_DONT
	if df {
		pmtu = unix.IP_PMTUDISC_DO
	}
	raw, err := c.(*net.IPConn).SyscallConn()
	if err != nil {
		return res, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu)
	}); err != nil {
		return res, err
	}
	if serr != nil {
		return res, serr
	}
	id := int(pingID.Add(1) & 0xffff)
	payload := bytes.Repeat([]byte{'h'}, size-ipv4.HeaderLen-8)
	msg, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: payload}}).Marshal(nil)
	if err != nil {
		return res, err
	}
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			res.tooBig = true
			return res, nil
		}
		return res, err
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	for {
		k, from, err := c.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			res.noAnswer = true
			return res, nil
		}
		if err != nil {
			return res, err
		}
		m, err := icmp.ParseMessage(1, buf[:k])
		if err != nil {
			continue
		}
		switch body := m.Body.(type) {
		case *icmp.Echo:
			if m.Type == ipv4.ICMPTypeEchoReply && body.ID == id && from.String() == dst.String() {
				res.reply = true
				return res, nil
			}
		case *icmp.DstUnreach:
			// The original datagram: its IP header, then our echo
			// request's header (the ID at bytes 4-5).
			d := body.Data
			if len(d) < ipv4.HeaderLen+8 {
				continue
			}
			hl := int(d[0]&0x0f) * 4
			if len(d) < hl+8 || int(d[hl+4])<<8|int(d[hl+5]) != id {
				continue
			}
			if m.Code == 4 {
				res.fragMTU = int(buf[6])<<8 | int(buf[7])
			} else {
				res.unreach = m.Code
			}
			return res, nil
		}
	}
}

// fragCreates is the IP fragments the namespace has created (Ip:
// FragCreates in /proc/net/snmp).
func fragCreates(t testing.TB, ns netns.NsHandle) int {
	t.Helper()
	var b []byte
	must(t, netnstest.Do(ns, func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}), "reading snmp counters")
	var head []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		if i := slices.Index(head, "FragCreates"); i >= 0 && i < len(f) {
			v, err := strconv.Atoi(f[i])
			must(t, err, "FragCreates")
			return v
		}
	}
	t.Fatalf("no Ip: FragCreates in /proc/net/snmp:\n%s", b)
	return 0
}

// vxlanIndex is the node's VXLAN device's index (0: none).
func (n *testNode) vxlanIndex(t testing.TB) int {
	t.Helper()
	link, err := n.h.LinkByName(testDevice)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return 0
	}
	must(t, err, "VXLAN device")
	return link.Attrs().Index
}

// kernel is the overlay's part of the node's kernel.
func (n *testNode) kernel(t testing.TB) state {
	t.Helper()
	eth0, err := n.h.LinkByName("eth0")
	must(t, err, "eth0")
	s, err := read(n.h, links{vxlan: n.vxlanIndex(t), uplink: eth0.Attrs().Index})
	must(t, err, "reading the kernel")
	return s
}

// entriesFor tells which of the entries for peer p the node's kernel has.
func (n *testNode) entriesFor(t testing.TB, p *testNode) (route, neighbour, fdbEntry bool) {
	t.Helper()
	s := n.kernel(t)
	mac := VTEPMAC(p.ip).String()
	for _, r := range s.routes {
		route = route || r.Dst == p.cidr
	}
	for _, e := range s.neighs {
		neighbour = neighbour || e.IP == VTEPAddr(p.cidr) || e.MAC == mac
	}
	for _, f := range s.fdbs {
		fdbEntry = fdbEntry || f.MAC == mac || f.Dst == p.ip
	}
	return route, neighbour, fdbEntry
}

// snapshot renders everything of the node's network the overlay could
// have changed: links (index, MTU, MAC, flags, VXLAN settings), addresses,
// main-table routes, neighbours and forwarding entries.
func (n *testNode) snapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	ls, err := n.h.LinkList()
	must(t, err, "links")
	for _, l := range ls {
		a := l.Attrs()
		fmt.Fprintf(&b, "link %d %s mtu %d mac %s flags %v master %d\n", a.Index, a.Name, a.MTU, a.HardwareAddr, a.Flags, a.MasterIndex)
		if vx, ok := l.(*netlink.Vxlan); ok {
			fmt.Fprintf(&b, "  vxlan id %d local %s port %d dev %d learning %v\n", vx.VxlanId, vx.SrcAddr, vx.Port, vx.VtepDevIndex, vx.Learning)
		}
		addrs, err := n.h.AddrList(l, netlink.FAMILY_V4)
		must(t, err, "addresses")
		for _, ad := range addrs {
			fmt.Fprintf(&b, "  addr %s\n", ad.IPNet)
		}
	}
	routes, err := n.h.RouteList(nil, netlink.FAMILY_V4)
	must(t, err, "routes")
	for _, r := range routes {
		fmt.Fprintf(&b, "route %+v\n", fromNetlinkRoute(r))
	}
	s := n.kernel(t)
	for _, e := range s.neighs {
		fmt.Fprintf(&b, "neigh %+v\n", e)
	}
	for _, f := range s.fdbs {
		fmt.Fprintf(&b, "fdb %+v\n", f)
	}
	return b.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
