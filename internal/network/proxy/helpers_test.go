package proxy

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// newNetns creates a fresh network namespace for the test (removed when the test ends) and
// returns its handle; the test skips when it cannot.
func newNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Skipf("cannot read the current network namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("kernel refuses a new network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to the original network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs f on a thread inside ns.
func inNetns(t testing.TB, ns netns.NsHandle, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is not unlocked: if switching back fails it must die with the goroutine.
		orig, err := netns.Get()
		if err != nil {
			t.Errorf("get netns: %v", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			t.Errorf("enter netns: %v", err)
			return
		}
		f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
}

// nftJSON reads the netns's whole ruleset back with nft (only to read) inside ns.
func nftJSON(t testing.TB, ns netns.NsHandle) ([]byte, error) {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("nft is not installed (/usr/sbin/nft), needed to read the tables back")
	}
	var out []byte
	var err error
	inNetns(t, ns, func() {
		out, err = exec.Command("/usr/sbin/nft", "-j", "list", "ruleset").Output()
	})
	return out, err
}

// program writes the whole model into the kernel, reconciling with what is there, as a full
// sync does.
func program(t testing.TB, k *kernel, m *Model) {
	t.Helper()
	ks, err := k.read()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.syncModel(ks, m); err != nil {
		t.Fatalf("program the model: %v", err)
	}
}

// applyChange sends what turns the named Services of old into those of new, as a partial
// sync does.
func applyChange(t testing.TB, k *kernel, old, new *Model, names ...types.NamespacedName) {
	t.Helper()
	cs := newChangeSet(new.Table, new.Shards)
	for _, n := range names {
		if err := cs.service(n, old.Services[n], new.Services[n]); err != nil {
			t.Fatal(err)
		}
	}
	tx := k.begin()
	if err := cs.send(tx, new.setDefs()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("incremental apply: %v", err)
	}
}

// Builders of test objects.

type svcOpt func(*v1.Service)

func svc(ns, name, clusterIP string, opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func port(name string, proto v1.Protocol, p, nodePort int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: name, Protocol: proto, Port: p, NodePort: nodePort})
	}
}

func typ(t v1.ServiceType) svcOpt { return func(s *v1.Service) { s.Spec.Type = t } }

func etpLocal(hc int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hc
	}
}

func itpLocal() svcOpt {
	return func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }
}

func affinity(seconds int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(seconds)}}
	}
}

func externalIPs(ips ...string) svcOpt { return func(s *v1.Service) { s.Spec.ExternalIPs = ips } }

func lbIngress(ips ...string) svcOpt {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

func distribution(d string) svcOpt {
	return func(s *v1.Service) { s.Spec.TrafficDistribution = ptr.To(d) }
}

type epOpt func(*discovery.Endpoint)

func onNode(n string) epOpt { return func(e *discovery.Endpoint) { e.NodeName = ptr.To(n) } }

func notReady() epOpt {
	return func(e *discovery.Endpoint) { e.Conditions.Ready = ptr.To(false); e.Conditions.Serving = ptr.To(false) }
}

func terminating(serving bool) epOpt {
	return func(e *discovery.Endpoint) {
		e.Conditions.Ready = ptr.To(false)
		e.Conditions.Serving = ptr.To(serving)
		e.Conditions.Terminating = ptr.To(true)
	}
}

func zoneHint(z ...string) epOpt {
	return func(e *discovery.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discovery.EndpointHints{}
		}
		for _, x := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, discovery.ForZone{Name: x})
		}
	}
}

func nodeHint(n ...string) epOpt {
	return func(e *discovery.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discovery.EndpointHints{}
		}
		for _, x := range n {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discovery.ForNode{Name: x})
		}
	}
}

func ep(ip string, opts ...epOpt) discovery.Endpoint {
	e := discovery.Endpoint{Addresses: []string{ip}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-a")}
	for _, o := range opts {
		o(&e)
	}
	return e
}

type slicePort struct {
	name  string
	proto v1.Protocol
	port  int32
}

func slice(ns, svcName, sliceName string, ports []slicePort, eps ...discovery.Endpoint) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: sliceName, Labels: map[string]string{discovery.LabelServiceName: svcName}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   eps,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptr.To(p.name), Protocol: ptr.To(p.proto), Port: ptr.To(p.port)})
	}
	return s
}

func tcp(name string, p int32) slicePort { return slicePort{name, v1.ProtocolTCP, p} }
func udp(name string, p int32) slicePort { return slicePort{name, v1.ProtocolUDP, p} }

var (
	testNodeIP = netip.MustParseAddr("192.168.0.2")
	testBridge = netip.MustParseAddr("10.42.0.1")
)

func testBuildConfig() *BuildConfig {
	return &BuildConfig{
		Table:        "havre0",
		Shards:       2, // golden files stay short; the proxier tests use the default
		NodeName:     "node-a",
		Zone:         "zone-a",
		NodeIPs:      []netip.Addr{testNodeIP},
		ClusterCIDR:  netip.MustParsePrefix("10.42.0.0/16"),
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")},
		LocalDNS: &LocalService{
			Service: typesNN("kube-system", "kube-dns"),
			Addr:    testBridge,
			Port:    53,
		},
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
