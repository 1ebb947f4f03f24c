package networking

import (
	"context"
	"fmt"
	"net"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

var (
	validPathTypes       = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific}
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

// IngressStrategy governs ingresses. pathType has no default in v1: it is
// required.
type IngressStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = IngressStrategy{}

// PrepareForCreate clears the status.
func (IngressStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*networkingv1.Ingress).Status = networkingv1.IngressStatus{}
}

// Validate checks the default backend, rules (hosts, paths, backends), TLS
// and the class name.
func (IngressStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*networkingv1.Ingress).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(p, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateBackend(spec.DefaultBackend, p.Child("defaultBackend"))...)
	}
	for i, rule := range spec.Rules {
		rp := p.Child("rules").Index(i)
		if rule.Host != "" {
			errs = append(errs, validateHost(rule.Host, rp.Child("host"))...)
			if net.ParseIP(rule.Host) != nil {
				errs = append(errs, field.Invalid(rp.Child("host"), rule.Host, "must be a DNS name, not an IP address"))
			}
		}
		if rule.HTTP == nil {
			continue
		}
		hp := rp.Child("http")
		if len(rule.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp.Child("paths"), ""))
		}
		for j, path := range rule.HTTP.Paths {
			errs = append(errs, validatePath(&path, hp.Child("paths").Index(j))...)
		}
	}
	for i, tls := range spec.TLS {
		tp := p.Child("tls").Index(i)
		for j, host := range tls.Hosts {
			errs = append(errs, validateHost(host, tp.Child("hosts").Index(j))...)
		}
		if tls.SecretName != "" {
			errs = append(errs, core.ValidateDNS1123Subdomain(tls.SecretName, tp.Child("secretName"))...)
		}
	}
	if c := spec.IngressClassName; c != nil {
		errs = append(errs, core.ValidateDNS1123Subdomain(*c, p.Child("ingressClassName"))...)
	}
	return errs
}

// validateHost checks a DNS name, which may start with a "*." wildcard.
func validateHost(host string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	msgs := validation.IsDNS1123Subdomain(host)
	if strings.Contains(host, "*") {
		msgs = validation.IsWildcardDNS1123Subdomain(host)
	}
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, host, msg))
	}
	return errs
}

func validatePath(path *networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	if path.PathType == nil {
		return field.ErrorList{field.Required(p.Child("pathType"), "pathType must be specified")}
	}
	var errs field.ErrorList
	pp := p.Child("path")
	switch *path.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(path.Path, "/") {
			errs = append(errs, field.Invalid(pp, path.Path, "must be an absolute path"))
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(path.Path, seq) {
				errs = append(errs, field.Invalid(pp, path.Path, fmt.Sprintf("must not contain '%s'", seq)))
			}
		}
		for _, suffix := range invalidPathSuffixes {
			if strings.HasSuffix(path.Path, suffix) {
				errs = append(errs, field.Invalid(pp, path.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if path.Path != "" && !strings.HasPrefix(path.Path, "/") {
			errs = append(errs, field.Invalid(pp, path.Path, "must be an absolute path"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("pathType"), *path.PathType, validPathTypes))
	}
	return append(errs, validateBackend(&path.Backend, p.Child("backend"))...)
}

// validateBackend checks a backend: a service (name and exactly one of port
// name or number) or a typed resource reference.
func validateBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(p, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		r := b.Resource
		return validateTypedReference(r.APIGroup, r.Kind, r.Name, p.Child("resource"))
	case b.Service == nil:
		return field.ErrorList{field.Invalid(p, "", "resource or service backend is required")}
	}
	var errs field.ErrorList
	svc, sp := b.Service, p.Child("service")
	if svc.Name == "" {
		errs = append(errs, field.Required(sp.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1035Label(svc.Name) {
			errs = append(errs, field.Invalid(sp.Child("name"), svc.Name, msg))
		}
	}
	switch hasName, hasNumber := svc.Port.Name != "", svc.Port.Number != 0; {
	case hasName && hasNumber:
		errs = append(errs, field.Invalid(p, "", "cannot set both port name & port number"))
	case hasName:
		for _, msg := range validation.IsValidPortName(svc.Port.Name) {
			errs = append(errs, field.Invalid(sp.Child("port", "name"), svc.Port.Name, msg))
		}
	case hasNumber:
		errs = append(errs, core.ValidatePortNumber(svc.Port.Number, sp.Child("port", "number"))...)
	default:
		errs = append(errs, field.Required(p, "port name or number is required"))
	}
	return errs
}

// validateTypedReference checks a typed local object reference.
func validateTypedReference(apiGroup *string, kind, name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if apiGroup != nil {
		errs = append(errs, core.ValidateDNS1123Subdomain(*apiGroup, p.Child("apiGroup"))...)
	}
	for _, f := range []struct{ name, value string }{{"kind", kind}, {"name", name}} {
		if f.value == "" {
			errs = append(errs, field.Required(p.Child(f.name), f.name+" is required"))
			continue
		}
		for _, msg := range content.IsPathSegmentName(f.value) {
			errs = append(errs, field.Invalid(p.Child(f.name), f.value, msg))
		}
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s IngressStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// ValidateStatusUpdate checks the load-balancer ingress points.
func (IngressStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, ing := range obj.(*networkingv1.Ingress).Status.LoadBalancer.Ingress {
		p := field.NewPath("status", "loadBalancer", "ingress").Index(i)
		errs = append(errs, core.ValidateLoadBalancerIngress(ing.IP, ing.Hostname, p)...)
		for j, port := range ing.Ports {
			errs = append(errs, core.ValidatePortNumber(port.Port, p.Child("ports").Index(j).Child("port"))...)
			errs = append(errs, core.ValidateProtocol(port.Protocol, p.Child("ports").Index(j).Child("protocol"))...)
		}
	}
	return errs
}
