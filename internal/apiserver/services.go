package apiserver

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// serviceAllocator hands out Service cluster IPs and node ports. It derives
// what is in use from the stored Services each time, so there is no
// allocation state to keep consistent; creates of Services are serialised
// by the resource handler, and a rotating cursor keeps an update's
// allocation from handing out what a concurrent create just took.
//
// Two addresses of the range are never handed out unasked: the first (the
// kubernetes Service's) and the tenth (cluster DNS, kube-system/kube-dns).
type serviceAllocator struct {
	// services lists the stored Services.
	services func(ctx context.Context) ([]*corev1.Service, error)
	cidr     *net.IPNet
	base     *big.Int
	size     int64
	portLow  int32
	portHigh int32

	mu       sync.Mutex
	nextIP   int64
	nextPort int32
}

// dnsServiceIndex is the offset of the cluster DNS address in the range.
const dnsServiceIndex = 10

func newServiceAllocator(s *Server, cidr, portRange string) (*serviceAllocator, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil || n.IP.To4() == nil {
		return nil, fmt.Errorf("service CIDR %q: must be an IPv4 CIDR", cidr)
	}
	ones, bits := n.Mask.Size()
	lo, hi, ok := strings.Cut(portRange, "-")
	low, err1 := strconv.Atoi(lo)
	high, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || low < 1 || high > 65535 || low > high {
		return nil, fmt.Errorf("node port range %q: want LOW-HIGH", portRange)
	}
	list := func(ctx context.Context) ([]*corev1.Service, error) {
		list, err := s.handler("", "v1", "services").list(ctx, "", metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		items, _ := meta.ExtractList(list)
		out := make([]*corev1.Service, 0, len(items))
		for _, item := range items {
			out = append(out, item.(*corev1.Service))
		}
		return out, nil
	}
	return &serviceAllocator{
		services: list, cidr: n, base: new(big.Int).SetBytes(n.IP.To4()), size: int64(1) << (bits - ones),
		portLow: int32(low), portHigh: int32(high), nextIP: 2, nextPort: int32(low),
	}, nil
}

// kubernetesServiceIP is the first address of the range.
func (a *serviceAllocator) kubernetesServiceIP() string { return a.ipAt(1) }

// dnsServiceIP is the tenth address of the range, reserved for cluster DNS;
// "" when the range is too small to have one.
func (a *serviceAllocator) dnsServiceIP() string {
	if dnsServiceIndex >= a.size-1 {
		return ""
	}
	return a.ipAt(dnsServiceIndex)
}

func (a *serviceAllocator) ipAt(i int64) string {
	v := new(big.Int).Add(a.base, big.NewInt(i)).Bytes()
	ip := make(net.IP, 4)
	copy(ip[4-len(v):], v)
	return ip.String()
}

// allocations are the cluster IPs and node ports in use, by the Service
// ("namespace/name") holding them.
type allocations struct {
	ips   map[string]string
	ports map[int32]string
}

func (a *serviceAllocator) inUse(ctx context.Context) (allocations, error) {
	services, err := a.services(ctx)
	if err != nil {
		return allocations{}, err
	}
	used := allocations{ips: map[string]string{}, ports: map[int32]string{}}
	for _, svc := range services {
		owner := svc.Namespace + "/" + svc.Name
		for _, ip := range svc.Spec.ClusterIPs {
			used.ips[ip] = owner
		}
		if svc.Spec.ClusterIP != "" {
			used.ips[svc.Spec.ClusterIP] = owner
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				used.ports[p.NodePort] = owner
			}
		}
		if svc.Spec.HealthCheckNodePort != 0 {
			used.ports[svc.Spec.HealthCheckNodePort] = owner
		}
	}
	return used, nil
}

// allocate fills a new Service's cluster IP, node ports and health check
// node port, and checks the ones the client asked for.
func (a *serviceAllocator) allocate(ctx context.Context, obj runtime.Object) error {
	return a.assign(ctx, obj.(*corev1.Service), nil)
}

// allocateUpdate fills what an updated Service newly needs — a node port
// for a Service that became NodePort or LoadBalancer or for a port added
// later, a health check node port for externalTrafficPolicy Local, a
// cluster IP for a former ExternalName — as kube-apiserver does on update.
func (a *serviceAllocator) allocateUpdate(ctx context.Context, obj, old runtime.Object) error {
	return a.assign(ctx, obj.(*corev1.Service), old.(*corev1.Service))
}

func (a *serviceAllocator) assign(ctx context.Context, svc, old *corev1.Service) error {
	used, err := a.inUse(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	self := svc.Namespace + "/" + svc.Name
	takenByOther := func(owner string, ok bool) bool { return ok && owner != self }
	var errs field.ErrorList
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case svc.Spec.ClusterIP != "":
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		if old != nil && old.Spec.ClusterIP == svc.Spec.ClusterIP {
			break
		}
		ip := net.ParseIP(svc.Spec.ClusterIP)
		p := field.NewPath("spec", "clusterIPs").Index(0)
		owner, ok := used.ips[ip.String()]
		switch {
		case ip == nil:
			// left to validation, which names the field
		case !a.cidr.Contains(ip):
			errs = append(errs, field.Invalid(p, svc.Spec.ClusterIP,
				fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", svc.Spec.ClusterIP, svc.Spec.ClusterIP, a.cidr)))
		case takenByOther(owner, ok):
			errs = append(errs, field.Invalid(p, svc.Spec.ClusterIP,
				fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", svc.Spec.ClusterIP)))
		}
	default:
		ip, ok := a.freeIP(used.ips)
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full"))
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
	}

	// Ports the Service held before are its own to keep.
	own := map[int32]bool{}
	if old != nil {
		for _, p := range old.Spec.Ports {
			own[p.NodePort] = true
		}
		own[old.Spec.HealthCheckNodePort] = true
	}
	claim := func(port int32, path *field.Path) {
		if own[port] {
			used.ports[port] = self
			return
		}
		owner, ok := used.ports[port]
		switch {
		case port < a.portLow || port > a.portHigh:
			// out of range: the Service strategy's validation says so
		case takenByOther(owner, ok):
			errs = append(errs, field.Invalid(path, port, "provided port is already allocated"))
		default:
			used.ports[port] = self
		}
	}
	allocatePorts := svc.Spec.Type == corev1.ServiceTypeNodePort ||
		svc.Spec.Type == corev1.ServiceTypeLoadBalancer && (svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts)
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			switch {
			case p.NodePort != 0:
				claim(p.NodePort, field.NewPath("spec", "ports").Index(i).Child("nodePort"))
			case allocatePorts:
				port, ok := a.sharedNodePort(svc, i)
				if !ok {
					if port, ok = a.freePort(used.ports); !ok {
						return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full"))
					}
				}
				p.NodePort = port
				used.ports[port] = self
			}
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		if svc.Spec.HealthCheckNodePort != 0 {
			claim(svc.Spec.HealthCheckNodePort, field.NewPath("spec", "healthCheckNodePort"))
		} else {
			port, ok := a.freePort(used.ports)
			if !ok {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a healthCheckNodePort: range is full"))
			}
			svc.Spec.HealthCheckNodePort = port
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, errs)
	}
	return nil
}

// sharedNodePort is the node port an earlier port of the Service with the
// same port number (another protocol) got: upstream gives TCP and UDP of
// one port one node port.
func (a *serviceAllocator) sharedNodePort(svc *corev1.Service, i int) (int32, bool) {
	for _, p := range svc.Spec.Ports[:i] {
		if p.Port == svc.Spec.Ports[i].Port && p.Protocol != svc.Spec.Ports[i].Protocol && p.NodePort != 0 {
			return p.NodePort, true
		}
	}
	return 0, false
}

func (a *serviceAllocator) freeIP(used map[string]string) (string, bool) {
	// Skip the network address, the kubernetes Service's address, the DNS
	// address and the broadcast address.
	span := a.size - 2
	for n := int64(0); n < span; n++ {
		i := (a.nextIP-2+n)%span + 2
		if i == dnsServiceIndex || i >= a.size-1 {
			continue
		}
		ip := a.ipAt(i)
		if _, taken := used[ip]; !taken {
			a.nextIP = i + 1
			return ip, true
		}
	}
	return "", false
}

func (a *serviceAllocator) freePort(used map[int32]string) (int32, bool) {
	span := a.portHigh - a.portLow + 1
	for n := int32(0); n < span; n++ {
		p := a.portLow + (a.nextPort-a.portLow+n)%span
		if _, taken := used[p]; !taken {
			a.nextPort = p + 1
			return p, true
		}
	}
	return 0, false
}
