//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package endpointslicemirroring

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/havre/havre/internal/controller/controllertest"
)

var epsGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	c        *Controller
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset()
	controllertest.ServerNames(client, "endpointslices")
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := record.NewFakeRecorder(100)
	c, err := New(client, factory, recorder, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, client: client, factory: factory, c: c, recorder: recorder}
	for _, o := range objs {
		f.add(o)
	}
	return f
}

func (f *fixture) add(o runtime.Object) {
	f.t.Helper()
	controllertest.Add(f.t, f.client, f.factory, o)
}

func (f *fixture) cache(o runtime.Object) {
	f.t.Helper()
	controllertest.Cache(f.t, f.factory, o)
}

func (f *fixture) uncache(o runtime.Object) {
	f.t.Helper()
	var err error
	switch o := o.(type) {
	case *corev1.Service:
		err = f.factory.Core().V1().Services().Informer().GetIndexer().Delete(o)
	case *corev1.Endpoints:
		err = f.factory.Core().V1().Endpoints().Informer().GetIndexer().Delete(o)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) apiSlices() []*discoveryv1.EndpointSlice {
	f.t.Helper()
	list, err := f.client.DiscoveryV1().EndpointSlices("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*discoveryv1.EndpointSlice
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sync syncs the Endpoints and gives the cache the API's slices.
func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "ns/"+name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	var items []any
	for _, s := range f.apiSlices() {
		items = append(items, s)
	}
	if err := f.factory.Discovery().V1().EndpointSlices().Informer().GetIndexer().Replace(items, ""); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) writes() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetResource() == epsGVR && (a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "delete") {
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

func service(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("svc-" + name)},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20",
			Ports: []corev1.ServicePort{{Name: "db", Port: 5432, Protocol: corev1.ProtocolTCP}}},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func ips(from, n int) []corev1.EndpointAddress {
	var out []corev1.EndpointAddress
	for i := from; i < from+n; i++ {
		out = append(out, corev1.EndpointAddress{IP: fmt.Sprintf("192.168.%d.%d", i/250, i%250+1)})
	}
	return out
}

func endpoints(name string, subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("ep-" + name),
			Labels:      map[string]string{"team": "a"},
			Annotations: map[string]string{"note": "hand-made", corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"}},
		Subsets: subsets,
	}
}

var dbPort = []corev1.EndpointPort{{Name: "db", Port: 5432, Protocol: corev1.ProtocolTCP}}

// summary lists slices as "type ports: ready addresses | not ready".
func summary(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", *p.Name, *p.Port))
		}
		var ready, notReady []string
		for _, e := range s.Endpoints {
			if *e.Conditions.Ready {
				ready = append(ready, e.Addresses[0])
			} else {
				notReady = append(notReady, e.Addresses[0])
			}
		}
		out = append(out, fmt.Sprintf("%s %s: %s | %s", s.AddressType, strings.Join(ports, ","),
			strings.Join(ready, ","), strings.Join(notReady, ",")))
	}
	slices.Sort(out)
	return out
}

func TestMirror(t *testing.T) {
	tests := []struct {
		name    string
		svc     *corev1.Service // nil: no Service
		ep      *corev1.Endpoints
		want    []string
		wantEvt string
	}{
		{name: "one subset", svc: service("db"),
			ep:   endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 2), NotReadyAddresses: ips(2, 1), Ports: dbPort}),
			want: []string{"IPv4 db=5432: 192.168.0.1,192.168.0.2 | 192.168.0.3"}},
		{name: "two port sets, two families", svc: service("db"),
			ep: endpoints("db",
				corev1.EndpointSubset{Addresses: append(ips(0, 1), corev1.EndpointAddress{IP: "fd00::1"}), Ports: dbPort},
				corev1.EndpointSubset{Addresses: ips(5, 1), Ports: []corev1.EndpointPort{{Name: "db", Port: 6432, Protocol: corev1.ProtocolTCP}}}),
			want: []string{"IPv4 db=5432: 192.168.0.1 | ", "IPv4 db=6432: 192.168.0.6 | ", "IPv6 db=5432: fd00::1 | "}},
		{name: "invalid IP skipped", svc: service("db"),
			ep:   endpoints("db", corev1.EndpointSubset{Addresses: append(ips(0, 1), corev1.EndpointAddress{IP: "not-an-ip"}), Ports: dbPort}),
			want: []string{"IPv4 db=5432: 192.168.0.1 | "}, wantEvt: "Warning InvalidIPAddress"},
		{name: "over 1000 addresses in a subset", svc: service("db"),
			ep:      endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1100), Ports: dbPort}),
			wantEvt: "Warning TooManyAddressesToMirror"},
		{name: "skip-mirror label", svc: service("db"),
			ep: func() *corev1.Endpoints {
				ep := endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1), Ports: dbPort})
				ep.Labels[discoveryv1.LabelSkipMirror] = "true"
				return ep
			}()},
		{name: "leader-election lock", svc: service("db"),
			ep: func() *corev1.Endpoints {
				ep := endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1), Ports: dbPort})
				ep.Annotations[leaderElectionAnnotation] = "{}"
				return ep
			}()},
		{name: "Service with a selector", svc: service("db", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "db"} }),
			ep: endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1), Ports: dbPort})},
		{name: "no Service", ep: endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1), Ports: dbPort})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.ep)
			if tt.svc != nil {
				f.add(tt.svc)
			}
			f.sync("db")
			ss := f.apiSlices()
			if tt.name == "over 1000 addresses in a subset" {
				if len(ss) != 1 || len(ss[0].Endpoints) != MaxEndpointsPerSubset {
					t.Fatalf("1100 addresses: %q, want one slice of %d", summary(ss), MaxEndpointsPerSubset)
				}
			} else if got := summary(ss); !slices.Equal(got, tt.want) {
				t.Fatalf("slices %q, want %q", got, tt.want)
			}
			evts := f.events()
			if tt.wantEvt == "" && len(evts) > 0 || tt.wantEvt != "" && (len(evts) != 1 || !strings.HasPrefix(evts[0], tt.wantEvt)) {
				t.Errorf("events %q, want %q", evts, tt.wantEvt)
			}
			for _, s := range ss {
				if s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels[discoveryv1.LabelServiceName] != "db" || s.Labels["team"] != "a" {
					t.Errorf("labels %v", s.Labels)
				}
				if s.Annotations["note"] != "hand-made" || s.Annotations[corev1.EndpointsLastChangeTriggerTime] != "" {
					t.Errorf("annotations %v", s.Annotations)
				}
				if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != "Endpoints" || ref.Name != "db" || ref.UID != "ep-db" {
					t.Errorf("controller %v", ref)
				}
			}
			before := f.writes()
			f.sync("db")
			if f.writes() != before {
				t.Error("a second sync wrote")
			}
		})
	}
}

func TestMirrorFollowsChanges(t *testing.T) {
	ep := endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 2), Ports: dbPort})
	f := newFixture(t, service("db"), ep)
	f.sync("db")
	if got := summary(f.apiSlices()); len(got) != 1 {
		t.Fatalf("slices %q", got)
	}

	// An address goes, a label changes: the slice is rewritten in place.
	ep = endpoints("db", corev1.EndpointSubset{Addresses: ips(1, 1), Ports: dbPort})
	ep.Labels["team"] = "b"
	f.cache(ep)
	f.sync("db")
	ss := f.apiSlices()
	if got := summary(ss); !slices.Equal(got, []string{"IPv4 db=5432: 192.168.0.2 | "}) || ss[0].Labels["team"] != "b" {
		t.Fatalf("after the edit: %q labels %v", got, ss[0].Labels)
	}

	// The port changes: still one slice.
	ep = endpoints("db", corev1.EndpointSubset{Addresses: ips(1, 1), Ports: []corev1.EndpointPort{{Name: "db", Port: 6432, Protocol: corev1.ProtocolTCP}}})
	f.cache(ep)
	f.sync("db")
	if got := summary(f.apiSlices()); !slices.Equal(got, []string{"IPv4 db=6432: 192.168.0.2 | "}) {
		t.Fatalf("after the port change: %q", got)
	}

	// Labelled skip-mirror: the slices go.
	ep.Labels[discoveryv1.LabelSkipMirror] = "true"
	f.cache(ep)
	f.sync("db")
	if n := len(f.apiSlices()); n != 0 {
		t.Fatalf("%d slices after skip-mirror", n)
	}
	delete(ep.Labels, discoveryv1.LabelSkipMirror)
	f.cache(ep)
	f.sync("db")

	// The Service goes: so do the slices.
	f.uncache(service("db"))
	f.sync("db")
	if n := len(f.apiSlices()); n != 0 {
		t.Fatalf("%d slices without the Service", n)
	}
	f.cache(service("db"))
	f.sync("db")

	// The Endpoints go: so do the slices.
	f.uncache(ep)
	f.sync("db")
	if n := len(f.apiSlices()); n != 0 {
		t.Fatalf("%d slices without the Endpoints", n)
	}
}

// TestRun runs the controller on real informers: a hand-written Endpoints
// object is mirrored, the default/kubernetes style one (skip-mirror) is not,
// and a deleted mirrored slice comes back.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kube := endpoints("kubernetes", corev1.EndpointSubset{Addresses: ips(9, 1), Ports: dbPort})
	kube.Labels = map[string]string{discoveryv1.LabelSkipMirror: "true"}
	client := fake.NewClientset(service("db"), service("kubernetes"), kube,
		endpoints("db", corev1.EndpointSubset{Addresses: ips(0, 1), Ports: dbPort}))
	controllertest.ServerNames(client, "endpointslices")
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, record.NewFakeRecorder(100), 0)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	go c.Run(ctx, 2)

	mirrored := func(ctx context.Context) ([]string, error) {
		list, err := client.DiscoveryV1().EndpointSlices("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range list.Items {
			out = append(out, s.Labels[discoveryv1.LabelServiceName])
		}
		return out, nil
	}
	waitDB := func(what string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := mirrored(ctx)
			return err == nil && slices.Equal(got, []string{"db"}), nil
		})
		if err != nil {
			got, _ := mirrored(ctx)
			t.Fatalf("%s: slices for %q, want only db", what, got)
		}
	}
	waitDB("start")
	list, err := client.DiscoveryV1().EndpointSlices("ns").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DiscoveryV1().EndpointSlices("ns").Delete(ctx, list.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDB("after deleting the mirrored slice")
}
