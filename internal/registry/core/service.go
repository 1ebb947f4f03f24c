package core

import (
	"context"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// The NodePort range Validate enforces; the API server may change it to
// match its allocator.
var (
	NodePortMin int32 = 30000
	NodePortMax int32 = 32767
)

const (
	defaultClientIPTimeoutSeconds = int32(corev1.DefaultClientIPServiceAffinitySeconds) // 10800
	maxClientIPTimeoutSeconds     = int32(86400)
)

var (
	validServiceTypes     = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}
	validSessionAffinity  = []corev1.ServiceAffinity{corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP}
	validTrafficPolicies  = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	validInternalPolicies = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	validIPFamilies       = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	validIPFamilyPolicies = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
)

// ServiceStrategy governs services. Cluster IPs and node ports are
// allocated by the API server; this strategy only defaults and validates
// them.
type ServiceStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = ServiceStrategy{}

func needsClusterIP(s *corev1.Service) bool { return s.Spec.Type != corev1.ServiceTypeExternalName }
func needsNodePort(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}
func needsHealthCheckNodePort(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}
func externallyAccessible(s *corev1.Service) bool {
	return needsNodePort(s) || s.Spec.Type == corev1.ServiceTypeClusterIP && len(s.Spec.ExternalIPs) > 0
}
func isHeadless(s *corev1.Service) bool { return s.Spec.ClusterIP == corev1.ClusterIPNone }

// Default applies the v1 service defaults and, as upstream's IP allocator
// does, the IP family fields.
func (ServiceStrategy) Default(obj runtime.Object) {
	svc := obj.(*corev1.Service)
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if spec.SessionAffinityConfig == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP == nil {
			spec.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = new(defaultClientIPTimeoutSeconds)
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == (intstr.IntOrString{}) {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if externallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = new(true)
	}
	if !needsClusterIP(svc) {
		return
	}
	if spec.InternalTrafficPolicy == nil {
		spec.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyCluster)
	}
	// clusterIP and clusterIPs[0] are one value.
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if isHeadless(svc) && len(spec.Selector) == 0 {
		// A headless service without selector may carry any family.
		if spec.IPFamilyPolicy == nil {
			spec.IPFamilyPolicy = new(corev1.IPFamilyPolicyRequireDualStack)
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		if len(spec.IPFamilies) == 1 && *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
		}
		return
	}
	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
	}
	if len(spec.IPFamilies) == 0 {
		for _, ip := range spec.ClusterIPs {
			if parsed := net.ParseIP(ip); parsed != nil {
				spec.IPFamilies = append(spec.IPFamilies, familyOf(parsed))
			}
		}
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
}

func familyOf(ip net.IP) corev1.IPFamily {
	if ip.To4() != nil {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv4Protocol {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// PrepareForCreate clears the status.
func (ServiceStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*corev1.Service).Status = corev1.ServiceStatus{}
}

// PrepareForUpdate keeps allocated values a client left out (so a replace
// with the original manifest works) and drops allocated values that no
// longer apply after a type change, as upstream does.
func (ServiceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	spec, oldSpec := &svc.Spec, &oldSvc.Spec

	if needsClusterIP(oldSvc) && needsClusterIP(svc) {
		if spec.ClusterIP == "" {
			spec.ClusterIP = oldSpec.ClusterIP
		}
		if len(spec.ClusterIPs) == 0 {
			spec.ClusterIPs = oldSpec.ClusterIPs
		}
	}
	if needsNodePort(oldSvc) && needsNodePort(svc) {
		used := sets.New[int32]()
		for _, p := range spec.Ports {
			used.Insert(p.NodePort)
		}
		byName := map[string]int32{}
		for _, p := range oldSpec.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range spec.Ports {
			if p := &spec.Ports[i]; p.NodePort == 0 && !used.Has(byName[p.Name]) {
				p.NodePort = byName[p.Name]
			}
		}
	}
	if needsHealthCheckNodePort(oldSvc) && needsHealthCheckNodePort(svc) && spec.HealthCheckNodePort == 0 {
		spec.HealthCheckNodePort = oldSpec.HealthCheckNodePort
	}

	// Type changes: wipe what was allocated and no longer applies, unless the
	// client changed it.
	if needsClusterIP(oldSvc) && !needsClusterIP(svc) {
		if spec.ClusterIP == oldSpec.ClusterIP && equality.Semantic.DeepEqual(spec.ClusterIPs, oldSpec.ClusterIPs) {
			spec.ClusterIP, spec.ClusterIPs = "", nil
		}
		if equality.Semantic.DeepEqual(spec.IPFamilies, oldSpec.IPFamilies) {
			spec.IPFamilies = nil
		}
		if equality.Semantic.DeepEqual(spec.IPFamilyPolicy, oldSpec.IPFamilyPolicy) {
			spec.IPFamilyPolicy = nil
		}
	}
	if needsNodePort(oldSvc) && !needsNodePort(svc) && sameNodePorts(spec.Ports, oldSpec.Ports) {
		for i := range spec.Ports {
			spec.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheckNodePort(oldSvc) && !needsHealthCheckNodePort(svc) && spec.HealthCheckNodePort == oldSpec.HealthCheckNodePort {
		spec.HealthCheckNodePort = 0
	}
	if oldSpec.Type == corev1.ServiceTypeLoadBalancer && spec.Type != corev1.ServiceTypeLoadBalancer {
		if equality.Semantic.DeepEqual(spec.AllocateLoadBalancerNodePorts, oldSpec.AllocateLoadBalancerNodePorts) {
			spec.AllocateLoadBalancerNodePorts = nil
		}
		if equality.Semantic.DeepEqual(spec.LoadBalancerClass, oldSpec.LoadBalancerClass) {
			spec.LoadBalancerClass = nil
		}
	}
	if externallyAccessible(oldSvc) && !externallyAccessible(svc) && spec.ExternalTrafficPolicy == oldSpec.ExternalTrafficPolicy {
		spec.ExternalTrafficPolicy = ""
	}
	if spec.Type != corev1.ServiceTypeLoadBalancer {
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
}

func sameNodePorts(a, b []corev1.ServicePort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].NodePort != b[i].NodePort {
			return false
		}
	}
	return true
}

// Validate validates a service.
func (ServiceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	svc := obj.(*corev1.Service)
	spec, p := &svc.Spec, field.NewPath("spec")
	var errs field.ErrorList

	if len(spec.Ports) == 0 && !isHeadless(svc) && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	switch {
	case spec.Type == "":
		errs = append(errs, field.Required(p.Child("type"), ""))
	case !sets.New(validServiceTypes...).Has(spec.Type):
		errs = append(errs, field.NotSupported(p.Child("type"), spec.Type, validServiceTypes))
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		for _, f := range []struct {
			name string
			set  bool
		}{{"clusterIPs", len(spec.ClusterIPs) > 0 || spec.ClusterIP != ""}, {"ipFamilies", len(spec.IPFamilies) > 0}, {"ipFamilyPolicy", spec.IPFamilyPolicy != nil}} {
			if f.set {
				errs = append(errs, field.Forbidden(p.Child(f.name), "may not be set for ExternalName services"))
			}
		}
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname == "" {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		} else {
			errs = append(errs, ValidateDNS1123Subdomain(cname, p.Child("externalName"))...)
		}
	} else {
		errs = append(errs, validateClusterIPs(spec, p)...)
	}
	if isHeadless(svc) && needsNodePort(svc) {
		errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), spec.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
	}

	errs = append(errs, validateServicePorts(svc, p.Child("ports"))...)
	errs = append(errs, metav1validation.ValidateLabels(spec.Selector, p.Child("selector"))...)
	errs = append(errs, validateSessionAffinity(spec, p)...)
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, ValidateIP(ip, p.Child("externalIPs").Index(i))...)
	}
	errs = append(errs, validateTrafficPolicies(svc, p)...)
	errs = append(errs, validateLoadBalancerFields(svc, p)...)
	return errs
}

func validateClusterIPs(spec *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	ipsPath, famPath := p.Child("clusterIPs"), p.Child("ipFamilies")
	switch {
	case spec.ClusterIP != "" && len(spec.ClusterIPs) == 0:
		errs = append(errs, field.Required(ipsPath, ""))
	case spec.ClusterIP != "" && spec.ClusterIPs[0] != spec.ClusterIP:
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
	case spec.ClusterIP == "" && len(spec.ClusterIPs) > 0:
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}
	seen := sets.New[corev1.IPFamily]()
	for i, f := range spec.IPFamilies {
		if !sets.New(validIPFamilies...).Has(f) {
			errs = append(errs, field.NotSupported(famPath.Index(i), f, validIPFamilies))
		}
		if seen.Has(f) {
			errs = append(errs, field.Duplicate(famPath.Index(i), f))
		}
		seen.Insert(f)
	}
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(famPath, spec.IPFamilies, "may only hold up to 2 values"))
	}
	if pol := spec.IPFamilyPolicy; pol != nil {
		if !sets.New(validIPFamilyPolicies...).Has(*pol) {
			errs = append(errs, field.NotSupported(p.Child("ipFamilyPolicy"), *pol, validIPFamilyPolicies))
		} else if *pol == corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) > 1 && spec.ClusterIP != corev1.ClusterIPNone {
			errs = append(errs, field.Invalid(famPath, spec.IPFamilies, "when multiple IP families are specified, ipFamilyPolicy must be PreferDualStack or RequireDualStack"))
		}
	}

	var ips []string
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		if ipErrs := ValidateIP(ip, ipsPath.Index(i)); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
			continue
		}
		ips = append(ips, ip)
	}
	if len(spec.ClusterIPs) > 2 {
		return append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if len(ips) == 2 && familyOf(net.ParseIP(ips[0])) == familyOf(net.ParseIP(ips[1])) {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	if spec.ClusterIP != corev1.ClusterIPNone {
		for i, ip := range ips {
			if i < len(spec.IPFamilies) && familyOf(net.ParseIP(ip)) != spec.IPFamilies[i] {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%v]`", spec.IPFamilies[i], i)))
			}
		}
	}
	return errs
}

func validateServicePorts(svc *corev1.Service, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	type key struct {
		protocol corev1.Protocol
		port     int32
	}
	ports, nodePorts := sets.New[key](), sets.New[key]()
	for i, sp := range svc.Spec.Ports {
		p := fldPath.Index(i)
		switch {
		case len(svc.Spec.Ports) > 1 && sp.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case sp.Name != "":
			errs = append(errs, ValidateDNS1123Label(sp.Name, p.Child("name"))...)
			if names.Has(sp.Name) {
				errs = append(errs, field.Duplicate(p.Child("name"), sp.Name))
			}
			names.Insert(sp.Name)
		}
		errs = append(errs, ValidatePortNumber(sp.Port, p.Child("port"))...)
		errs = append(errs, ValidateProtocol(sp.Protocol, p.Child("protocol"))...)
		errs = append(errs, ValidatePortNumOrName(sp.TargetPort, p.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, ValidateQualifiedName(*sp.AppProtocol, p.Child("appProtocol"))...)
		}
		if k := (key{sp.Protocol, sp.Port}); ports.Has(k) {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("%d/%s", sp.Port, sp.Protocol)))
		} else {
			ports.Insert(k)
		}

		if sp.NodePort == 0 {
			continue
		}
		np := p.Child("nodePort")
		if svc.Spec.Type == corev1.ServiceTypeClusterIP {
			errs = append(errs, field.Forbidden(np, "may not be used when `type` is 'ClusterIP'"))
			continue
		}
		if portErrs := ValidatePortNumber(sp.NodePort, np); len(portErrs) > 0 {
			errs = append(errs, portErrs...)
		} else if sp.NodePort < NodePortMin || sp.NodePort > NodePortMax {
			errs = append(errs, field.Invalid(np, sp.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", NodePortMin, NodePortMax)))
		}
		if k := (key{sp.Protocol, sp.NodePort}); nodePorts.Has(k) {
			errs = append(errs, field.Duplicate(np, sp.NodePort))
		} else {
			nodePorts.Insert(k)
		}
	}
	return errs
}

func validateSessionAffinity(spec *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	cfgPath := p.Child("sessionAffinityConfig")
	switch spec.SessionAffinity {
	case "":
		return field.ErrorList{field.Required(p.Child("sessionAffinity"), "")}
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			return field.ErrorList{field.Forbidden(cfgPath, "must not be set when session affinity is None")}
		}
	case corev1.ServiceAffinityClientIP:
		const when = "when session affinity type is ClientIP"
		cfg := spec.SessionAffinityConfig
		switch {
		case cfg == nil:
			return field.ErrorList{field.Required(cfgPath, when)}
		case cfg.ClientIP == nil:
			return field.ErrorList{field.Required(cfgPath.Child("clientIP"), when)}
		case cfg.ClientIP.TimeoutSeconds == nil:
			return field.ErrorList{field.Required(cfgPath.Child("clientIP", "timeoutSeconds"), when)}
		case *cfg.ClientIP.TimeoutSeconds <= 0 || *cfg.ClientIP.TimeoutSeconds > maxClientIPTimeoutSeconds:
			return field.ErrorList{field.Invalid(cfgPath.Child("clientIP", "timeoutSeconds"), *cfg.ClientIP.TimeoutSeconds,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPTimeoutSeconds))}
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("sessionAffinity"), spec.SessionAffinity, validSessionAffinity)}
	}
	return nil
}

func validateTrafficPolicies(svc *corev1.Service, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	etp := p.Child("externalTrafficPolicy")
	switch {
	case !externallyAccessible(svc) && spec.ExternalTrafficPolicy != "":
		errs = append(errs, field.Invalid(etp, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
	case externallyAccessible(svc) && spec.ExternalTrafficPolicy == "":
		errs = append(errs, field.Required(etp, ""))
	case externallyAccessible(svc) && !sets.New(validTrafficPolicies...).Has(spec.ExternalTrafficPolicy):
		errs = append(errs, field.NotSupported(etp, spec.ExternalTrafficPolicy, validTrafficPolicies))
	}
	if hc := spec.HealthCheckNodePort; hc != 0 {
		if !needsHealthCheckNodePort(svc) {
			errs = append(errs, field.Invalid(p.Child("healthCheckNodePort"), hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			errs = append(errs, ValidatePortNumber(hc, p.Child("healthCheckNodePort"))...)
		}
	}
	itp := p.Child("internalTrafficPolicy")
	switch {
	case spec.InternalTrafficPolicy == nil && needsClusterIP(svc):
		errs = append(errs, field.Required(itp, ""))
	case spec.InternalTrafficPolicy != nil && !sets.New(validInternalPolicies...).Has(*spec.InternalTrafficPolicy):
		errs = append(errs, field.NotSupported(itp, *spec.InternalTrafficPolicy, validInternalPolicies))
	}
	return errs
}

func validateLoadBalancerFields(svc *corev1.Service, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	isLB := spec.Type == corev1.ServiceTypeLoadBalancer
	const onlyLB = "may only be used when `type` is 'LoadBalancer'"
	if len(spec.LoadBalancerSourceRanges) > 0 && !isLB {
		errs = append(errs, field.Forbidden(p.Child("loadBalancerSourceRanges"), onlyLB))
	}
	for i, r := range spec.LoadBalancerSourceRanges {
		errs = append(errs, ValidateCIDR(strings.TrimSpace(r), p.Child("loadBalancerSourceRanges").Index(i))...)
	}
	if spec.LoadBalancerIP != "" {
		errs = append(errs, ValidateIP(spec.LoadBalancerIP, p.Child("loadBalancerIP"))...)
	}
	switch {
	case isLB && spec.AllocateLoadBalancerNodePorts == nil:
		errs = append(errs, field.Required(p.Child("allocateLoadBalancerNodePorts"), ""))
	case !isLB && spec.AllocateLoadBalancerNodePorts != nil:
		errs = append(errs, field.Forbidden(p.Child("allocateLoadBalancerNodePorts"), onlyLB))
	}
	if c := spec.LoadBalancerClass; c != nil {
		if !isLB {
			errs = append(errs, field.Forbidden(p.Child("loadBalancerClass"), onlyLB))
		} else {
			errs = append(errs, ValidateQualifiedName(*c, p.Child("loadBalancerClass"))...)
		}
	}
	return errs
}

// ValidateUpdate validates the service and keeps allocated cluster IPs,
// primary IP family and load-balancer class from changing.
func (s ServiceStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	errs := s.Validate(ctx, obj)
	p := field.NewPath("spec")
	if needsClusterIP(oldSvc) && needsClusterIP(svc) {
		for i, ip := range oldSvc.Spec.ClusterIPs {
			if i < len(svc.Spec.ClusterIPs) && svc.Spec.ClusterIPs[i] != ip {
				errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(i), svc.Spec.ClusterIPs[i], "may not change once set"))
			}
		}
		if len(oldSvc.Spec.IPFamilies) > 0 && len(svc.Spec.IPFamilies) > 0 && oldSvc.Spec.IPFamilies[0] != svc.Spec.IPFamilies[0] {
			errs = append(errs, field.Invalid(p.Child("ipFamilies").Index(0), svc.Spec.IPFamilies[0], "may not change once set"))
		}
	}
	if oldSvc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type == corev1.ServiceTypeLoadBalancer && oldSvc.Spec.LoadBalancerClass != nil {
		errs = append(errs, ValidateImmutable(svc.Spec.LoadBalancerClass, oldSvc.Spec.LoadBalancerClass, p.Child("loadBalancerClass"))...)
	}
	return errs
}

// ValidateStatusUpdate checks the load-balancer ingress points.
func (ServiceStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	svc := obj.(*corev1.Service)
	p := field.NewPath("status", "loadBalancer", "ingress")
	var errs field.ErrorList
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		errs = append(errs, ValidateLoadBalancerIngress(ing.IP, ing.Hostname, p.Index(i))...)
		if ing.IPMode != nil {
			valid := []corev1.LoadBalancerIPMode{corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy}
			if ing.IP == "" {
				errs = append(errs, field.Forbidden(p.Index(i).Child("ipMode"), "may not be specified when `ip` is not set"))
			} else if !sets.New(valid...).Has(*ing.IPMode) {
				errs = append(errs, field.NotSupported(p.Index(i).Child("ipMode"), *ing.IPMode, valid))
			}
		}
	}
	return append(errs, metav1validation.ValidateConditions(svc.Status.Conditions, field.NewPath("status", "conditions"))...)
}

// ValidateLoadBalancerIngress checks a load-balancer ingress point: a valid
// IP, and a hostname that is a DNS name rather than an IP. Ingress status
// uses it too.
func ValidateLoadBalancerIngress(ip, hostname string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ip != "" {
		errs = append(errs, ValidateIP(ip, p.Child("ip"))...)
	}
	if hostname != "" {
		errs = append(errs, ValidateDNS1123Subdomain(hostname, p.Child("hostname"))...)
		if net.ParseIP(hostname) != nil {
			errs = append(errs, field.Invalid(p.Child("hostname"), hostname, "must be a DNS name, not an IP address"))
		}
	}
	return errs
}

// SelectableFields returns spec.clusterIP and spec.type.
func (ServiceStrategy) SelectableFields(obj runtime.Object) fields.Set {
	svc := obj.(*corev1.Service)
	return fields.Set{"spec.clusterIP": svc.Spec.ClusterIP, "spec.type": string(svc.Spec.Type)}
}
