package endpointslice

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/havre/havre/internal/controller/controllertest"
)

var (
	epGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// fixture is a controller whose informer caches the test fills by hand, so
// that what the controller sees of its own writes is under the test's
// control.
type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	c        *Controller
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, opts Options, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset()
	controllertest.ServerNames(client, "endpointslices")
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := record.NewFakeRecorder(100)
	c, err := New(client, factory, recorder, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, client: client, factory: factory, c: c, recorder: recorder}
	for _, o := range objs {
		f.add(o)
	}
	return f
}

// add puts an object in the fake API and in the controller's cache.
func (f *fixture) add(o runtime.Object) {
	f.t.Helper()
	controllertest.Add(f.t, f.client, f.factory, o)
}

func (f *fixture) cache(o runtime.Object) {
	f.t.Helper()
	controllertest.Cache(f.t, f.factory, o)
}

func (f *fixture) deletePod(name string) {
	f.t.Helper()
	pod, err := f.c.podLister.Pods("ns").Get(name)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(pod); err != nil {
		f.t.Fatal(err)
	}
}

// settle gives the cache the API's EndpointSlices, as the informer would.
func (f *fixture) settle() {
	f.t.Helper()
	var items []any
	for _, s := range f.apiSlices() {
		items = append(items, s)
	}
	if err := f.factory.Discovery().V1().EndpointSlices().Informer().GetIndexer().Replace(items, ""); err != nil {
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

// sync syncs the Service and lets the cache catch up.
func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "ns/"+name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	f.settle()
}

func (f *fixture) writes() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetResource() == epGVR && (a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "delete") {
			n++
		}
	}
	return n
}

func service(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("svc-" + name),
			CreationTimestamp: metav1.NewTime(t0), Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": name},
			ClusterIP:  "10.43.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func pod(name, app string, i int, mutate ...func(*corev1.Pod)) *corev1.Pod {
	ip := fmt.Sprintf("10.42.%d.%d", i/250, i%250+2)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("pod-" + name),
			Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(t0.Add(time.Minute))}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func terminating(p *corev1.Pod) {
	now := metav1.NewTime(t0.Add(time.Hour))
	p.DeletionTimestamp = &now
}

func node(name, zone string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if zone != "" {
		n.Labels = map[string]string{corev1.LabelTopologyZone: zone}
	}
	return n
}

// endpointsByPod returns the endpoints of the API's slices by pod name,
// failing on a pod listed twice.
func endpointsByPod(t *testing.T, ss []*discoveryv1.EndpointSlice) map[string]discoveryv1.Endpoint {
	t.Helper()
	out := map[string]discoveryv1.Endpoint{}
	for _, s := range ss {
		for _, ep := range s.Endpoints {
			if _, dup := out[ep.TargetRef.Name]; dup {
				t.Fatalf("pod %s is in two slices", ep.TargetRef.Name)
			}
			out[ep.TargetRef.Name] = ep
		}
	}
	return out
}

func TestSlicing(t *testing.T) {
	f := newFixture(t, Options{}, node("node-a", ""), service("web"))
	scale := func(n int) {
		t.Helper()
		for i := range 300 {
			name := fmt.Sprintf("web-%03d", i)
			_, err := f.c.podLister.Pods("ns").Get(name)
			switch exists := err == nil; {
			case i < n && !exists:
				f.cache(pod(name, "web", i))
			case i >= n && exists:
				f.deletePod(name)
			}
		}
		f.sync("web")
	}
	check := func(pods, minSlices, maxSlices int) {
		t.Helper()
		ss := f.apiSlices()
		if len(ss) < minSlices || len(ss) > maxSlices {
			t.Fatalf("%d pods: %d slices, want %d to %d", pods, len(ss), minSlices, maxSlices)
		}
		for _, s := range ss {
			if len(s.Endpoints) > DefaultMaxEndpointsPerSlice {
				t.Errorf("slice %s has %d endpoints", s.Name, len(s.Endpoints))
			}
			if len(s.Endpoints) == 0 && pods > 0 {
				t.Errorf("slice %s is empty beside %d pods", s.Name, pods)
			}
			if s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels[discoveryv1.LabelServiceName] != "web" || s.Labels["team"] != "a" {
				t.Errorf("slice %s labels %v", s.Name, s.Labels)
			}
			if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != "Service" || ref.Name != "web" || ref.UID != "svc-web" {
				t.Errorf("slice %s controller %v", s.Name, ref)
			}
			if s.AddressType != discoveryv1.AddressTypeIPv4 {
				t.Errorf("slice %s address type %s", s.Name, s.AddressType)
			}
		}
		if got := len(endpointsByPod(t, ss)); got != pods {
			t.Fatalf("%d endpoints for %d pods", got, pods)
		}
	}

	scale(250)
	check(250, 3, 3)
	// Scaling down empties slices rather than moving endpoints around.
	scale(60)
	check(60, 1, 3)
	// Scaling up fills one new slice and fits the rest into a kept one.
	scale(180)
	check(180, 2, 4)
	before := f.writes()
	f.sync("web")
	if f.writes() != before {
		t.Errorf("a sync with nothing changed wrote %d times", f.writes()-before)
	}
	scale(0)
	ss := f.apiSlices()
	if len(ss) != 1 || len(ss[0].Endpoints) != 0 || len(ss[0].Ports) != 0 {
		t.Fatalf("no pods: want one empty placeholder slice, got %d slices", len(ss))
	}
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name                        string
		publishNotReady             bool
		mutate                      []func(*corev1.Pod)
		included                    bool
		ready, serving, terminating bool
	}{
		{name: "ready", included: true, ready: true, serving: true},
		{name: "not ready", mutate: []func(*corev1.Pod){notReady}, included: true},
		{name: "terminating ready", mutate: []func(*corev1.Pod){terminating}, included: true, serving: true, terminating: true},
		{name: "terminating not ready", mutate: []func(*corev1.Pod){terminating, notReady}, included: true, terminating: true},
		{name: "publishNotReadyAddresses, not ready", publishNotReady: true, mutate: []func(*corev1.Pod){notReady}, included: true, ready: true},
		{name: "publishNotReadyAddresses, terminating", publishNotReady: true, mutate: []func(*corev1.Pod){terminating}, included: true, ready: true, serving: true, terminating: true},
		{name: "succeeded", mutate: []func(*corev1.Pod){func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }}},
		{name: "no IP yet", mutate: []func(*corev1.Pod){func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("web", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = tt.publishNotReady })
			f := newFixture(t, Options{}, node("node-a", ""), svc, pod("web-0", "web", 0, tt.mutate...))
			f.sync("web")
			eps := endpointsByPod(t, f.apiSlices())
			ep, ok := eps["web-0"]
			if ok != tt.included {
				t.Fatalf("pod included %v, want %v", ok, tt.included)
			}
			if !ok {
				return
			}
			c := ep.Conditions
			if *c.Ready != tt.ready || *c.Serving != tt.serving || *c.Terminating != tt.terminating {
				t.Errorf("ready/serving/terminating = %v/%v/%v, want %v/%v/%v",
					*c.Ready, *c.Serving, *c.Terminating, tt.ready, tt.serving, tt.terminating)
			}
		})
	}
}

func TestNamedPortsPerPod(t *testing.T) {
	withPort := func(port int32) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = port }
	}
	svc := service("web", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") })
	f := newFixture(t, Options{}, node("node-a", ""), svc,
		pod("web-0", "web", 0, withPort(8080)), pod("web-1", "web", 1, withPort(9090)),
		pod("web-2", "web", 2, withPort(9090)),
		// No port of that name: not an endpoint.
		pod("web-3", "web", 3, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }))
	f.sync("web")
	got := map[int32][]string{}
	for _, s := range f.apiSlices() {
		port := int32(0)
		switch {
		case len(s.Ports) == 0:
			// As upstream, a pod without the named port is an endpoint
			// of a slice without ports.
		case len(s.Ports) == 1 && *s.Ports[0].Name == "http" && *s.Ports[0].Protocol == corev1.ProtocolTCP:
			port = *s.Ports[0].Port
		default:
			t.Fatalf("slice %s ports %v", s.Name, s.Ports)
		}
		for _, ep := range s.Endpoints {
			got[port] = append(got[port], ep.TargetRef.Name)
		}
	}
	for _, v := range got {
		slices.Sort(v)
	}
	want := map[int32][]string{0: {"web-3"}, 8080: {"web-0"}, 9090: {"web-1", "web-2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("endpoints by port %v, want %v", got, want)
	}
}

func TestEndpointFields(t *testing.T) {
	tests := []struct {
		name         string
		pod          func(*corev1.Pod)
		wantHostname string
		wantNode     string
		wantZone     string
	}{
		{name: "plain", wantNode: "node-a", wantZone: "zone-1"},
		{name: "hostname and subdomain naming the service", pod: func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-0", "web" },
			wantHostname: "db-0", wantNode: "node-a", wantZone: "zone-1"},
		{name: "subdomain naming another service", pod: func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-0", "other" },
			wantNode: "node-a", wantZone: "zone-1"},
		{name: "subdomain without hostname", pod: func(p *corev1.Pod) { p.Spec.Subdomain = "web" }, wantNode: "node-a", wantZone: "zone-1"},
		{name: "node without zone", pod: func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }, wantNode: "node-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*corev1.Pod)
			if tt.pod != nil {
				mutate = append(mutate, tt.pod)
			}
			f := newFixture(t, Options{}, node("node-a", "zone-1"), node("node-b", ""), service("web"), pod("web-0", "web", 0, mutate...))
			f.sync("web")
			ep, ok := endpointsByPod(t, f.apiSlices())["web-0"]
			if !ok {
				t.Fatal("no endpoint")
			}
			str := func(p *string) string {
				if p == nil {
					return ""
				}
				return *p
			}
			if str(ep.Hostname) != tt.wantHostname || str(ep.NodeName) != tt.wantNode || str(ep.Zone) != tt.wantZone {
				t.Errorf("hostname/node/zone = %q/%q/%q, want %q/%q/%q", str(ep.Hostname), str(ep.NodeName), str(ep.Zone),
					tt.wantHostname, tt.wantNode, tt.wantZone)
			}
			if ep.Addresses[0] != "10.42.0.2" || ep.TargetRef.Kind != "Pod" || ep.TargetRef.UID != "pod-web-0" {
				t.Errorf("addresses %v targetRef %v", ep.Addresses, ep.TargetRef)
			}
		})
	}
}

func TestSkippedServices(t *testing.T) {
	tests := []struct {
		name string
		svc  *corev1.Service
	}{
		{"no selector", service("web", func(s *corev1.Service) { s.Spec.Selector = nil })},
		{"ExternalName", service("web", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", ""
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{}, node("node-a", ""), tt.svc, pod("web-0", "web", 0))
			f.sync("web")
			if n := len(f.apiSlices()); n != 0 {
				t.Errorf("%d slices written", n)
			}
		})
	}
}

func TestTriggerTime(t *testing.T) {
	f := newFixture(t, Options{}, node("node-a", ""), service("web"), pod("web-0", "web", 0, notReady))
	f.sync("web")
	annotation := func() string {
		ss := f.apiSlices()
		if len(ss) != 1 {
			t.Fatalf("%d slices", len(ss))
		}
		return ss[0].Annotations[corev1.EndpointsLastChangeTriggerTime]
	}
	// A new Service: its creation.
	if got := annotation(); got != t0.Format(time.RFC3339Nano) {
		t.Errorf("first trigger time %q, want the Service's creation %s", got, t0)
	}
	ready := t0.Add(5 * time.Minute)
	f.cache(pod("web-0", "web", 0, func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(ready) }))
	f.sync("web")
	if got := annotation(); got != ready.Format(time.RFC3339Nano) {
		t.Errorf("trigger time %q, want the pod's readiness %s", got, ready)
	}
}

// TestStaleCache: a sync that does not yet see the slices written by the
// previous one writes nothing, and is retried.
func TestStaleCache(t *testing.T) {
	f := newFixture(t, Options{}, node("node-a", ""), service("web"), pod("web-0", "web", 0))
	if err := f.c.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	f.cache(pod("web-1", "web", 1))
	before := f.writes()
	if err := f.c.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.writes() != before {
		t.Fatalf("a sync on a stale cache wrote (%d writes)", f.writes()-before)
	}
	if f.c.queue.Len() != 0 {
		t.Fatalf("queue has %d items before the retry delay", f.c.queue.Len())
	}
	f.settle()
	// The retry comes back after a short delay.
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return f.c.queue.Len() == 1, nil })
	if err != nil {
		t.Fatal("the Service was not queued again")
	}
	if key, _ := f.c.queue.Get(); key != "ns/web" {
		t.Fatalf("requeued %q", key)
	}
	f.sync("web")
	if n := len(endpointsByPod(t, f.apiSlices())); n != 2 {
		t.Fatalf("%d endpoints after the retry, want 2", n)
	}
}

func TestFailureEvent(t *testing.T) {
	f := newFixture(t, Options{}, node("node-a", ""), service("web"), pod("web-0", "web", 0))
	f.client.PrependReactor("create", "endpointslices", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is sad")
	})
	if err := f.c.sync(context.Background(), "ns/web"); err == nil {
		t.Fatal("sync succeeded with creates failing")
	}
	select {
	case e := <-f.recorder.Events:
		if !strings.HasPrefix(e, "Warning FailedToUpdateEndpointSlices") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event recorded")
	}
}

func TestMaxEndpointsPerSlice(t *testing.T) {
	f := newFixture(t, Options{MaxEndpointsPerSlice: 2}, node("node-a", ""), service("web"))
	for i := range 5 {
		f.cache(pod(fmt.Sprintf("web-%d", i), "web", i))
	}
	f.sync("web")
	if n := len(f.apiSlices()); n != 3 {
		t.Errorf("5 endpoints at 2 a slice: %d slices", n)
	}
	if _, err := New(f.client, f.factory, f.recorder, Options{MaxEndpointsPerSlice: 1001}); err == nil {
		t.Error("1001 endpoints per slice accepted")
	}
}

// TestRun runs the controller on real informers: a pod becoming ready shows
// in the slice, and a slice deleted by hand is put back.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset(node("node-a", ""), service("web"), pod("web-0", "web", 0, notReady))
	controllertest.ServerNames(client, "endpointslices")
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, record.NewFakeRecorder(100), Options{})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	go c.Run(ctx, 2)

	waitFor := func(what string, ok func([]discoveryv1.EndpointSlice) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			list, err := client.DiscoveryV1().EndpointSlices("ns").List(ctx, metav1.ListOptions{})
			return err == nil && ok(list.Items), nil
		})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	readyIs := func(want bool) func([]discoveryv1.EndpointSlice) bool {
		return func(ss []discoveryv1.EndpointSlice) bool {
			return len(ss) == 1 && len(ss[0].Endpoints) == 1 && *ss[0].Endpoints[0].Conditions.Ready == want
		}
	}
	waitFor("a not-ready endpoint", readyIs(false))

	p := pod("web-0", "web", 0)
	p.ResourceVersion = "2" // the fake API server keeps none; informers skip updates without a change of version
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the endpoint to become ready", readyIs(true))

	list, err := client.DiscoveryV1().EndpointSlices("ns").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DiscoveryV1().EndpointSlices("ns").Delete(ctx, list.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the deleted slice to be replaced", readyIs(true))
}
