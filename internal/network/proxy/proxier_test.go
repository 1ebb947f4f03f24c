package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/network/nft"
)

type harness struct {
	t      *testing.T
	client kubernetes.Interface
	p      *Proxier
	clock  *clocktesting.FakeClock
	cancel context.CancelFunc
	done   chan error
}

func startProxier(t *testing.T, ns int, client kubernetes.Interface, cfg Config) *harness {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := New(cfg, factory)
	if err != nil {
		t.Fatal(err)
	}
	p.nsFD = ns
	ctx, cancel := context.WithCancel(context.Background())
	first := p.waitSync()
	factory.Start(ctx.Done())
	h := &harness{t: t, client: client, p: p, cancel: cancel, done: make(chan error, 1)}
	if fc, ok := cfg.Clock.(*clocktesting.FakeClock); ok {
		h.clock = fc
	}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(func() { h.stop(); factory.Shutdown() })
	h.await(first, "first sync")
	return h
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		if err := <-h.done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.cancel = nil
	}
}

func (h *harness) await(ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}

func freePort(t *testing.T) int32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func testConfig(clk *clocktesting.FakeClock) Config {
	bc := testBuildConfig()
	return Config{
		Table: bc.Table, NodeName: bc.NodeName, NodeIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		ClusterCIDR: bc.ClusterCIDR, ServiceCIDRs: bc.ServiceCIDRs, LocalDNS: bc.LocalDNS,
		MinSyncPeriod: 10 * time.Second, Clock: clk,
	}
}

// TestProxierSyncs runs the proxier against a fake API and the real kernel in a netns:
// changes are coalesced by MinSyncPeriod (fake clock), applied incrementally, the
// health-check node port follows local endpoints, and a restart reconciles.
func TestProxierSyncs(t *testing.T) {
	ns := newNetns(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "zone-a"}}})
	cfg := testConfig(clk)
	h := startProxier(t, int(ns), client, cfg)
	k, err := newKernel(cfg.Table, int(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	read := func() kernelState {
		ks, err := k.read()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	ks := read()
	if ks[cfg.Table] == nil || !ks[cfg.Table].Chains[chainServiceEndpoints] || len(ks) != 1+DefaultShards {
		t.Fatalf("first sync did not create the main table and %d shards: %v", DefaultShards, sortedTables(ks))
	}
	for i := range DefaultShards {
		if !ks[ShardTable(cfg.Table, i)].Chains[chainServices] {
			t.Fatalf("shard %d has no services chain", i)
		}
	}
	webShard := ShardTable(cfg.Table, shardOf(typesNN("default", "web"), DefaultShards))
	webVIP := nft.ElemID{Set: mapServiceIPs, Key: nft.Key{Addr: netip.MustParseAddr("10.43.0.20"), Proto: nft.ProtoTCP, Port: 80}}

	hc := freePort(t)
	web := svc("default", "web", "10.43.0.20", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30080), etpLocal(hc))
	webSlice := slice("default", "web", "web-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.5"))
	next := h.p.waitSync()
	if _, err := client.CoreV1().Services("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, webSlice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The change waits for MinSyncPeriod on the fake clock.
	until(t, "the proxier waits for MinSyncPeriod", clk.HasWaiters)
	if read()[webShard].Chains[prefixed("service", "default/web/tcp/http")] {
		t.Fatal("synced before MinSyncPeriod passed")
	}
	clk.Step(cfg.MinSyncPeriod)
	h.await(next, "sync after MinSyncPeriod")
	until(t, "the service is programmed", func() bool {
		if clk.HasWaiters() { // the slice's event may come after the service's sync
			clk.Step(cfg.MinSyncPeriod)
		}
		return read()[webShard].Elems[webVIP]
	})

	// Health-check node port: one local endpoint → 200.
	get := func() (int, map[string]any) {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(hc)) + "/healthz")
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, body
	}
	until(t, "health check answers 200", func() bool { c, _ := get(); return c == http.StatusOK })
	_, body := get()
	if body["localEndpoints"] != float64(1) || body["serviceProxyHealthy"] != true || body["service"].(map[string]any)["name"] != "web" {
		t.Errorf("health body: %v", body)
	}

	// The local endpoint moves to another node: 503, and the node port drops.
	moved := webSlice.DeepCopy()
	moved.Endpoints = []discovery.Endpoint{ep("10.42.1.6", onNode("node-b"))}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Step the fake clock whenever the proxier waits, until the change is applied.
	until(t, "health check answers 503", func() bool {
		if clk.HasWaiters() {
			clk.Step(cfg.MinSyncPeriod)
		}
		c, _ := get()
		return c == http.StatusServiceUnavailable
	})
	if !read()[cfg.Table].Elems[nft.ElemID{Set: mapNoEndpointNodePorts, Key: nft.Key{Proto: nft.ProtoTCP, Port: 30080}}] {
		t.Error("node port without local endpoints is not in no-endpoint-nodeports")
	}
	if got := metricValue(h.p.metrics.syncs.WithLabelValues("ok", "partial")); got < 2 {
		t.Errorf("partial syncs counted: %v", got)
	}
	if metricValue(h.p.metrics.lastSync) == 0 {
		t.Error("last sync time not set")
	}

	// A restart keeps the tables and reconciles: the service removed meanwhile goes away.
	h.stop()
	if !read()[webShard].Chains[prefixed("service", "default/web/tcp/http")] {
		t.Fatal("table torn down when Run returned")
	}
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h2 := startProxier(t, int(ns), client, testConfig(clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))))
	if ks := read(); ks[webShard].Chains[prefixed("service", "default/web/tcp/http")] || ks[webShard].Elems[webVIP] ||
		ks[cfg.Table].Elems[nft.ElemID{Set: setClusterIPs, Key: nft.Key{Addr: netip.MustParseAddr("10.43.0.20")}}] {
		t.Error("restart did not remove the deleted service")
	}
	if got := metricValue(h2.p.metrics.syncs.WithLabelValues("ok", "full")); got != 1 {
		t.Errorf("full syncs after restart: %v", got)
	}

	// A restart with fewer shards moves the Services and removes the shard tables beyond.
	kept := svc("default", "kept", "10.43.0.30", port("http", v1.ProtocolTCP, 80, 0))
	keptSlice := slice("default", "kept", "kept-1", []slicePort{tcp("http", 8080)}, ep("10.42.0.6"))
	if _, err := client.CoreV1().Services("default").Create(ctx, kept, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, keptSlice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keptVIP := nft.ElemID{Set: mapServiceIPs, Key: nft.Key{Addr: netip.MustParseAddr("10.43.0.30"), Proto: nft.ProtoTCP, Port: 80}}
	until(t, "the kept service is programmed", func() bool {
		if h2.clock.HasWaiters() {
			h2.clock.Step(cfg.MinSyncPeriod)
		}
		return read()[ShardTable(cfg.Table, shardOf(typesNN("default", "kept"), DefaultShards))].Elems[keptVIP]
	})
	h2.stop()
	cfg3 := testConfig(clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0)))
	cfg3.Shards = 2
	h3 := startProxier(t, int(ns), client, cfg3)
	ks = read()
	if len(ks) != 3 || ks[ShardTable(cfg.Table, 0)] == nil || ks[ShardTable(cfg.Table, 1)] == nil {
		t.Errorf("after a restart with 2 shards the tables are %v", sortedTables(ks))
	}
	if !ks[ShardTable(cfg.Table, shardOf(typesNN("default", "kept"), 2))].Elems[keptVIP] {
		t.Error("the kept service is not in its shard after the restart with 2 shards")
	}
	h3.stop()
	if err := cleanup(cfg.Table, int(ns)); err != nil {
		t.Fatal(err)
	}
	if ks := read(); len(ks) != 0 {
		t.Errorf("Cleanup left tables %v", sortedTables(ks))
	}
}

func metricValue(c prometheus.Metric) float64 {
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		return -1
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}
