//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package core

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// EndpointsStrategy governs core/v1 endpoints.
type EndpointsStrategy struct{ registry.DefaultStrategy }

// Default sets each port's protocol to TCP.
func (EndpointsStrategy) Default(obj runtime.Object) {
	ep := obj.(*corev1.Endpoints)
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// Validate checks each subset's addresses and ports.
func (EndpointsStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range obj.(*corev1.Endpoints).Subsets {
		p := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&a, p.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&a, p.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			switch {
			case len(ss.Ports) > 1 && port.Name == "":
				errs = append(errs, field.Required(pp.Child("name"), ""))
			case port.Name != "":
				errs = append(errs, ValidateDNS1123Label(port.Name, pp.Child("name"))...)
			}
			errs = append(errs, ValidatePortNumber(port.Port, pp.Child("port"))...)
			errs = append(errs, ValidateProtocol(port.Protocol, pp.Child("protocol"))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *corev1.EndpointAddress, p *field.Path) field.ErrorList {
	errs := ValidateIP(a.IP, p.Child("ip"))
	if a.Hostname != "" {
		errs = append(errs, ValidateDNS1123Label(a.Hostname, p.Child("hostname"))...)
	}
	if a.NodeName != nil && *a.NodeName != "" {
		errs = append(errs, ValidateDNS1123Subdomain(*a.NodeName, p.Child("nodeName"))...)
	}
	if len(errs) > 0 {
		return errs
	}
	return ValidateNonSpecialIP(a.IP, p.Child("ip"))
}

// ValidateNonSpecialIP rejects unspecified, loopback and link-local
// (unicast and multicast) addresses as endpoint addresses.
func ValidateNonSpecialIP(ipStr string, p *field.Path) field.ErrorList {
	ip := net.ParseIP(ipStr)
	switch {
	case ip == nil:
		return nil
	case ip.IsUnspecified():
		return field.ErrorList{field.Invalid(p, ipStr, "may not be unspecified (0.0.0.0)")}
	case ip.IsLoopback():
		return field.ErrorList{field.Invalid(p, ipStr, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case ip.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(p, ipStr, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case ip.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(p, ipStr, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

// ValidateUpdate validates like Validate.
func (s EndpointsStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
