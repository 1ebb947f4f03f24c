package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/havre/havre/internal/network/netnstest"
)

// The benchmarks run in throwaway namespaces like the tests: run them one
// at a time (-run '^$' -bench Name), the machine is shared.

// pair is two nodes of their own cluster in one mode, with a connection
// from pod 0 to a discard server in pod 1.
type pair struct {
	c *testCluster
}

func newPair(b *testing.B, mode Mode) *pair {
	c := newTestCluster(b, 2)
	c.startAll(b, func(cfg *Config) { cfg.Mode = mode })
	return &pair{c: c}
}

const blastPort = 7002

// blaster sends size bytes per round over one TCP connection from pod 0
// to pod 1, whose server acknowledges each round with one byte.
type blaster struct {
	conn net.Conn
	buf  []byte
	size int64
}

func (p *pair) blaster(b *testing.B, size int64) *blaster {
	src, dst := p.c.nodes[0], p.c.nodes[1]
	var ln net.Listener
	must(b, netnstest.Do(dst.pod, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(dst.podIP, blastPort).String())
		return err
	}), "blast server")
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for {
			var got int64
			for got < size {
				k, err := c.Read(buf[:min(int64(len(buf)), size-got)])
				if err != nil {
					return
				}
				got += int64(k)
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	var conn net.Conn
	must(b, netnstest.Do(src.pod, func() (err error) {
		conn, err = net.DialTimeout("tcp4", netip.AddrPortFrom(dst.podIP, blastPort).String(), 5*time.Second)
		return err
	}), "blast client")
	b.Cleanup(func() { conn.Close() })
	return &blaster{conn: conn, buf: make([]byte, 256<<10), size: size}
}

// round sends size bytes and waits for the acknowledgement.
func (bl *blaster) round() (time.Duration, error) {
	start := time.Now()
	_ = bl.conn.SetDeadline(start.Add(time.Minute))
	for sent := int64(0); sent < bl.size; {
		k, err := bl.conn.Write(bl.buf[:min(int64(len(bl.buf)), bl.size-sent)])
		if err != nil {
			return 0, err
		}
		sent += int64(k)
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(bl.conn, ack); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func gbits(bytes int64, d time.Duration) float64 { return float64(bytes) * 8 / d.Seconds() / 1e9 }

// BenchmarkPodToPodTCP: TCP throughput from a pod to a pod on another
// node through the overlay (mode vxlan) and through the same veths routed
// directly (mode direct, no encapsulation). An op is one round of 64 MiB
// in each mode, in alternating order, so that both see the same load of
// the (shared) machine. Reported: vxlan-Gbit/s and direct-Gbit/s over all
// rounds, and the median over the ops of each op's vxlan/direct ratio
// (vxlan/direct-%), which the machine's other load disturbs least.
func BenchmarkPodToPodTCP(b *testing.B) {
	const size = 64 << 20
	vx := newPair(b, ModeVXLAN).blaster(b, size)
	direct := newPair(b, ModeDirect).blaster(b, size)
	// Warm up both (slow start, ARP).
	for range 3 {
		for _, bl := range []*blaster{vx, direct} {
			if _, err := bl.round(); err != nil {
				b.Fatal(err)
			}
		}
	}
	var tv, td time.Duration
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := []*blaster{vx, direct}
		if i%2 == 1 {
			order = []*blaster{direct, vx}
		}
		var d [2]time.Duration
		for _, bl := range order {
			dur, err := bl.round()
			if err != nil {
				b.Fatal(err)
			}
			if bl == vx {
				d[0] = dur
			} else {
				d[1] = dur
			}
		}
		tv += d[0]
		td += d[1]
		ratios = append(ratios, d[1].Seconds()/d[0].Seconds())
	}
	b.StopTimer()
	n := int64(b.N) * size
	slices.Sort(ratios)
	b.ReportMetric(gbits(n, tv), "vxlan-Gbit/s")
	b.ReportMetric(gbits(n, td), "direct-Gbit/s")
	b.ReportMetric(100*ratios[len(ratios)/2], "vxlan/direct-%")
}

// BenchmarkPodToPodIperf3: the same comparison measured by iperf3 (the
// Debian package's /usr/bin/iperf3, run in the pods' namespaces), one
// 3-second test per mode per op.
func BenchmarkPodToPodIperf3(b *testing.B) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("no iperf3: apt-get install iperf3")
	}
	pairs := []*pair{newPair(b, ModeVXLAN), newPair(b, ModeDirect)}
	var sum [2]float64
	for i := 0; i < b.N; i++ {
		for k, p := range pairs {
			bps, err := p.iperf3(b, 3)
			if err != nil {
				b.Fatal(err)
			}
			sum[k] += bps
		}
	}
	b.ReportMetric(sum[0]/float64(b.N)/1e9, "vxlan-Gbit/s")
	b.ReportMetric(sum[1]/float64(b.N)/1e9, "direct-Gbit/s")
	b.ReportMetric(100*sum[0]/sum[1], "vxlan/direct-%")
}

// inNetns starts cmd from a thread in ns: the process is born there.
func inNetns(ns netns.NsHandle, cmd *exec.Cmd) error {
	return netnstest.Do(ns, cmd.Start)
}

// iperf3 runs one iperf3 test of secs seconds from pod 0 to pod 1 and
// returns what the receiver measured (bit/s).
func (p *pair) iperf3(b *testing.B, secs int) (float64, error) {
	src, dst := p.c.nodes[0], p.c.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	server := exec.CommandContext(ctx, "iperf3", "-s", "-1", "--forceflush", "-B", dst.podIP.String(), "-p", "5201")
	out, err := server.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := inNetns(dst.pod, server); err != nil {
		return 0, err
	}
	defer func() { _ = server.Process.Kill(); _ = server.Wait() }()
	// Wait for it to listen.
	line := make([]byte, 0, 256)
	one := make([]byte, 1)
	for !strings.Contains(string(line), "listening") {
		if _, err := out.Read(one); err != nil {
			return 0, fmt.Errorf("iperf3 server: %w (%s)", err, line)
		}
		line = append(line, one[0])
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	client := exec.CommandContext(ctx, "iperf3", "-c", dst.podIP.String(), "-p", "5201", "-t", fmt.Sprint(secs), "-J")
	var stdout strings.Builder
	client.Stdout = &stdout
	if err := inNetns(src.pod, client); err != nil {
		return 0, err
	}
	if err := client.Wait(); err != nil {
		return 0, fmt.Errorf("iperf3 client: %w: %s", err, stdout.String())
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond, nil
}

// BenchmarkPodToPodRTT: round trips of a 64-byte UDP datagram between pods
// on two nodes, one per op; p50 and p99 reported in µs.
func BenchmarkPodToPodRTT(b *testing.B) {
	for _, mode := range []Mode{ModeVXLAN, ModeDirect} {
		b.Run(string(mode), func(b *testing.B) {
			p := newPair(b, mode)
			src, dst := p.c.nodes[0], p.c.nodes[1]
			dst.serve(b)
			var c net.Conn
			must(b, netnstest.Do(src.pod, func() (err error) {
				c, err = net.Dial("udp4", netip.AddrPortFrom(dst.podIP, udpPort).String())
				return err
			}), "UDP socket")
			defer c.Close()
			msg := make([]byte, 64)
			buf := make([]byte, 256)
			rtt := func() time.Duration {
				start := time.Now()
				_ = c.SetDeadline(start.Add(5 * time.Second))
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			for range 100 {
				rtt()
			}
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				samples = append(samples, rtt())
			}
			b.StopTimer()
			reportPercentiles(b, samples, time.Microsecond, "µs")
		})
	}
}

func reportPercentiles(b *testing.B, samples []time.Duration, unit time.Duration, name string) {
	slices.Sort(samples)
	at := func(q float64) float64 {
		return float64(samples[min(len(samples)-1, int(q*float64(len(samples))))]) / float64(unit)
	}
	b.ReportMetric(at(0.50), "p50-"+name)
	b.ReportMetric(at(0.99), "p99-"+name)
	b.ReportMetric(float64(samples[len(samples)-1])/float64(unit), "max-"+name)
}

// BenchmarkNewNodeReachable: from the creation of a Node object to the
// first answer of a pod on it to a pod of another node (which learns of
// it through its informer, as every agent does). UDP probes are sent
// every millisecond, or as soon as an ICMP error comes back. Between ops
// the Node is deleted and its route waited out, off the clock. The fake
// API's Create alone is reported too (create-p50-ms): it is part of the
// figure.
func BenchmarkNewNodeReachable(b *testing.B) {
	c := newTestCluster(b, 3)
	c.startAll(b, nil)
	n0, n2 := c.nodes[0], c.nodes[2]
	n2.serve(b)
	nodes := c.client.CoreV1().Nodes()
	ctx := context.Background()
	n2obj, err := nodes.Get(ctx, n2.name, metav1.GetOptions{})
	must(b, err, "Node n2")
	gone := func() {
		must(b, nodes.Delete(ctx, n2.name, metav1.DeleteOptions{}), "deleting Node n2")
		eventually(b, "n0 forgets n2", func() bool {
			r, ne, f := n0.entriesFor(b, n2)
			return !r && !ne && !f
		})
	}
	gone()
	var c0 net.Conn
	must(b, netnstest.Do(n0.pod, func() (err error) {
		c0, err = net.Dial("udp4", netip.AddrPortFrom(n2.podIP, udpPort).String())
		return err
	}), "UDP socket")
	defer c0.Close()
	buf := make([]byte, 256)
	samples := make([]time.Duration, 0, b.N)
	creates := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obj := n2obj.DeepCopy()
		obj.ResourceVersion = ""
		start := time.Now()
		if _, err := nodes.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		creates = append(creates, time.Since(start))
		for {
			if time.Since(start) > 20*time.Second {
				b.Fatalf("pod %s not reachable 20 s after its Node was created", n2.podIP)
			}
			_, _ = c0.Write([]byte("probe"))
			_ = c0.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c0.Read(buf); err == nil {
				break
			}
		}
		samples = append(samples, time.Since(start))
		b.StopTimer()
		gone()
		// Drain late answers to earlier probes.
		for {
			_ = c0.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c0.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, samples, time.Millisecond, "ms")
	slices.Sort(creates)
	b.ReportMetric(float64(creates[len(creates)/2])/float64(time.Millisecond), "create-p50-ms")
}

// BenchmarkResync: one pass over the kernel (what every resync does) on a
// node with 1,000 peers in mode vxlan, when nothing needs writing; and the
// first pass, which writes their 3,000 entries.
func BenchmarkResync(b *testing.B) {
	const peers = 1000
	_, h := netnstest.New(b)
	must(b, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}), "uplink")
	eth0, err := h.LinkByName("eth0")
	must(b, err, "uplink")
	must(b, h.AddrAdd(eth0, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("100.64.0.10/16"))}), "node IP")
	must(b, h.LinkSetUp(eth0), "uplink up")
	client := fake.NewClientset()
	for i := 1; i <= peers; i++ {
		ip := fmt.Sprintf("100.64.%d.%d", 1+i/250, 1+i%250)
		cidr := fmt.Sprintf("10.%d.%d.0/24", 42+i/256, i%256)
		_, err := client.CoreV1().Nodes().Create(context.Background(), node(fmt.Sprintf("n%04d", i), ip, cidr), metav1.CreateOptions{})
		must(b, err, "Node")
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ov, err := New(Config{Device: testDevice, NodeName: "n0000", NodeIP: netip.MustParseAddr("100.64.0.10"), PodCIDR: netip.MustParsePrefix("10.41.0.0/24"),
		Handle: h, Logger: slog.New(slog.DiscardHandler)}, factory.Core().V1().Nodes())
	must(b, err, "New")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	b.Run("first", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if i > 0 {
				must(b, Cleanup(h, testDevice), "Cleanup")
				_, _, err := ensureDevice(&ov.cfg, uplink{index: eth0.Attrs().Index, name: "eth0", mtu: 1500, segment: netip.MustParsePrefix("100.64.0.0/16")})
				must(b, err, "device")
			}
			b.StartTimer()
			must(b, ov.reconcile(), "reconcile")
		}
		b.StopTimer()
		if s := readState(b, ov); len(s.routes) != peers || len(s.neighs) != peers || len(s.fdbs) != peers {
			b.Fatalf("%d routes, %d neighbours, %d forwarding entries; want %d each", len(s.routes), len(s.neighs), len(s.fdbs), peers)
		}
	})
	b.Run("noop", func(b *testing.B) {
		must(b, ov.reconcile(), "reconcile")
		before := counterValue(b, ov.metrics.writes)
		for i := 0; i < b.N; i++ {
			must(b, ov.reconcile(), "reconcile")
		}
		b.StopTimer()
		if w := counterValue(b, ov.metrics.writes) - before; w != 0 {
			b.Fatalf("%v writes in passes that had nothing to write", w)
		}
	})
}

func readState(b *testing.B, ov *Overlay) state {
	link, err := ov.cfg.Handle.LinkByName(ov.cfg.Device)
	must(b, err, "device")
	s, err := read(ov.cfg.Handle, links{vxlan: link.Attrs().Index})
	must(b, err, "read")
	return s
}

func counterValue(b *testing.B, c prometheus.Counter) float64 {
	var m dto.Metric
	must(b, c.Write(&m), "reading a counter")
	return m.GetCounter().GetValue()
}
