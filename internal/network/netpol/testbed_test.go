package netpol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/network/netnstest"
	"github.com/havre/havre/internal/network/podnet"
)

// testbed is a "node" network namespace with a bridge (the pods' gateway 10.42.0.1/24) and
// "pod" namespaces behind veths on it, as the agent and CNI make them; br_netfilter passes
// bridged traffic through the ip hooks.
type testbed struct {
	t      testing.TB
	node   netns.NsHandle
	nh     *netlink.Handle
	bridge netlink.Link
	pods   map[string]*podNS
}

type podNS struct {
	key string
	ns  netns.NsHandle
	ip  netip.Addr
}

const testBridge = "hvnp0"

func newTestbed(t testing.TB) *testbed {
	t.Helper()
	node, nh := netnstest.New(t)
	if err := netnstest.Do(node, podnet.SetSysctls); err != nil {
		t.Skipf("the node namespace's sysctls (br_netfilter is needed): %v", err)
	}
	if err := podnet.EnsureBridge(nh, testBridge, netip.PrefixFrom(testGateway, 24), 0); err != nil {
		t.Fatal(err)
	}
	br, err := nh.LinkByName(testBridge)
	if err != nil {
		t.Fatal(err)
	}
	return &testbed{t: t, node: node, nh: nh, bridge: br, pods: map[string]*podNS{}}
}

// addPod makes a pod namespace with one address on the bridge.
func (tb *testbed) addPod(key string, ip netip.Addr) *podNS {
	t := tb.t
	t.Helper()
	ns, ph := netnstest.New(t)
	host := fmt.Sprintf("vnp%d", len(tb.pods))
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MasterIndex: tb.bridge.Attrs().Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	must := func(err error, what string) {
		if err != nil {
			t.Fatalf("pod %s: %s: %v", key, what, err)
		}
	}
	must(tb.nh.LinkAdd(veth), "veth")
	hl, err := tb.nh.LinkByName(host)
	must(err, "host side")
	must(tb.nh.LinkSetUp(hl), "host side up")
	eth, err := ph.LinkByName("eth0")
	must(err, "eth0")
	must(ph.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}), "address")
	must(ph.LinkSetUp(eth), "eth0 up")
	must(ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: testGateway.AsSlice()}), "default route")
	p := &podNS{key: key, ns: ns, ip: ip}
	tb.pods[key] = p
	return p
}

// serve answers TCP connections and UDP datagrams on these ports with the pod's key.
func (p *podNS) serve(t testing.TB, ports ...int) {
	t.Helper()
	err := netnstest.Do(p.ns, func() error {
		for _, port := range ports {
			ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_, _ = io.WriteString(c, p.key)
					c.Close()
				}
			}()
			pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
			if err != nil {
				return err
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 64)
				for {
					_, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteTo([]byte(p.key), from)
				}
			}()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("serve in %s: %v", p.key, err)
	}
}

// connect opens a connection from a network namespace and returns what the server said
// (an error: no answer within timeout, or refused).
func connect(ns netns.NsHandle, proto string, to netip.AddrPort, timeout time.Duration) (string, error) {
	var got string
	err := netnstest.Do(ns, func() error {
		deadline := time.Now().Add(timeout)
		switch proto {
		case "tcp":
			c, err := net.DialTimeout("tcp4", to.String(), timeout)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(deadline)
			b, err := io.ReadAll(c)
			got = string(b)
			return err
		default:
			c, err := net.Dial("udp4", to.String())
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(deadline)
			if _, err := c.Write([]byte("?")); err != nil {
				return err
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			got = string(buf[:n])
			return err
		}
	})
	return got, err
}

// probe reports whether a connection gets an answer from the server it targets (want: the
// answer expected). A connection expected through that fails once is tried again with more
// time: a loaded machine must not make a pass a failure; one expected blocked gets the short
// timeout only (an allowed connection here answers in well under a millisecond).
func probe(ns netns.NsHandle, proto string, to netip.AddrPort, want string, expect bool) bool {
	got, err := connect(ns, proto, to, time.Second)
	if err != nil && expect {
		got, err = connect(ns, proto, to, 5*time.Second)
	}
	return err == nil && got == want
}

// nftJSON lists the node's table with nft (read only).
func (tb *testbed) nftJSON(t testing.TB, table string) []byte {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("nft is not installed (/usr/sbin/nft), needed to read the table back")
	}
	var out []byte
	err := netnstest.Do(tb.node, func() error {
		var err error
		out, err = exec.Command("/usr/sbin/nft", "-j", "list", "table", "ip", table).Output()
		return err
	})
	if err != nil {
		t.Fatalf("nft -j list table ip %s: %v", table, err)
	}
	return out
}

// harness runs a Policer in the testbed's node namespace against a fake API.
type harness struct {
	t       testing.TB
	client  kubernetes.Interface
	p       *Policer
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

func testConfig() Config {
	return Config{Table: testTable, NodeName: testNode, PodCIDR: testPodCIDR, Gateway: testGateway, DNS: testGateway}
}

func startPolicer(t testing.TB, nsFD int, client kubernetes.Interface, cfg Config) *harness {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := New(cfg, factory)
	if err != nil {
		t.Fatal(err)
	}
	p.nsFD = nsFD
	ctx, cancel := context.WithCancel(context.Background())
	first := p.NextSync()
	factory.Start(ctx.Done())
	h := &harness{t: t, client: client, p: p, factory: factory, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(h.stop)
	h.await(first, "the first sync")
	return h
}

func (h *harness) stop() {
	h.once.Do(func() {
		h.cancel()
		if err := <-h.done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
		h.factory.Shutdown()
	})
}

func (h *harness) await(ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// settle returns once the policer has synced with its caches as they are now, after waiting
// for each store to show what the test wrote (the fake API keeps no resource versions).
func (h *harness) settle(waits ...storeWait) {
	h.t.Helper()
	for _, w := range waits {
		err := wait.PollUntilContextTimeout(context.Background(), 2*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			obj, ok, _ := w.store.GetByKey(w.key)
			return w.ok(obj, ok), nil
		})
		if err != nil {
			h.t.Fatalf("the informer did not show the change of %s", w.key)
		}
	}
	next := h.p.NextSync()
	h.p.requestSync()
	h.await(next, "a sync")
}

// storeWait is a change a store must show: ok says whether it does.
type storeWait struct {
	store cache.Store
	key   string
	ok    func(obj any, exists bool) bool
}

func present(store cache.Store, key string) storeWait {
	return storeWait{store, key, func(_ any, ok bool) bool { return ok }}
}

func absent(store cache.Store, key string) storeWait {
	return storeWait{store, key, func(_ any, ok bool) bool { return !ok }}
}

func labelled(store cache.Store, key string, l map[string]string) storeWait {
	return storeWait{store, key, func(obj any, ok bool) bool {
		return ok && labels.Equals(obj.(metav1.Object).GetLabels(), l)
	}}
}

// startPods tells the policer of the pods, as the agent does before starting containers.
func (h *harness) startPods(pods ...*corev1.Pod) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.p.PodStarting(ctx, p, []netip.Addr{netip.MustParseAddr(p.Status.PodIP)})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		h.t.Fatal(err)
	}
}

// nextEvent returns a channel closed at the policer's next event (an informer change or a
// PodStarting).
func (p *Policer) nextEvent() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.marked
}

// awaitApplied waits until every event up to the latest is committed.
func (p *Policer) awaitApplied(t testing.TB) {
	p.mu.Lock()
	target := p.seq
	p.mu.Unlock()
	for {
		p.mu.Lock()
		done, ch := p.applied >= target, p.committed
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatalf("events up to %d not committed in a minute", target)
		}
	}
}
