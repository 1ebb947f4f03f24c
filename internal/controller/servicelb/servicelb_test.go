package servicelb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/controller/controllertest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	c        *Controller
	recorder *record.FakeRecorder
	clock    *clocktesting.FakeClock
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := record.NewFakeRecorder(100)
	c, err := New(client, factory, recorder)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(t0.Add(time.Hour))
	c.clock = clk
	f := &fixture{t: t, client: client, factory: factory, c: c, recorder: recorder, clock: clk}
	for _, o := range objs {
		f.add(o)
	}
	return f
}

func (f *fixture) add(o runtime.Object) {
	f.t.Helper()
	controllertest.Add(f.t, f.client, f.factory, o)
}

func (f *fixture) indexer(o runtime.Object) interface {
	Update(any) error
	Delete(any) error
} {
	switch o.(type) {
	case *corev1.Service:
		return f.factory.Core().V1().Services().Informer().GetIndexer()
	case *corev1.Node:
		return f.factory.Core().V1().Nodes().Informer().GetIndexer()
	case *discoveryv1.EndpointSlice:
		return f.factory.Discovery().V1().EndpointSlices().Informer().GetIndexer()
	}
	f.t.Fatalf("cannot cache %T", o)
	return nil
}

func (f *fixture) cache(o runtime.Object) {
	f.t.Helper()
	controllertest.Cache(f.t, f.factory, o)
}

func (f *fixture) remove(o runtime.Object) {
	f.t.Helper()
	if err := f.indexer(o).Delete(o); err != nil {
		f.t.Fatal(err)
	}
}

// sync syncs a Service and gives the cache what the API now holds.
func (f *fixture) sync(name string) *corev1.Service {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "ns/"+name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	svc, err := f.client.CoreV1().Services("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.cache(svc)
	return svc
}

func (f *fixture) statusWrites() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func lb(name string, created time.Time, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("svc-" + name),
			CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.5", IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Selector:              map[string]string{"app": name},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func withPorts(ports ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ports {
			var n int32
			var proto string
			if _, err := fmt.Sscanf(p, "%d/%s", &n, &proto); err != nil {
				panic(err)
			}
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", len(s.Spec.Ports)), Port: n, Protocol: corev1.Protocol(proto)})
		}
	}
}

type nodeOpt func(*corev1.Node)

func node(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func internal(ip string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
}

func external(ip string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip})
	}
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func excluded(n *corev1.Node) { n.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: ""} }
func hostnameOnly(n *corev1.Node) {
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: n.Name}}
}

// slice is an EndpointSlice of svc with an endpoint per "node=ready".
func slice(svc string, endpoints ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc + "-x", Namespace: "ns",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: discoveryv1.AddressTypeIPv4}
	for i, e := range endpoints {
		nodeName, r, _ := strings.Cut(e, "=")
		ready := r == "true"
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.42.0.%d", i+2)},
			NodeName: &nodeName, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

func ingressIPs(svc *corev1.Service) []string {
	var out []string
	for _, i := range svc.Status.LoadBalancer.Ingress {
		if i.IPMode == nil || *i.IPMode != corev1.LoadBalancerIPModeVIP {
			return []string{"ipMode not VIP"}
		}
		out = append(out, i.IP)
	}
	return out
}

func TestIngress(t *testing.T) {
	nodes := []runtime.Object{
		node("n1", internal("192.168.0.11"), external("203.0.113.1")),
		node("n2", internal("192.168.0.2")),
		node("n3", internal("192.168.0.3"), notReady),
		node("n4", internal("192.168.0.4"), cordoned),
		node("n5", internal("192.168.0.5"), excluded),
		node("n6", internal("192.168.0.2")), // same address as n2
		node("n7", hostnameOnly),
		node("n8", internal("192.168.0.10")),
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		objs []runtime.Object
		want []string
	}{
		{name: "ready schedulable nodes, ExternalIP first", svc: lb("web", t0),
			want: []string{"192.168.0.2", "192.168.0.10", "203.0.113.1"}},
		{name: "class havre.io/servicelb", svc: lb("web", t0, func(s *corev1.Service) { s.Spec.LoadBalancerClass = new(Class) }),
			want: []string{"192.168.0.2", "192.168.0.10", "203.0.113.1"}},
		{name: "externalTrafficPolicy Local: nodes with a ready endpoint",
			svc:  lb("web", t0, func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
			objs: []runtime.Object{slice("web", "n1=true", "n8=false", "n3=true"), slice("other", "n2=true")},
			want: []string{"203.0.113.1"}},
		{name: "externalTrafficPolicy Local without endpoints",
			svc:  lb("web", t0, func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
			want: nil},
		{name: "IPv6-only Service gets no IPv4 address",
			svc:  lb("web", t0, func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }),
			want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, append(append([]runtime.Object{tt.svc}, nodes...), tt.objs...)...)
			got := ingressIPs(f.sync("web"))
			if !slices.Equal(got, tt.want) {
				t.Errorf("ingress %v, want %v", got, tt.want)
			}
			before := f.statusWrites()
			f.sync("web")
			if f.statusWrites() != before {
				t.Error("a second sync wrote the status again")
			}
		})
	}
}

func TestNotServed(t *testing.T) {
	stale := corev1.ServiceStatus{
		LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.168.0.2"}}},
		Conditions: []metav1.Condition{{Type: ConditionType, Status: metav1.ConditionTrue, Reason: ReasonPortConflict},
			{Type: "Other", Status: metav1.ConditionTrue, Reason: "Kept"}},
	}
	tests := []struct {
		name      string
		svc       *corev1.Service
		wantWrite bool
	}{
		{name: "another class is left alone", svc: lb("web", t0, func(s *corev1.Service) {
			s.Spec.LoadBalancerClass = new("example.com/cloud")
			s.Status = *stale.DeepCopy()
		})},
		{name: "no longer a LoadBalancer: cleared", wantWrite: true, svc: lb("web", t0, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Status = *stale.DeepCopy()
		})},
		{name: "ClusterIP with nothing to clear", svc: lb("web", t0, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.svc, node("n1", internal("192.168.0.2")))
			got := f.sync("web")
			if wrote := f.statusWrites() > 0; wrote != tt.wantWrite {
				t.Fatalf("status written %v, want %v", wrote, tt.wantWrite)
			}
			if !tt.wantWrite {
				return
			}
			if len(got.Status.LoadBalancer.Ingress) != 0 || meta.FindStatusCondition(got.Status.Conditions, ConditionType) != nil {
				t.Errorf("status %+v not cleared", got.Status)
			}
			if meta.FindStatusCondition(got.Status.Conditions, "Other") == nil {
				t.Error("someone else's condition removed")
			}
		})
	}
}

func TestPortConflict(t *testing.T) {
	tests := []struct {
		name     string
		services []*corev1.Service
		// want maps each Service to its ingress count, or to the Service
		// named in its conflict condition.
		want map[string]string
	}{
		{name: "older keeps the port",
			services: []*corev1.Service{lb("web", t0), lb("api", t0.Add(time.Minute))},
			want:     map[string]string{"web": "served", "api": "port 80/TCP is already served by LoadBalancer Service ns/web"}},
		{name: "same age: by name",
			services: []*corev1.Service{lb("b", t0), lb("a", t0)},
			want:     map[string]string{"a": "served", "b": "port 80/TCP is already served by LoadBalancer Service ns/a"}},
		{name: "other protocol is no conflict",
			services: []*corev1.Service{lb("web", t0), lb("dns", t0.Add(time.Minute), withPorts("80/UDP"))},
			want:     map[string]string{"web": "served", "dns": "served"}},
		{name: "a Service that lost a port holds none",
			services: []*corev1.Service{lb("web", t0), lb("both", t0.Add(time.Minute), withPorts("443/TCP", "80/TCP")),
				lb("tls", t0.Add(2*time.Minute), withPorts("443/TCP"))},
			want: map[string]string{"web": "served", "both": "port 80/TCP is already served by LoadBalancer Service ns/web", "tls": "served"}},
		{name: "another class takes no port",
			services: []*corev1.Service{lb("cloud", t0, func(s *corev1.Service) { s.Spec.LoadBalancerClass = new("example.com/cloud") }), lb("web", t0.Add(time.Minute))},
			want:     map[string]string{"web": "served"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, node("n1", internal("192.168.0.2")))
			for _, s := range tt.services {
				f.add(s)
			}
			for name, want := range tt.want {
				svc := f.sync(name)
				cond := meta.FindStatusCondition(svc.Status.Conditions, ConditionType)
				if want == "served" {
					if len(svc.Status.LoadBalancer.Ingress) != 1 || cond != nil {
						t.Errorf("%s: ingress %v condition %v, want served", name, svc.Status.LoadBalancer.Ingress, cond)
					}
					continue
				}
				if len(svc.Status.LoadBalancer.Ingress) != 0 {
					t.Errorf("%s: ingress %v despite a conflict", name, svc.Status.LoadBalancer.Ingress)
				}
				if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != ReasonPortConflict || cond.Message != want {
					t.Errorf("%s: condition %+v, want message %q", name, cond, want)
				}
			}
		})
	}
}

// TestConflictRecovers: the loser gets an Event once, and its ingress and
// a False condition when the holder goes.
func TestConflictRecovers(t *testing.T) {
	web, api := lb("web", t0), lb("api", t0.Add(time.Minute))
	f := newFixture(t, node("n1", internal("192.168.0.2")), web, api)
	f.sync("web")
	f.sync("api")
	evts := f.events()
	if len(evts) != 1 || evts[0] != "Warning PortConflict port 80/TCP is already served by LoadBalancer Service ns/web" {
		t.Fatalf("events %q", evts)
	}
	f.sync("api")
	if evts := f.events(); len(evts) != 0 {
		t.Errorf("the same conflict reported again: %q", evts)
	}

	f.clock.Step(time.Minute)
	f.remove(web)
	got := f.sync("api")
	if ips := ingressIPs(got); !slices.Equal(ips, []string{"192.168.0.2"}) {
		t.Errorf("ingress after recovery %v", ips)
	}
	cond := meta.FindStatusCondition(got.Status.Conditions, ConditionType)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != ReasonPortsAllocated || !cond.LastTransitionTime.Time.Equal(f.clock.Now()) {
		t.Errorf("condition after recovery %+v", cond)
	}
}

// TestRun runs the controller on real informers: a LoadBalancer Service is
// given the node's address, a Service arriving later on the same port is
// refused, and a node turning ready adds its address.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset(node("n1", internal("192.168.0.2")), node("n2", internal("192.168.0.3"), notReady), lb("web", t0))
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, record.NewFakeRecorder(100))
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	go c.Run(ctx, 2)

	waitFor := func(name, what string, ok func(*corev1.Service) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			svc, err := client.CoreV1().Services("ns").Get(ctx, name, metav1.GetOptions{})
			return err == nil && ok(svc), nil
		})
		if err != nil {
			t.Fatalf("%s: waiting for %s", name, what)
		}
	}
	ips := func(want ...string) func(*corev1.Service) bool {
		return func(svc *corev1.Service) bool { return slices.Equal(ingressIPs(svc), want) }
	}
	waitFor("web", "the ready node's address", ips("192.168.0.2"))

	if _, err := client.CoreV1().Services("ns").Create(ctx, lb("api", t0.Add(time.Minute)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("api", "a port conflict", func(svc *corev1.Service) bool {
		return meta.IsStatusConditionTrue(svc.Status.Conditions, ConditionType)
	})

	n2 := node("n2", internal("192.168.0.3"))
	n2.ResourceVersion = "2"
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("web", "both nodes' addresses", ips("192.168.0.2", "192.168.0.3"))
}
