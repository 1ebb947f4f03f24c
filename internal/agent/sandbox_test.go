package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseResolvConf(t *testing.T) {
	c := parseResolvConf([]byte("# comment\nnameserver 10.0.0.1\nnameserver 10.0.0.2 ; x\nsearch a.example b.example\noptions ndots:2 edns0\n"))
	if strings.Join(c.Servers, ",") != "10.0.0.1,10.0.0.2" || strings.Join(c.Searches, ",") != "a.example,b.example" ||
		strings.Join(c.Options, ",") != "ndots:2,edns0" {
		t.Errorf("parsed %+v", c)
	}
}

func TestSandboxConfig(t *testing.T) {
	share := true
	grace := int64(45)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("x", 70), Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{
			ShareProcessNamespace:         &share,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: new(int64(1000)), RunAsGroup: new(int64(2000)), FSGroup: new(int64(3000)),
				SupplementalGroups: []int64{4000}, Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}},
			Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{
				{ContainerPort: 8080, HostPort: 18080, Protocol: corev1.ProtocolTCP},
				{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1"},
				{ContainerPort: 9090}}}},
		},
	}
	c := sandboxConfig(pod, 2, "/logs", &runtimeapi.DNSConfig{})
	if c.Metadata.Name != pod.Name || c.Metadata.Uid != "u1" || c.Metadata.Attempt != 2 {
		t.Errorf("metadata %+v", c.Metadata)
	}
	if len(c.Hostname) != 63 || c.LogDirectory != "/logs/ns_"+pod.Name+"_u1" {
		t.Errorf("hostname %q log dir %q", c.Hostname, c.LogDirectory)
	}
	if c.Labels[labelPodUID] != "u1" || c.Labels[labelManagedBy] != managedBy || c.Labels["app"] != "web" || c.Annotations["a"] != "b" ||
		c.Annotations[annotationGrace] != "45" {
		t.Errorf("labels %v annotations %v", c.Labels, c.Annotations)
	}
	if len(c.PortMappings) != 2 || c.PortMappings[1].Protocol != runtimeapi.Protocol_UDP || c.PortMappings[1].HostIp != "127.0.0.1" {
		t.Errorf("port mappings %v", c.PortMappings)
	}
	sc := c.Linux.SecurityContext
	if sc.NamespaceOptions.Pid != runtimeapi.NamespaceMode_POD || sc.NamespaceOptions.Network != runtimeapi.NamespaceMode_POD ||
		sc.RunAsUser.Value != 1000 || sc.RunAsGroup.Value != 2000 || len(sc.SupplementalGroups) != 2 || sc.Privileged {
		t.Errorf("security context %+v", sc)
	}
	if c.Linux.Sysctls["net.core.somaxconn"] != "1024" || c.Linux.CgroupParent != "havre/besteffort/podu1" {
		t.Errorf("linux %+v", c.Linux)
	}

	pod.Spec.HostNetwork, pod.Spec.HostPID, pod.Spec.HostIPC = true, true, true
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: new(true)}
	c = sandboxConfig(pod, 0, "/logs", &runtimeapi.DNSConfig{})
	ns := c.Linux.SecurityContext.NamespaceOptions
	if c.Hostname != "" || ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE ||
		!c.Linux.SecurityContext.Privileged {
		t.Errorf("host namespaces: hostname %q %+v", c.Hostname, c.Linux.SecurityContext)
	}
}

func TestGracePeriod(t *testing.T) {
	pod := &corev1.Pod{}
	if g := gracePeriod(pod); g != 30 {
		t.Errorf("default %d", g)
	}
	pod.Spec.TerminationGracePeriodSeconds = new(int64(0))
	if g := gracePeriod(pod); g != 2 {
		t.Errorf("minimum %d", g)
	}
	pod.DeletionGracePeriodSeconds = new(int64(12))
	if g := gracePeriod(pod); g != 12 {
		t.Errorf("deletion's %d", g)
	}
}
