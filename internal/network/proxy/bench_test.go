package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/havre/havre/internal/network/netnstest"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"
)

// world is n ClusterIP Services (10.43.x.y:80/TCP) with two endpoints each.
func world(n int) ([]*v1.Service, []*discovery.EndpointSlice) {
	svcs := make([]*v1.Service, 0, n)
	slices := make([]*discovery.EndpointSlice, 0, n)
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		ip := netip.AddrFrom4([4]byte{10, 43, byte(1 + i/250), byte(1 + i%250)})
		svcs = append(svcs, svc("bench", name, ip.String(), port("http", v1.ProtocolTCP, 80, 0)))
		a := netip.AddrFrom4([4]byte{10, 42, byte(1 + (2*i)/250), byte(1 + (2*i)%250)})
		b := netip.AddrFrom4([4]byte{10, 42, byte(1 + (2*i+1)/250), byte(1 + (2*i+1)%250)})
		slices = append(slices, slice("bench", name, name+"-1", []slicePort{tcp("http", 8080)}, ep(a.String()), ep(b.String(), onNode("node-b"))))
	}
	return svcs, slices
}

// cpuTime is the process's CPU time so far, user and system (the kernel's work in sendmsg
// included): on a shared machine it varies less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchBuildConfig is the tests' configuration with the production shard count.
func benchBuildConfig() *BuildConfig {
	bc := testBuildConfig()
	bc.Shards = 0
	return bc
}

// BenchmarkModelBuild: the model of 10,000 Services × 2 endpoints, built alone.
func BenchmarkModelBuild(b *testing.B) {
	svcs, slices := world(10000)
	bc := benchBuildConfig()
	b.ReportAllocs()
	for b.Loop() {
		Build(bc, svcs, slices)
	}
}

// BenchmarkModelMemory reports the heap the committed model of 1,000 Services takes.
func BenchmarkModelMemory(b *testing.B) {
	svcs, slices := world(1000)
	bc := benchBuildConfig()
	var kept *Model
	var before, after runtime.MemStats
	for b.Loop() {
		kept = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept = Build(bc, svcs, slices)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1000, "heapB/service")
	runtime.KeepAlive(kept)
}

// BenchmarkColdSync: 10,000 Services × 2 endpoints programmed into the empty tables of a
// fresh netns, in bounded transactions.
func BenchmarkColdSync(b *testing.B) {
	ns := newNetns(b)
	svcs, slices := world(10000)
	bc := benchBuildConfig()
	m := Build(bc, svcs, slices)
	k, err := newKernel(bc.Table, int(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer k.close()
	defer func() { _ = cleanup(bc.Table, int(ns)) }()
	txns := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := k.deleteTables(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := cpuTime()
		if err := k.syncModel(kernelState{}, m); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		txns = k.conn.Stats.Transactions
	}
	b.ReportMetric(float64(txns), "transactions")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkServiceChange: with 10,000 Services programmed, one EndpointSlice changes in the
// API; measured from the API write to the proxier's commit of the new rules (watch event,
// informer, handler, MinSyncPeriod 0, build, diff, netlink transaction).
func BenchmarkServiceChange(b *testing.B) {
	ns := newNetns(b)
	svcs, slices := world(10000)
	objs := make([]kruntime.Object, 0, 2*len(svcs))
	for i := range svcs {
		objs = append(objs, svcs[i], slices[i])
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg := Config{Table: "havre0", NodeName: "node-a", NodeIPs: []netip.Addr{testNodeIP},
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")},
		Clock: clock.RealClock{}}
	p, err := New(cfg, factory)
	if err != nil {
		b.Fatal(err)
	}
	p.nsFD = int(ns)
	ctx, cancel := context.WithCancel(context.Background())
	first := p.waitSync()
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		factory.Shutdown()
		_ = cleanup(cfg.Table, int(ns))
	}()
	select {
	case <-first:
	case <-time.After(2 * time.Minute):
		b.Fatal("cold sync did not finish")
	}
	s := slices[0].DeepCopy()
	alt := []discovery.Endpoint{ep("10.42.200.1"), ep("10.42.200.2", onNode("node-b"))}
	orig := s.Endpoints
	i := 0
	start := cpuTime()
	for b.Loop() {
		if i%2 == 0 {
			s.Endpoints = alt
		} else {
			s.Endpoints = orig
		}
		i++
		next := p.waitSync()
		if _, err := client.DiscoveryV1().EndpointSlices("bench").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-next:
		case <-time.After(time.Minute):
			b.Fatal("change not committed")
		}
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkFirstPacket: TCP connect (SYN to accept, then RST) from a node netns to a
// ClusterIP and to the pod IP behind it, with 100 and 10,000 Services programmed in the
// production layout (DefaultShards shards), and the same from a twin node netns whose tables
// hold the same Services in one shard (one NAT chain per hook, as the single-table layout had).
// The four dials take turns in every iteration, in rotating order, so that load on the machine
// hits them alike; the benchmark reports their medians, added-µs (ClusterIP minus pod IP: what
// a Service adds to a connection's first packet) and shards-µs (pod IP, sharded minus one
// shard: what the extra shards' NAT chains cost a connection that is no Service's).
func BenchmarkFirstPacket(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := world(n)
			// Service 0 goes to the test pod.
			slices[0] = slice("bench", "svc-00000", "svc-00000-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5"))
			vip := svcs[0].Spec.ClusterIP + ":80"
			var workers []*netnstest.Worker
			for _, shards := range []int{0, 1} {
				tn := newTestNet(b)
				tn.serve(b, 8080, 5353)
				bc := benchBuildConfig()
				bc.Shards = shards
				bc.NodeIPs = []netip.Addr{tn.nodeIP}
				k, err := newKernel(bc.Table, int(tn.node))
				if err != nil {
					b.Fatal(err)
				}
				program(b, k, Build(bc, svcs, slices))
				k.close()
				b.Cleanup(func() { _ = cleanup(bc.Table, int(tn.node)) })
				workers = append(workers, netnstest.NewWorker(b, tn.node))
			}
			targets := []struct {
				name string
				w    *netnstest.Worker
				addr string
			}{
				{"pod", workers[0], "10.42.0.5:8080"},
				{"clusterip", workers[0], vip},
				{"pod-1shard", workers[1], "10.42.0.5:8080"},
				{"clusterip-1shard", workers[1], vip},
			}
			times := make([][]time.Duration, len(targets))
			d := net.Dialer{Timeout: 5 * time.Second}
			iter := 0
			for b.Loop() {
				for j := range targets {
					i := (iter + j) % len(targets)
					t := targets[i]
					var err error
					t.w.Run(func() {
						start := time.Now()
						var c net.Conn
						if c, err = d.Dial("tcp", t.addr); err != nil {
							return
						}
						times[i] = append(times[i], time.Since(start))
						_ = c.(*net.TCPConn).SetLinger(0)
						c.Close()
					})
					if err != nil {
						b.Fatalf("dial %s (%s): %v", t.addr, t.name, err)
					}
				}
				iter++
			}
			med := make([]float64, len(targets))
			for i, t := range targets {
				med[i] = median(times[i])
				b.ReportMetric(med[i], t.name+"-µs")
			}
			b.ReportMetric(med[1]-med[0], "added-µs")
			b.ReportMetric(med[3]-med[2], "added-1shard-µs")
			b.ReportMetric(med[0]-med[2], "shards-µs")
		})
	}
}

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds()) / 1000
}
