//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package kubernetesendpoints

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		addresses []string
		port      int32
		wantAddrs []string
		wantPort  int32
		wantType  discoveryv1.AddressType
		wantErr   bool
	}{
		{name: "none", wantErr: true},
		{name: "not an IP", addresses: []string{"api.example.com"}, wantErr: true},
		{name: "unspecified", addresses: []string{"0.0.0.0"}, wantErr: true},
		{name: "mixed families", addresses: []string{"10.0.0.1", "fd00::1"}, wantErr: true},
		{name: "bad port", addresses: []string{"10.0.0.1"}, port: 70000, wantErr: true},
		{name: "default port, sorted and deduplicated", addresses: []string{"10.0.0.10", "10.0.0.9", "10.0.0.10"},
			wantAddrs: []string{"10.0.0.9", "10.0.0.10"}, wantPort: 6443, wantType: discoveryv1.AddressTypeIPv4},
		{name: "IPv6", addresses: []string{"fd00::1"}, port: 443, wantAddrs: []string{"fd00::1"}, wantPort: 443, wantType: discoveryv1.AddressTypeIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			r, err := New(client, informers.NewSharedInformerFactory(client, 0), tt.addresses, tt.port)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			s := r.EndpointSlice()
			var got []string
			for _, e := range s.Endpoints {
				got = append(got, e.Addresses[0])
			}
			if !apiequality.Semantic.DeepEqual(got, tt.wantAddrs) || *s.Ports[0].Port != tt.wantPort || s.AddressType != tt.wantType {
				t.Errorf("slice addresses %v port %d type %s", got, *s.Ports[0].Port, s.AddressType)
			}
		})
	}
}

// TestObjects pins the shape of the objects to upstream's.
func TestObjects(t *testing.T) {
	client := fake.NewClientset()
	r, err := New(client, informers.NewSharedInformerFactory(client, 0), []string{"192.168.1.5", "192.168.1.4"}, 6443)
	if err != nil {
		t.Fatal(err)
	}
	ep := r.Endpoints()
	wantEp := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "192.168.1.4"}, {IP: "192.168.1.5"}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: 6443, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if !apiequality.Semantic.DeepEqual(ep, wantEp) {
		t.Errorf("Endpoints %+v", ep)
	}
	s := r.EndpointSlice()
	if s.Name != "kubernetes" || s.Namespace != "default" || len(s.Labels) != 1 || s.Labels["kubernetes.io/service-name"] != "kubernetes" {
		t.Errorf("slice metadata %+v", s.ObjectMeta)
	}
	if len(s.Ports) != 1 || *s.Ports[0].Name != "https" || *s.Ports[0].Protocol != corev1.ProtocolTCP || *s.Ports[0].Port != 6443 {
		t.Errorf("slice ports %v", s.Ports)
	}
	if len(s.Endpoints) != 2 || !*s.Endpoints[0].Conditions.Ready || s.Endpoints[0].Addresses[0] != "192.168.1.4" {
		t.Errorf("slice endpoints %v", s.Endpoints)
	}
}

func TestSync(t *testing.T) {
	good := func() (*corev1.Endpoints, *discoveryv1.EndpointSlice) {
		client := fake.NewClientset()
		r, err := New(client, informers.NewSharedInformerFactory(client, 0), []string{"10.0.0.1"}, 6443)
		if err != nil {
			t.Fatal(err)
		}
		return r.Endpoints(), r.EndpointSlice()
	}
	tests := []struct {
		name       string
		objs       func() []runtime.Object
		wantWrites int
	}{
		{name: "nothing yet", objs: func() []runtime.Object { return nil }, wantWrites: 2},
		{name: "current", objs: func() []runtime.Object { ep, s := good(); return []runtime.Object{ep, s} }},
		{name: "address edited", objs: func() []runtime.Object {
			ep, s := good()
			ep.Subsets[0].Addresses[0].IP = "10.9.9.9"
			return []runtime.Object{ep, s}
		}, wantWrites: 1},
		{name: "skip-mirror label removed", objs: func() []runtime.Object {
			ep, s := good()
			ep.Labels = nil
			return []runtime.Object{ep, s}
		}, wantWrites: 1},
		{name: "slice port edited", objs: func() []runtime.Object {
			ep, s := good()
			*s.Ports[0].Port = 1
			return []runtime.Object{ep, s}
		}, wantWrites: 1},
		{name: "slice emptied", objs: func() []runtime.Object {
			ep, s := good()
			s.Endpoints = nil
			return []runtime.Object{ep, s}
		}, wantWrites: 1},
		{name: "stray slice for the kubernetes Service", objs: func() []runtime.Object {
			ep, s := good()
			stray := s.DeepCopy()
			stray.Name = "kubernetes-extra"
			return []runtime.Object{ep, s, stray}
		}, wantWrites: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.objs()
			client := fake.NewClientset(objs...)
			factory := informers.NewSharedInformerFactory(client, 0)
			r, err := New(client, factory, []string{"10.0.0.1"}, 6443)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.Endpoints:
					err = factory.Core().V1().Endpoints().Informer().GetIndexer().Add(o)
				case *discoveryv1.EndpointSlice:
					err = factory.Discovery().V1().EndpointSlices().Informer().GetIndexer().Add(o)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := r.sync(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			writes := 0
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
					writes++
				}
			}
			if writes != tt.wantWrites {
				t.Errorf("%d writes, want %d: %v", writes, tt.wantWrites, client.Actions())
			}
			assertCurrent(t, context.Background(), client, r)
		})
	}
}

func current(ctx context.Context, client *fake.Clientset, r *Reconciler) bool {
	ep, err := client.CoreV1().Endpoints("default").Get(ctx, Name, metav1.GetOptions{})
	if err != nil || !apiequality.Semantic.DeepEqual(ep.Subsets, r.Endpoints().Subsets) || !apiequality.Semantic.DeepEqual(ep.Labels, r.Endpoints().Labels) {
		return false
	}
	s, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, Name, metav1.GetOptions{})
	if err != nil || !apiequality.Semantic.DeepEqual(s.Endpoints, r.EndpointSlice().Endpoints) || !apiequality.Semantic.DeepEqual(s.Ports, r.EndpointSlice().Ports) {
		return false
	}
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
	return err == nil && len(list.Items) == 1
}

func assertCurrent(t *testing.T, ctx context.Context, client *fake.Clientset, r *Reconciler) {
	t.Helper()
	if !current(ctx, client, r) {
		t.Fatal("the kubernetes endpoints are not what the reconciler keeps")
	}
}

// TestRestores runs the reconciler on real informers: it writes both
// objects, and puts them back after an edit and a deletion.
func TestRestores(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	r, err := New(client, factory, []string{"10.0.0.1", "10.0.0.2"}, 6443)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	go r.Run(ctx)

	waitCurrent := func(what string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			return current(ctx, client, r), nil
		})
		if err != nil {
			t.Fatalf("%s: the kubernetes endpoints were not written back", what)
		}
	}
	waitCurrent("start")

	ep, err := client.CoreV1().Endpoints("default").Get(ctx, Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep.Subsets[0].Addresses = ep.Subsets[0].Addresses[:1]
	ep.ResourceVersion = "edited"
	if _, err := client.CoreV1().Endpoints("default").Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCurrent("after an edit of the Endpoints")

	s, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoints = s.Endpoints[1:]
	s.ResourceVersion = "edited"
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCurrent("after an edit of the EndpointSlice")

	if err := client.CoreV1().Endpoints("default").Delete(ctx, Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCurrent("after deletions")
}
