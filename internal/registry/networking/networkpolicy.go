package networking

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

var validPolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}

// NetworkPolicyStrategy governs networkpolicies.
type NetworkPolicyStrategy struct{ registry.DefaultStrategy }

// Default sets policyTypes (Ingress, plus Egress when egress rules exist)
// and each port's protocol to TCP.
func (NetworkPolicyStrategy) Default(obj runtime.Object) {
	spec := &obj.(*networkingv1.NetworkPolicy).Spec
	if len(spec.PolicyTypes) == 0 {
		spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(spec.Egress) > 0 {
			spec.PolicyTypes = append(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	defaultPorts := func(ports []networkingv1.NetworkPolicyPort) {
		for i := range ports {
			if ports[i].Protocol == nil {
				ports[i].Protocol = new(corev1.ProtocolTCP)
			}
		}
	}
	for i := range spec.Ingress {
		defaultPorts(spec.Ingress[i].Ports)
	}
	for i := range spec.Egress {
		defaultPorts(spec.Egress[i].Ports)
	}
}

// Validate checks selectors, ports, peers and policy types.
func (NetworkPolicyStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*networkingv1.NetworkPolicy).Spec, field.NewPath("spec")
	errs := metav1validation.ValidateLabelSelector(&spec.PodSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("podSelector"))
	for i, rule := range spec.Ingress {
		rp := p.Child("ingress").Index(i)
		errs = append(errs, validatePorts(rule.Ports, rp.Child("ports"))...)
		errs = append(errs, validatePeers(rule.From, rp.Child("from"))...)
	}
	for i, rule := range spec.Egress {
		rp := p.Child("egress").Index(i)
		errs = append(errs, validatePorts(rule.Ports, rp.Child("ports"))...)
		errs = append(errs, validatePeers(rule.To, rp.Child("to"))...)
	}
	tp := p.Child("policyTypes")
	if len(spec.PolicyTypes) > len(validPolicyTypes) {
		return append(errs, field.Invalid(tp, spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range spec.PolicyTypes {
		if !sets.New(validPolicyTypes...).Has(t) {
			errs = append(errs, field.NotSupported(tp.Index(i), t, validPolicyTypes))
		}
	}
	return errs
}

func validatePorts(ports []networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, port := range ports {
		p := fldPath.Index(i)
		if port.Protocol != nil {
			errs = append(errs, core.ValidateProtocol(*port.Protocol, p.Child("protocol"))...)
		}
		switch {
		case port.Port == nil && port.EndPort != nil:
			errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
		case port.Port == nil:
		case port.Port.Type == intstr.Int:
			errs = append(errs, core.ValidatePortNumber(port.Port.IntVal, p.Child("port"))...)
			if port.EndPort != nil {
				if *port.EndPort < port.Port.IntVal {
					errs = append(errs, field.Invalid(p.Child("endPort"), port.Port.IntVal, "must be greater than or equal to `port`"))
				}
				errs = append(errs, core.ValidatePortNumber(*port.EndPort, p.Child("endPort"))...)
			}
		default:
			if port.EndPort != nil {
				errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
			}
			errs = append(errs, core.ValidatePortNumOrName(*port.Port, p.Child("port"))...)
		}
	}
	return errs
}

func validatePeers(peers []networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	opts := metav1validation.LabelSelectorValidationOptions{}
	for i, peer := range peers {
		p := fldPath.Index(i)
		n := 0
		if peer.PodSelector != nil {
			n++
			errs = append(errs, metav1validation.ValidateLabelSelector(peer.PodSelector, opts, p.Child("podSelector"))...)
		}
		if peer.NamespaceSelector != nil {
			n++
			errs = append(errs, metav1validation.ValidateLabelSelector(peer.NamespaceSelector, opts, p.Child("namespaceSelector"))...)
		}
		if peer.IPBlock != nil {
			n++
			errs = append(errs, validateIPBlock(peer.IPBlock, p.Child("ipBlock"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Required(p, "must specify a peer"))
		case n > 1 && peer.IPBlock != nil:
			errs = append(errs, field.Forbidden(p, "may not specify both ipBlock and another peer"))
		}
	}
	return errs
}

func validateIPBlock(b *networkingv1.IPBlock, p *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(p.Child("cidr"), "")}
	}
	errs := core.ValidateCIDR(b.CIDR, p.Child("cidr"))
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		return errs
	}
	for i, e := range b.Except {
		ep := p.Child("except").Index(i)
		if eErrs := core.ValidateCIDR(e, ep); len(eErrs) > 0 {
			errs = append(errs, eErrs...)
			continue
		}
		_, except, _ := net.ParseCIDR(e)
		cidrLen, _ := cidr.Mask.Size()
		exceptLen, _ := except.Mask.Size()
		if !cidr.Contains(except.IP) || cidrLen >= exceptLen {
			errs = append(errs, field.Invalid(ep, e, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s NetworkPolicyStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
