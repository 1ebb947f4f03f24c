// Package discovery holds the strategy for discovery.k8s.io/v1
// EndpointSlices.
package discovery

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Upstream's limits on a slice.
const (
	maxEndpoints = 1000
	maxAddresses = 100
	maxPorts     = 20000
)

var validAddressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}

// EndpointSliceStrategy governs endpointslices.
type EndpointSliceStrategy struct{ registry.DefaultStrategy }

// Default gives each port an empty name and protocol TCP.
func (EndpointSliceStrategy) Default(obj runtime.Object) {
	for i := range obj.(*discoveryv1.EndpointSlice).Ports {
		p := &obj.(*discoveryv1.EndpointSlice).Ports[i]
		if p.Name == nil {
			p.Name = new("")
		}
		if p.Protocol == nil {
			p.Protocol = new(corev1.ProtocolTCP)
		}
	}
}

// Validate checks the address type, each endpoint's addresses against it,
// and the ports.
func (EndpointSliceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	es := obj.(*discoveryv1.EndpointSlice)
	var errs field.ErrorList
	switch {
	case es.AddressType == "":
		errs = append(errs, field.Required(field.NewPath("addressType"), ""))
	case !sets.New(validAddressTypes...).Has(es.AddressType):
		errs = append(errs, field.NotSupported(field.NewPath("addressType"), es.AddressType, validAddressTypes))
	}
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpoints {
		errs = append(errs, field.TooMany(ep, len(es.Endpoints), maxEndpoints))
	}
	for i, e := range es.Endpoints {
		p := ep.Index(i)
		ap := p.Child("addresses")
		switch {
		case len(e.Addresses) == 0:
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		case len(e.Addresses) > maxAddresses:
			errs = append(errs, field.TooMany(ap, len(e.Addresses), maxAddresses))
		}
		for j, addr := range e.Addresses {
			errs = append(errs, validateAddress(es.AddressType, addr, ap.Index(j))...)
		}
		if e.NodeName != nil {
			errs = append(errs, core.ValidateDNS1123Subdomain(*e.NodeName, p.Child("nodeName"))...)
		}
		if e.Hostname != nil {
			errs = append(errs, core.ValidateDNS1123Label(*e.Hostname, p.Child("hostname"))...)
		}
		errs = append(errs, metav1validation.ValidateLabels(e.DeprecatedTopology, p.Child("deprecatedTopology"))...)
	}
	return append(errs, validatePorts(es.Ports, field.NewPath("ports"))...)
}

func validateAddress(t discoveryv1.AddressType, addr string, p *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := core.ValidateIP(addr, p); len(errs) > 0 {
			return errs
		}
		if isV4 := net.ParseIP(addr).To4() != nil; isV4 != (t == discoveryv1.AddressTypeIPv4) {
			return field.ErrorList{field.Invalid(p, addr, "must be a valid "+string(t)+" address")}
		}
		return core.ValidateNonSpecialIP(addr, p)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(p, addr)
	}
	return nil
}

func validatePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(ports) > maxPorts {
		errs = append(errs, field.TooMany(fldPath, len(ports), maxPorts))
	}
	names := sets.New[string]()
	for i, port := range ports {
		p := fldPath.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			errs = append(errs, core.ValidateDNS1123Label(name, p.Child("name"))...)
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(p.Child("name"), name))
		}
		names.Insert(name)
		if port.Protocol == nil {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else {
			errs = append(errs, core.ValidateProtocol(*port.Protocol, p.Child("protocol"))...)
		}
		if port.Port != nil {
			errs = append(errs, core.ValidatePortNumber(*port.Port, p.Child("port"))...)
		}
		if port.AppProtocol != nil {
			errs = append(errs, core.ValidateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return errs
}

// ValidateUpdate also keeps addressType immutable.
func (s EndpointSliceStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, core.ValidateImmutable(obj.(*discoveryv1.EndpointSlice).AddressType, old.(*discoveryv1.EndpointSlice).AddressType,
		field.NewPath("addressType"))...)
}
