package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validService is a realistic ClusterIP service, defaulted, with the
// cluster IP the API server allocates.
func validService() *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "https", Port: 443},
			},
		},
	}
	ServiceStrategy{}.Default(svc)
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
	return svc
}

func TestServiceDefaults(t *testing.T) {
	svc := validService()
	s := svc.Spec
	if s.Type != corev1.ServiceTypeClusterIP || s.SessionAffinity != corev1.ServiceAffinityNone || *s.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster ||
		*s.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack || len(s.IPFamilies) != 1 || s.IPFamilies[0] != corev1.IPv4Protocol || s.ExternalTrafficPolicy != "" {
		t.Errorf("spec defaults: %+v", s)
	}
	if s.Ports[1].Protocol != corev1.ProtocolTCP || s.Ports[1].TargetPort != intstr.FromInt32(443) || s.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("port defaults: %+v", s.Ports)
	}

	np := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityClientIP, ClusterIP: "fd00::10"}}
	ServiceStrategy{}.Default(np)
	if np.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster || !*np.Spec.AllocateLoadBalancerNodePorts ||
		*np.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 || np.Spec.IPFamilies[0] != corev1.IPv6Protocol || np.Spec.ClusterIPs[0] != "fd00::10" {
		t.Errorf("LoadBalancer defaults: %+v", np.Spec)
	}

	headless := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	ServiceStrategy{}.Default(headless)
	if *headless.Spec.IPFamilyPolicy != corev1.IPFamilyPolicyRequireDualStack || len(headless.Spec.IPFamilies) != 2 {
		t.Errorf("selectorless headless defaults: %+v", headless.Spec)
	}

	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}
	ServiceStrategy{}.Default(ext)
	if ext.Spec.IPFamilyPolicy != nil || ext.Spec.InternalTrafficPolicy != nil {
		t.Errorf("ExternalName must not get IP defaults: %+v", ext.Spec)
	}
}

func TestServiceValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Service)
		want   []want
	}{
		{"valid", func(*corev1.Service) {}, nil},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, []want{{"spec.ports", field.ErrorTypeRequired}}},
		{"headless without ports", func(s *corev1.Service) {
			s.Spec.Ports = nil
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, nil},
		{"unnamed port among several", func(s *corev1.Service) { s.Spec.Ports[1].Name = "" }, []want{{"spec.ports[1].name", field.ErrorTypeRequired}}},
		{"duplicate port name", func(s *corev1.Service) { s.Spec.Ports[1].Name = "http" }, []want{{"spec.ports[1].name", field.ErrorTypeDuplicate}}},
		{"duplicate port", func(s *corev1.Service) { s.Spec.Ports[1].Port = 80 }, []want{{"spec.ports[1]", field.ErrorTypeDuplicate}}},
		{"port zero", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }, []want{{"spec.ports[0].port", field.ErrorTypeInvalid}}},
		{"bad protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, []want{{"spec.ports[0].protocol", field.ErrorTypeNotSupported}}},
		{"bad targetPort", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(0) }, []want{{"spec.ports[0].targetPort", field.ErrorTypeInvalid}}},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }, []want{{"spec.ports[0].nodePort", field.ErrorTypeForbidden}}},
		{"nodePort out of range", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort = 8080
		}, []want{{"spec.ports[0].nodePort", field.ErrorTypeInvalid}}},
		{"duplicate nodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 30080, 30080
		}, []want{{"spec.ports[1].nodePort", field.ErrorTypeDuplicate}}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Internal" }, []want{{"spec.type", field.ErrorTypeNotSupported}}},
		{"bad clusterIP", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.300", []string{"10.96.0.300"} },
			[]want{{"spec.clusterIPs[0]", field.ErrorTypeInvalid}}},
		{"clusterIP mismatch", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.11"} }, []want{{"spec.clusterIPs", field.ErrorTypeInvalid}}},
		{"clusterIP family mismatch", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::1", []string{"fd00::1"} },
			[]want{{"spec.clusterIPs[0]", field.ErrorTypeInvalid}}},
		{"headless NodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, []want{{"spec.clusterIPs[0]", field.ErrorTypeInvalid}}},
		{"bad selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "web app"} }, []want{{"spec.selector", field.ErrorTypeInvalid}}},
		{"externalTrafficPolicy on ClusterIP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			[]want{{"spec.externalTrafficPolicy", field.ErrorTypeInvalid}}},
		{"sessionAffinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }, []want{{"spec.sessionAffinity", field.ErrorTypeNotSupported}}},
		{"sessionAffinityConfig with None", func(s *corev1.Service) { s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{} },
			[]want{{"spec.sessionAffinityConfig", field.ErrorTypeForbidden}}},
		{"sourceRanges on ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} },
			[]want{{"spec.loadBalancerSourceRanges", field.ErrorTypeForbidden}}},
		{"ExternalName", func(s *corev1.Service) {
			*s = corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}}
			ServiceStrategy{}.Default(s)
		}, nil},
		{"ExternalName without name", func(s *corev1.Service) {
			*s = corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}
			ServiceStrategy{}.Default(s)
		}, []want{{"spec.externalName", field.ErrorTypeRequired}}},
		{"ExternalName with clusterIP", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
			s.Spec.IPFamilies, s.Spec.IPFamilyPolicy, s.Spec.InternalTrafficPolicy = nil, nil, nil
		}, []want{{"spec.clusterIPs", field.ErrorTypeForbidden}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := validService()
			tc.mutate(svc)
			checkErrors(t, ServiceStrategy{}.Validate(ctx, svc), tc.want...)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	old := validService()
	old.Spec.Type = corev1.ServiceTypeNodePort
	old.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	old.Spec.Ports[0].NodePort, old.Spec.Ports[1].NodePort = 30080, 30443

	// A replace with the original manifest keeps the allocated values.
	svc := &corev1.Service{ObjectMeta: old.ObjectMeta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: old.Spec.Selector,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Name: "https", Port: 443}}}}
	ServiceStrategy{}.Default(svc)
	ServiceStrategy{}.PrepareForUpdate(ctx, svc, old)
	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Ports[0].NodePort != 30080 || svc.Spec.Ports[1].NodePort != 30443 {
		t.Errorf("allocated values not kept: %+v", svc.Spec)
	}
	checkErrors(t, ServiceStrategy{}.ValidateUpdate(ctx, svc, old))

	// clusterIP is immutable.
	svc = old.DeepCopy()
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
	checkErrors(t, ServiceStrategy{}.ValidateUpdate(ctx, svc, old), want{"spec.clusterIPs[0]", field.ErrorTypeInvalid})

	// Switching to ClusterIP drops the node ports and externalTrafficPolicy.
	svc = old.DeepCopy()
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	ServiceStrategy{}.PrepareForUpdate(ctx, svc, old)
	checkErrors(t, ServiceStrategy{}.ValidateUpdate(ctx, svc, old))
	if svc.Spec.Ports[0].NodePort != 0 || svc.Spec.ExternalTrafficPolicy != "" {
		t.Errorf("type-dependent fields kept: %+v", svc.Spec)
	}

	// Switching to ExternalName drops the cluster IPs.
	svc = old.DeepCopy()
	svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
	ServiceStrategy{}.PrepareForUpdate(ctx, svc, old)
	checkErrors(t, ServiceStrategy{}.ValidateUpdate(ctx, svc, old))
}

func TestServiceStatusAndFields(t *testing.T) {
	svc := validService()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}, {Hostname: "10.0.0.1"}}
	checkErrors(t, ServiceStrategy{}.ValidateStatusUpdate(ctx, svc, validService()),
		want{"status.loadBalancer.ingress[1].hostname", field.ErrorTypeInvalid})

	got := ServiceStrategy{}.SelectableFields(svc)
	if len(got) != 2 || got["spec.clusterIP"] != "10.96.0.10" || got["spec.type"] != "ClusterIP" {
		t.Errorf("fields = %v", got)
	}
}
