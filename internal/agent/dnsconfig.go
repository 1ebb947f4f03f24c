package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DNS limits the kubelet applies (validation.MaxDNSNameservers,
// MaxDNSSearchPaths, MaxDNSSearchListChars).
const (
	maxDNSNameservers     = 3
	maxDNSSearches        = 32
	maxDNSSearchListChars = 2048
)

// clusterDNS is what ClusterFirst pods resolve with: the cluster DNS
// addresses and the cluster domain.
type clusterDNS struct {
	Servers []string
	Domain  string
}

// dnsResult is a pod's resolver configuration, with what the kubelet
// would say about it in Events.
type dnsResult struct {
	Config *runtimeapi.DNSConfig
	// MissingClusterDNS: a ClusterFirst pod fell back to the host's
	// resolvers because no cluster DNS is known.
	MissingClusterDNS bool
	// Trimmed says which limit was exceeded ("" if none).
	Trimmed string
}

// dnsConfig is the resolver configuration of a pod, as the kubelet forms
// it: ClusterFirst (unless on the host network) and ClusterFirstWithHostNet
// resolve through cluster DNS, with the pod's namespace, svc and cluster
// domains before the host's search list and ndots:5; Default takes the
// host's; None nothing but the pod's dnsConfig, which is merged into the
// others. The result fits upstream's limits.
func dnsConfig(pod *corev1.Pod, host *runtimeapi.DNSConfig, cluster clusterDNS) dnsResult {
	var res dnsResult
	out := &runtimeapi.DNSConfig{}
	if host != nil {
		out.Servers = slices.Clone(host.Servers)
		out.Searches = slices.Clone(host.Searches)
		out.Options = slices.Clone(host.Options)
	}
	useCluster := false
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		out = &runtimeapi.DNSConfig{}
	case corev1.DNSClusterFirstWithHostNet:
		useCluster = true
	case corev1.DNSDefault:
	default: // ClusterFirst, the default
		useCluster = !pod.Spec.HostNetwork
	}
	if useCluster {
		if len(cluster.Servers) == 0 {
			res.MissingClusterDNS = true
		} else {
			out.Servers = slices.Clone(cluster.Servers)
			if cluster.Domain != "" {
				out.Searches = append([]string{pod.Namespace + ".svc." + cluster.Domain, "svc." + cluster.Domain, cluster.Domain}, out.Searches...)
			}
			out.Searches = omitDuplicates(out.Searches)
			out.Options = []string{"ndots:5"}
		}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		out.Servers = omitDuplicates(append(out.Servers, c.Nameservers...))
		out.Searches = omitDuplicates(append(out.Searches, c.Searches...))
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			out.Options = slices.DeleteFunc(out.Options, func(x string) bool {
				return x == o.Name || strings.HasPrefix(x, o.Name+":")
			})
			out.Options = append(out.Options, opt)
		}
	}
	if len(out.Servers) > maxDNSNameservers {
		out.Servers = out.Servers[:maxDNSNameservers]
		res.Trimmed = fmt.Sprintf("Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: %s", strings.Join(out.Servers, " "))
	}
	if searches, trimmed := fitSearches(out.Searches); trimmed {
		out.Searches = searches
		res.Trimmed = fmt.Sprintf("Search Line limits were exceeded, some search paths have been omitted, the applied search line is: %s", strings.Join(searches, " "))
	}
	res.Config = out
	return res
}

// fitSearches keeps the search domains within the count and length limits.
func fitSearches(searches []string) ([]string, bool) {
	trimmed := false
	if len(searches) > maxDNSSearches {
		searches, trimmed = searches[:maxDNSSearches], true
	}
	for len(searches) > 0 && len(strings.Join(searches, " ")) > maxDNSSearchListChars {
		searches, trimmed = searches[:len(searches)-1], true
	}
	return searches, trimmed
}

func omitDuplicates(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// sandboxDNS is a pod's resolver configuration, recording the kubelet's
// Events when cluster DNS is missing or a limit was exceeded.
func (a *Agent) sandboxDNS(pod *corev1.Pod) *runtimeapi.DNSConfig {
	res := dnsConfig(pod, a.hostDNS, a.clusterDNS())
	if res.MissingClusterDNS && a.recorder != nil {
		a.recorder.Eventf(pod, corev1.EventTypeWarning, "MissingClusterDNS",
			"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
			pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", corev1.DNSClusterFirst, corev1.DNSDefault)
	}
	if res.Trimmed != "" && a.recorder != nil {
		a.recorder.Event(pod, corev1.EventTypeWarning, "DNSConfigForming", res.Trimmed)
	}
	return res.Config
}

// clusterDNS is the cluster DNS the agent configures ClusterFirst pods
// with (none until it is known).
func (a *Agent) clusterDNS() clusterDNS {
	servers, _ := a.clusterDNSServers.Load().([]string)
	return clusterDNS{Servers: servers, Domain: a.clusterDomain()}
}

// clusterDomain is the cluster's DNS domain.
func (a *Agent) clusterDomain() string {
	if a.opts.ClusterDomain != "" {
		return a.opts.ClusterDomain
	}
	return DefaultClusterDomain
}

// DefaultClusterDomain is the cluster domain unless configured.
const DefaultClusterDomain = "cluster.local"

// parseResolvConf reads nameservers, search domains and options.
func parseResolvConf(data []byte) *runtimeapi.DNSConfig {
	c := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.Servers = append(c.Servers, f[1])
		case "search":
			c.Searches = f[1:]
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}

// DefaultResolvConf is the host resolver configuration Default pods and
// cluster DNS's forwarding use unless configured (the kubelet's
// --resolv-conf).
const DefaultResolvConf = "/etc/resolv.conf"

// hostDNS reads the host's resolver configuration from path. A loopback
// nameserver (systemd-resolved's stub) is unreachable from pods:
// resolved's upstream list is used instead when there is one.
func hostDNS(path string) *runtimeapi.DNSConfig {
	if path == "" {
		path = DefaultResolvConf
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return &runtimeapi.DNSConfig{}
	}
	c := parseResolvConf(data)
	for _, s := range c.Servers {
		if ip := net.ParseIP(s); ip != nil && ip.IsLoopback() {
			if data, err := os.ReadFile("/run/systemd/resolve/resolv.conf"); err == nil {
				return parseResolvConf(data)
			}
			break
		}
	}
	return c
}
