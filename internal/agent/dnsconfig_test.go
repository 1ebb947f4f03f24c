package agent

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestDNSConfig checks a pod's resolv.conf for each dnsPolicy, as the
// kubelet forms it.
func TestDNSConfig(t *testing.T) {
	host := &runtimeapi.DNSConfig{Servers: []string{"10.0.0.1"}, Searches: []string{"corp"}, Options: []string{"ndots:1"}}
	cluster := clusterDNS{Servers: []string{"10.43.0.10"}, Domain: "cluster.local"}
	five := "5"
	long := make([]string, 40)
	for i := range long {
		long[i] = fmt.Sprintf("%02d%s.example", i, strings.Repeat("d", 58))
	}
	for _, tc := range []struct {
		name                      string
		policy                    corev1.DNSPolicy
		hostNetwork               bool
		cluster                   clusterDNS
		cfg                       *corev1.PodDNSConfig
		servers, searches, option string
		missing                   bool
		trimmed                   string
	}{
		{name: "cluster first", policy: corev1.DNSClusterFirst, cluster: cluster,
			servers: "10.43.0.10", searches: "ns1.svc.cluster.local,svc.cluster.local,cluster.local,corp", option: "ndots:5"},
		{name: "cluster first is the default", cluster: cluster,
			servers: "10.43.0.10", searches: "ns1.svc.cluster.local,svc.cluster.local,cluster.local,corp", option: "ndots:5"},
		{name: "cluster first on the host network is default", policy: corev1.DNSClusterFirst, hostNetwork: true, cluster: cluster,
			servers: "10.0.0.1", searches: "corp", option: "ndots:1"},
		{name: "cluster first with host net", policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true, cluster: cluster,
			servers: "10.43.0.10", searches: "ns1.svc.cluster.local,svc.cluster.local,cluster.local,corp", option: "ndots:5"},
		{name: "cluster first without cluster DNS falls back to the host's", policy: corev1.DNSClusterFirst,
			servers: "10.0.0.1", searches: "corp", option: "ndots:1", missing: true},
		{name: "default", policy: corev1.DNSDefault, cluster: cluster, servers: "10.0.0.1", searches: "corp", option: "ndots:1"},
		{name: "none", policy: corev1.DNSNone, cluster: cluster, cfg: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"x"}},
			servers: "1.1.1.1", searches: "x"},
		{name: "merged", policy: corev1.DNSDefault, cfg: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "10.0.0.1"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}, {Name: "rotate"}}},
			servers: "10.0.0.1,1.1.1.1", searches: "corp", option: "ndots:5,rotate"},
		{name: "cluster first merged with the pod's", policy: corev1.DNSClusterFirst, cluster: cluster,
			cfg:     &corev1.PodDNSConfig{Searches: []string{"extra.test", "cluster.local"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: new("2")}}},
			servers: "10.43.0.10", searches: "ns1.svc.cluster.local,svc.cluster.local,cluster.local,corp,extra.test", option: "ndots:2"},
		{name: "at most three servers", policy: corev1.DNSDefault, cfg: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3"}},
			servers: "10.0.0.1,1.1.1.1,2.2.2.2", searches: "corp", option: "ndots:1",
			trimmed: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.0.0.1 1.1.1.1 2.2.2.2"},
		{name: "search line within 32 domains and 2048 characters", policy: corev1.DNSNone, cfg: &corev1.PodDNSConfig{Searches: long},
			searches: strings.Join(long[:29], ","), trimmed: "Search Line limits were exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1"}, Spec: corev1.PodSpec{DNSPolicy: tc.policy, HostNetwork: tc.hostNetwork, DNSConfig: tc.cfg}}
			res := dnsConfig(pod, host, tc.cluster)
			c := res.Config
			if got := strings.Join(c.Servers, ","); got != tc.servers {
				t.Errorf("servers %s, want %s", got, tc.servers)
			}
			if got := strings.Join(c.Searches, ","); got != tc.searches {
				t.Errorf("searches %s, want %s", got, tc.searches)
			}
			if got := strings.Join(c.Options, ","); got != tc.option {
				t.Errorf("options %s, want %s", got, tc.option)
			}
			if res.MissingClusterDNS != tc.missing {
				t.Errorf("MissingClusterDNS %v, want %v", res.MissingClusterDNS, tc.missing)
			}
			if !strings.HasPrefix(res.Trimmed, tc.trimmed) || (tc.trimmed == "") != (res.Trimmed == "") {
				t.Errorf("trimmed %q, want %q", res.Trimmed, tc.trimmed)
			}
		})
	}
	if len(host.Servers) != 1 || len(host.Searches) != 1 {
		t.Error("the host's configuration was modified")
	}
}
