package apiserver

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"

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
// by the resource handler.
type serviceAllocator struct {
	srv      *Server
	cidr     *net.IPNet
	base     *big.Int
	size     int64
	portLow  int32
	portHigh int32
	nextIP   int64
	nextPort int32
}

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
	return &serviceAllocator{
		srv: s, cidr: n, base: new(big.Int).SetBytes(n.IP.To4()), size: int64(1) << (bits - ones),
		portLow: int32(low), portHigh: int32(high), nextIP: 10, nextPort: int32(low),
	}, nil
}

// kubernetesServiceIP is the first address of the range.
func (a *serviceAllocator) kubernetesServiceIP() string { return a.ipAt(1) }

func (a *serviceAllocator) ipAt(i int64) string {
	v := new(big.Int).Add(a.base, big.NewInt(i)).Bytes()
	ip := make(net.IP, 4)
	copy(ip[4-len(v):], v)
	return ip.String()
}

func (a *serviceAllocator) inUse(ctx context.Context) (ips map[string]bool, ports map[int32]bool, err error) {
	list, err := a.srv.handler("", "v1", "services").list(ctx, "", metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	items, _ := meta.ExtractList(list)
	ips, ports = map[string]bool{}, map[int32]bool{}
	for _, item := range items {
		svc := item.(*corev1.Service)
		for _, ip := range svc.Spec.ClusterIPs {
			ips[ip] = true
		}
		ips[svc.Spec.ClusterIP] = true
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				ports[p.NodePort] = true
			}
		}
	}
	return ips, ports, nil
}

// allocate fills a new Service's cluster IP and node ports, and checks the
// ones the client asked for.
func (a *serviceAllocator) allocate(ctx context.Context, obj runtime.Object) error {
	svc := obj.(*corev1.Service)
	gk := schema.GroupKind{Kind: "Service"}
	ips, ports, err := a.inUse(ctx)
	if err != nil {
		return err
	}
	var errs field.ErrorList
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	case svc.Spec.ClusterIP != "":
		ip := net.ParseIP(svc.Spec.ClusterIP)
		p := field.NewPath("spec", "clusterIPs").Index(0)
		switch {
		case ip == nil:
			// left to validation, which names the field
		case !a.cidr.Contains(ip):
			errs = append(errs, field.Invalid(p, svc.Spec.ClusterIP,
				fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", svc.Spec.ClusterIP, svc.Spec.ClusterIP, a.cidr)))
		case ips[ip.String()]:
			errs = append(errs, field.Invalid(p, svc.Spec.ClusterIP,
				fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", svc.Spec.ClusterIP)))
		}
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	default:
		ip, ok := a.freeIP(ips)
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full"))
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			switch {
			case p.NodePort == 0:
				port, ok := a.freePort(ports)
				if !ok {
					return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full"))
				}
				p.NodePort = port
				ports[port] = true
			case p.NodePort < a.portLow || p.NodePort > a.portHigh:
				// out of range: the Service strategy's validation says so
			case ports[p.NodePort]:
				errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
			default:
				ports[p.NodePort] = true
			}
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(gk, svc.Name, errs)
	}
	return nil
}

func (a *serviceAllocator) freeIP(used map[string]bool) (string, bool) {
	// Skip the network address and the kubernetes Service's address.
	for n := int64(0); n < a.size; n++ {
		i := (a.nextIP+n-2)%(a.size-2) + 2
		ip := a.ipAt(i)
		if !used[ip] && i < a.size-1 {
			a.nextIP = i + 1
			return ip, true
		}
	}
	return "", false
}

func (a *serviceAllocator) freePort(used map[int32]bool) (int32, bool) {
	span := a.portHigh - a.portLow + 1
	for n := int32(0); n < span; n++ {
		p := a.portLow + (a.nextPort-a.portLow+n)%span
		if !used[p] {
			a.nextPort = p + 1
			return p, true
		}
	}
	return 0, false
}
