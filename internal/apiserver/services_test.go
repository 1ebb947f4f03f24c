package apiserver

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceAllocator(t *testing.T) {
	a, err := newServiceAllocator(nil, "10.43.0.0/29", "30000-30002")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.kubernetesServiceIP(); got != "10.43.0.1" {
		t.Fatalf("kubernetes service IP %s", got)
	}
	if got := a.dnsServiceIP(); got != "" {
		t.Fatalf("a /29 has no tenth address to reserve, got %q", got)
	}
	// A /29 has 10.43.0.2-.6 to hand out: never the network, .1 or broadcast.
	used := map[string]string{"10.43.0.1": "default/kubernetes"}
	var got []string
	for {
		ip, ok := a.freeIP(used)
		if !ok {
			break
		}
		used[ip] = "x/y"
		got = append(got, ip)
		if len(got) > 8 {
			t.Fatalf("allocator does not stop: %v", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("allocated %v, want the 5 addresses .2-.6", got)
	}
	for _, ip := range got {
		if ip == "10.43.0.0" || ip == "10.43.0.1" || ip == "10.43.0.7" {
			t.Errorf("allocated reserved address %s", ip)
		}
	}
	ports := map[int32]string{30001: "x/y"}
	p1, _ := a.freePort(ports)
	ports[p1] = "x/y"
	p2, _ := a.freePort(ports)
	ports[p2] = "x/y"
	if _, ok := a.freePort(ports); ok || p1 == p2 {
		t.Fatalf("ports %d %d, range should be exhausted", p1, p2)
	}
	for _, bad := range [][2]string{{"10.43.0.0", "30000-30001"}, {"fd00::/64", "30000-30001"}, {"10.43.0.0/16", "3-2"}, {"10.43.0.0/16", "x"}} {
		if _, err := newServiceAllocator(nil, bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestServiceAllocatorReservesDNSAddress: the tenth address goes to no
// Service that does not ask for it, and to the one that does.
func TestServiceAllocatorReservesDNSAddress(t *testing.T) {
	a, err := newServiceAllocator(nil, "10.43.0.0/28", "30000-30002")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.dnsServiceIP(); got != "10.43.0.10" {
		t.Fatalf("DNS service IP %q, want 10.43.0.10", got)
	}
	used := map[string]string{}
	for {
		ip, ok := a.freeIP(used)
		if !ok {
			break
		}
		if ip == "10.43.0.10" {
			t.Fatalf("handed out the cluster DNS address unasked")
		}
		used[ip] = "x/y"
	}
	if len(used) != 12 { // .2-.9 and .11-.14
		t.Fatalf("allocated %d addresses, want 12: %v", len(used), used)
	}
	dns := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.10"}}
	a.services = listOf()
	if err := a.allocate(context.Background(), dns); err != nil {
		t.Fatalf("asking for the DNS address: %v", err)
	}
}

func listOf(svcs ...*corev1.Service) func(context.Context) ([]*corev1.Service, error) {
	return func(context.Context) ([]*corev1.Service, error) { return svcs, nil }
}

func svcWith(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.43.0.5", ClusterIPs: []string{"10.43.0.5"}, Ports: ports}}
}

// TestServiceAllocatorUpdate: an update allocates what the Service newly
// needs, keeps what it holds and refuses what another Service holds.
func TestServiceAllocatorUpdate(t *testing.T) {
	tcp80 := corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}
	tcp443 := corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}
	udp53 := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	tcp53 := corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}
	withNodePort := func(p corev1.ServicePort, n int32) corev1.ServicePort { p.NodePort = n; return p }
	other := svcWith("other", corev1.ServiceTypeNodePort, withNodePort(tcp80, 30000))

	for _, tc := range []struct {
		name     string
		old, new *corev1.Service
		check    func(t *testing.T, s *corev1.Service)
		wantErr  string
	}{{
		name: "ClusterIP patched to NodePort gets a node port",
		old:  svcWith("web", corev1.ServiceTypeClusterIP, tcp80),
		new:  svcWith("web", corev1.ServiceTypeNodePort, tcp80),
		check: func(t *testing.T, s *corev1.Service) {
			if p := s.Spec.Ports[0].NodePort; p == 0 || p == 30000 {
				t.Errorf("nodePort %d, want a free one", p)
			}
		},
	}, {
		name: "ClusterIP patched to LoadBalancer gets a node port",
		old:  svcWith("web", corev1.ServiceTypeClusterIP, tcp80),
		new:  svcWith("web", corev1.ServiceTypeLoadBalancer, tcp80),
		check: func(t *testing.T, s *corev1.Service) {
			if s.Spec.Ports[0].NodePort == 0 {
				t.Errorf("no nodePort")
			}
		},
	}, {
		name: "a port added later gets a node port, the old one is kept",
		old:  svcWith("web", corev1.ServiceTypeNodePort, withNodePort(tcp80, 30001)),
		new:  svcWith("web", corev1.ServiceTypeNodePort, withNodePort(tcp80, 30001), tcp443),
		check: func(t *testing.T, s *corev1.Service) {
			if s.Spec.Ports[0].NodePort != 30001 || s.Spec.Ports[1].NodePort == 0 || s.Spec.Ports[1].NodePort == 30001 || s.Spec.Ports[1].NodePort == 30000 {
				t.Errorf("node ports %d, %d", s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort)
			}
		},
	}, {
		name: "TCP and UDP of one port share a node port",
		old:  svcWith("dns", corev1.ServiceTypeClusterIP, udp53, tcp53),
		new:  svcWith("dns", corev1.ServiceTypeNodePort, udp53, tcp53),
		check: func(t *testing.T, s *corev1.Service) {
			if s.Spec.Ports[0].NodePort == 0 || s.Spec.Ports[0].NodePort != s.Spec.Ports[1].NodePort {
				t.Errorf("node ports %d, %d", s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort)
			}
		},
	}, {
		name:    "a node port another Service holds is refused",
		old:     svcWith("web", corev1.ServiceTypeClusterIP, tcp80),
		new:     svcWith("web", corev1.ServiceTypeNodePort, withNodePort(tcp80, 30000)),
		wantErr: "spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated",
	}, {
		name: "externalTrafficPolicy Local gets a health check node port",
		old:  svcWith("web", corev1.ServiceTypeLoadBalancer, withNodePort(tcp80, 30001)),
		new: func() *corev1.Service {
			s := svcWith("web", corev1.ServiceTypeLoadBalancer, withNodePort(tcp80, 30001))
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			return s
		}(),
		check: func(t *testing.T, s *corev1.Service) {
			if p := s.Spec.HealthCheckNodePort; p == 0 || p == 30000 || p == 30001 {
				t.Errorf("healthCheckNodePort %d", p)
			}
		},
	}, {
		name: "allocateLoadBalancerNodePorts false allocates none",
		old:  svcWith("web", corev1.ServiceTypeClusterIP, tcp80),
		new: func() *corev1.Service {
			s := svcWith("web", corev1.ServiceTypeLoadBalancer, tcp80)
			s.Spec.AllocateLoadBalancerNodePorts = new(false)
			return s
		}(),
		check: func(t *testing.T, s *corev1.Service) {
			if s.Spec.Ports[0].NodePort != 0 {
				t.Errorf("nodePort %d allocated", s.Spec.Ports[0].NodePort)
			}
		},
	}, {
		name: "an ExternalName Service turned ClusterIP gets an address",
		old:  &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
		new:  &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{tcp80}}},
		check: func(t *testing.T, s *corev1.Service) {
			if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == "10.43.0.5" || len(s.Spec.ClusterIPs) != 1 {
				t.Errorf("clusterIP %q %v", s.Spec.ClusterIP, s.Spec.ClusterIPs)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := newServiceAllocator(nil, "10.43.0.0/16", "30000-30010")
			if err != nil {
				t.Fatal(err)
			}
			a.services = listOf(other, tc.old)
			err = a.allocateUpdate(context.Background(), tc.new, tc.old)
			if tc.wantErr != "" {
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want an Invalid one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tc.new)
		})
	}
}
