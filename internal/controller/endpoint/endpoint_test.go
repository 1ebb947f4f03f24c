//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package endpoint

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a controller whose caches the test fills by hand.
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

// sync syncs the Service and gives the cache the API's Endpoints.
func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "ns/"+name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	ep, err := f.client.CoreV1().Endpoints("ns").Get(context.Background(), name, metav1.GetOptions{})
	idx := f.factory.Core().V1().Endpoints().Informer().GetIndexer()
	switch {
	case err == nil:
		err = idx.Update(ep)
	case apierrors.IsNotFound(err):
		err = idx.Delete(&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}})
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) endpoints(name string) *corev1.Endpoints {
	f.t.Helper()
	ep, err := f.client.CoreV1().Endpoints("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("endpoints %s: %v", name, err)
	}
	return ep
}

func (f *fixture) writes() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetResource().Resource == "endpoints" && (a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "delete") {
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

func podIP(i int) string { return fmt.Sprintf("10.42.%d.%d", i/250, i%250+2) }

func pod(name, app string, i int, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("pod-" + name),
			Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: podIP(i), PodIPs: []corev1.PodIP{{IP: podIP(i)}},
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

// summary renders subsets as "ports: ready | not ready" per subset, with
// pod names for addresses.
func summary(subsets []corev1.EndpointSubset) string {
	var parts []string
	names := func(as []corev1.EndpointAddress) string {
		var n []string
		for _, a := range as {
			s := a.TargetRef.Name
			if a.Hostname != "" {
				s += "(" + a.Hostname + ")"
			}
			n = append(n, s)
		}
		return strings.Join(n, ",")
	}
	for _, s := range subsets {
		var ps []string
		for _, p := range s.Ports {
			ps = append(ps, fmt.Sprintf("%s=%d", p.Name, p.Port))
		}
		parts = append(parts, fmt.Sprintf("[%s: %s | %s]", strings.Join(ps, ","), names(s.Addresses), names(s.NotReadyAddresses)))
	}
	return strings.Join(parts, " ")
}

func TestSync(t *testing.T) {
	withPort := func(port int32) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = port }
	}
	tests := []struct {
		name     string
		svc      *corev1.Service
		pods     []*corev1.Pod
		want     string // summary; "-" for no Endpoints written
		headless bool
	}{
		{name: "ready and not ready", svc: service("web"),
			pods: []*corev1.Pod{pod("b", "web", 1), pod("a", "web", 0), pod("c", "web", 2, notReady), pod("other", "db", 3)},
			want: "[http=8080: a,b | c]"},
		{name: "terminating left out", svc: service("web"),
			pods: []*corev1.Pod{pod("a", "web", 0), pod("b", "web", 1, terminating)},
			want: "[http=8080: a | ]"},
		{name: "terminal and unaddressed left out", svc: service("web"),
			pods: []*corev1.Pod{pod("a", "web", 0), pod("b", "web", 1, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				pod("c", "web", 2, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil })},
			want: "[http=8080: a | ]"},
		{name: "publishNotReadyAddresses", svc: service("web", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{pod("a", "web", 0, notReady), pod("b", "web", 1, terminating)},
			want: "[http=8080: a,b | ]"},
		{name: "named port resolved per pod", svc: service("web", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }),
			pods: []*corev1.Pod{pod("a", "web", 0, withPort(8080)), pod("b", "web", 1, withPort(9090)), pod("c", "web", 2, withPort(9090), notReady),
				pod("d", "web", 3, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil })},
			want: "[http=8080: a | ] [http=9090: b | c]"},
		{name: "two ports, one missing on a pod",
			svc: service("web", func(s *corev1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")})
			}),
			pods: []*corev1.Pod{pod("a", "web", 0, func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP})
			}), pod("b", "web", 1)},
			want: "[http=8080: a,b | ] [metrics=9100: a | ]"},
		{name: "hostname when the subdomain names the service", svc: service("web"),
			pods: []*corev1.Pod{pod("a", "web", 0, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "a-host", "web" }),
				pod("b", "web", 1, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "b-host", "elsewhere" })},
			want: "[http=8080: a(a-host),b | ]"},
		{name: "headless without ports", headless: true,
			svc:  service("web", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil }),
			pods: []*corev1.Pod{pod("a", "web", 0), pod("b", "web", 1, notReady)},
			want: "[: a | b]"},
		{name: "no pods", svc: service("web"), want: ""},
		{name: "no selector", svc: service("web", func(s *corev1.Service) { s.Spec.Selector = nil }),
			pods: []*corev1.Pod{pod("a", "web", 0)}, want: "-"},
		{name: "ExternalName", svc: service("web", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", ""
		}), pods: []*corev1.Pod{pod("a", "web", 0)}, want: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.svc)
			for _, p := range tt.pods {
				f.cache(p)
			}
			f.sync("web")
			if tt.want == "-" {
				if n := f.writes(); n != 0 {
					t.Fatalf("%d writes for a Service this controller skips", n)
				}
				return
			}
			ep := f.endpoints("web")
			if got := summary(ep.Subsets); got != tt.want {
				t.Errorf("subsets %s, want %s", got, tt.want)
			}
			if ep.Labels["team"] != "a" {
				t.Errorf("Service labels not copied: %v", ep.Labels)
			}
			if _, ok := ep.Labels[corev1.IsHeadlessService]; ok != tt.headless {
				t.Errorf("headless label %v, want %v", ok, tt.headless)
			}
			if _, ok := ep.Annotations[corev1.EndpointsOverCapacity]; ok {
				t.Error("over-capacity annotation under capacity")
			}
			for _, s := range ep.Subsets {
				for _, a := range append(s.Addresses, s.NotReadyAddresses...) {
					if a.NodeName == nil || *a.NodeName != "node-a" || a.TargetRef.Kind != "Pod" || a.TargetRef.Namespace != "ns" {
						t.Errorf("address %+v", a)
					}
				}
			}
			// Nothing changed: nothing written.
			before := f.writes()
			f.sync("web")
			if f.writes() != before {
				t.Error("a second sync wrote")
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	count := func(ep *corev1.Endpoints) (ready, notReady int) {
		for _, s := range ep.Subsets {
			ready += len(s.Addresses)
			notReady += len(s.NotReadyAddresses)
		}
		return
	}
	tests := []struct {
		name                 string
		ready, notReady      int
		wantReady, wantUnrdy int
		truncated            bool
	}{
		{name: "at capacity", ready: 600, notReady: 400, wantReady: 600, wantUnrdy: 400},
		{name: "not ready cut first", ready: 950, notReady: 150, wantReady: 950, wantUnrdy: 50, truncated: true},
		{name: "too many ready", ready: 1200, notReady: 10, wantReady: 1000, wantUnrdy: 0, truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, service("web"))
			for i := range tt.ready + tt.notReady {
				var m []func(*corev1.Pod)
				if i >= tt.ready {
					m = append(m, notReady)
				}
				f.cache(pod(fmt.Sprintf("p%04d", i), "web", i, m...))
			}
			f.sync("web")
			ep := f.endpoints("web")
			r, n := count(ep)
			if r != tt.wantReady || n != tt.wantUnrdy {
				t.Errorf("%d ready, %d not ready; want %d, %d", r, n, tt.wantReady, tt.wantUnrdy)
			}
			if got := ep.Annotations[corev1.EndpointsOverCapacity]; (got == OverCapacityTruncated) != tt.truncated {
				t.Errorf("over-capacity annotation %q, truncated %v", got, tt.truncated)
			}
			before := f.writes()
			f.sync("web")
			if f.writes() != before {
				t.Error("a second sync of a truncated Endpoints wrote")
			}
		})
	}

	// Back under capacity: the annotation goes.
	f := newFixture(t, service("web"))
	for i := range 1001 {
		f.cache(pod(fmt.Sprintf("p%04d", i), "web", i))
	}
	f.sync("web")
	if f.endpoints("web").Annotations[corev1.EndpointsOverCapacity] != OverCapacityTruncated {
		t.Fatal("1001 addresses not marked truncated")
	}
	if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(pod("p0000", "web", 0)); err != nil {
		t.Fatal(err)
	}
	f.sync("web")
	ep := f.endpoints("web")
	if _, ok := ep.Annotations[corev1.EndpointsOverCapacity]; ok {
		t.Error("annotation kept at 1000 addresses")
	}
	if r, _ := count(ep); r != 1000 {
		t.Errorf("%d addresses, want 1000", r)
	}
}

func TestTriggerTime(t *testing.T) {
	f := newFixture(t, service("web"), pod("a", "web", 0, notReady))
	f.sync("web")
	if got := f.endpoints("web").Annotations[corev1.EndpointsLastChangeTriggerTime]; got != t0.Format(time.RFC3339Nano) {
		t.Errorf("first trigger time %q, want the Service's creation", got)
	}
	becameReady := t0.Add(7 * time.Minute)
	f.cache(pod("a", "web", 0, func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(becameReady) }))
	f.sync("web")
	if got := f.endpoints("web").Annotations[corev1.EndpointsLastChangeTriggerTime]; got != becameReady.Format(time.RFC3339Nano) {
		t.Errorf("trigger time %q, want the pod's readiness %s", got, becameReady)
	}
}

func TestLabelsFollowService(t *testing.T) {
	f := newFixture(t, service("web"))
	f.sync("web")
	f.cache(service("web", func(s *corev1.Service) { s.Labels = map[string]string{"team": "b", "tier": "front"} }))
	f.sync("web")
	if got := f.endpoints("web").Labels; len(got) != 2 || got["team"] != "b" || got["tier"] != "front" {
		t.Errorf("labels %v", got)
	}
}

func TestServiceGone(t *testing.T) {
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	f := newFixture(t, ep)
	f.sync("web")
	if _, err := f.client.CoreV1().Endpoints("ns").Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Endpoints of a deleted Service kept: %v", err)
	}
	// Already gone is fine.
	f.sync("web")
}

func TestFailureEvent(t *testing.T) {
	f := newFixture(t, service("web"), pod("a", "web", 0))
	f.client.PrependReactor("create", "endpoints", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("try later")
	})
	if err := f.c.sync(context.Background(), "ns/web"); err == nil {
		t.Fatal("sync succeeded with creates failing")
	}
	select {
	case e := <-f.recorder.Events:
		if !strings.HasPrefix(e, "Warning FailedToCreateEndpoint") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event")
	}
}

func TestStaleCache(t *testing.T) {
	f := newFixture(t, service("web"), pod("a", "web", 0))
	f.sync("web")
	old := f.endpoints("web")
	old.ResourceVersion = "1"
	f.cache(old)
	f.c.stale.mark(old)
	f.cache(pod("b", "web", 1))
	before := f.writes()
	if err := f.c.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.writes() != before {
		t.Fatal("a sync on a stale cache wrote")
	}
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return f.c.queue.Len() == 1, nil })
	if err != nil {
		t.Fatal("the Service was not queued again")
	}
}

// TestRun runs the controller on real informers: leftover Endpoints of a
// Service that is gone are deleted at start, a pod becoming ready moves to
// addresses, and deleted Endpoints come back.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	leftover := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "ns"}}
	client := fake.NewClientset(service("web"), pod("a", "web", 0, notReady), leftover)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, record.NewFakeRecorder(100), 0)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	go c.Run(ctx, 2)

	waitFor := func(what string, ok func(*corev1.Endpoints, error) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			ep, err := client.CoreV1().Endpoints("ns").Get(ctx, "web", metav1.GetOptions{})
			return ok(ep, err), nil
		})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	is := func(want string) func(*corev1.Endpoints, error) bool {
		return func(ep *corev1.Endpoints, err error) bool { return err == nil && summary(ep.Subsets) == want }
	}
	waitFor("a not-ready address", is("[http=8080:  | a]"))
	err = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Endpoints("ns").Get(ctx, "gone", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatal("leftover Endpoints not deleted")
	}

	p := pod("a", "web", 0)
	p.ResourceVersion = "2" // the fake API server keeps none; informers skip updates without a change of version
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the address to become ready", is("[http=8080: a | ]"))

	if err := client.CoreV1().Endpoints("ns").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the Endpoints to come back", is("[http=8080: a | ]"))
}
