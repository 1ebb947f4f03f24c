package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

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
	for b.Loop() {
		b.StopTimer()
		if err := k.deleteTables(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := k.syncModel(kernelState{}, m); err != nil {
			b.Fatal(err)
		}
		txns = k.stats.transactions
	}
	b.ReportMetric(float64(txns), "transactions")
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
}

// BenchmarkFirstPacket: TCP connect (SYN to accept, then RST) from the node netns to a
// ClusterIP versus to the pod IP directly, with 100 and 10,000 Services in the table.
func BenchmarkFirstPacket(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			tn := newTestNet(b)
			tn.serve(b, 8080, 5353)
			svcs, slices := world(n)
			// Service 0 goes to the test pod.
			slices[0] = slice("bench", "svc-00000", "svc-00000-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5"))
			bc := benchBuildConfig()
			bc.NodeIPs = []netip.Addr{tn.nodeIP}
			m := Build(bc, svcs, slices)
			k, err := newKernel(bc.Table, int(tn.node))
			if err != nil {
				b.Fatal(err)
			}
			defer k.close()
			program(b, k, m)
			defer func() { _ = cleanup(bc.Table, int(tn.node)) }()
			for _, target := range []struct{ name, addr string }{{"pod", "10.42.0.5:8080"}, {"clusterip", svcs[0].Spec.ClusterIP + ":80"}} {
				b.Run(target.name, func(b *testing.B) {
					inNetns(b, tn.node, func() {
						d := net.Dialer{Timeout: 5 * time.Second}
						for b.Loop() {
							c, err := d.Dial("tcp", target.addr)
							if err != nil {
								b.Fatal(err)
							}
							_ = c.(*net.TCPConn).SetLinger(0)
							c.Close()
						}
					})
				})
			}
		})
	}
}
