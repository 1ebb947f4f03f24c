package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// DefaultServiceIP is the cluster IP of the "kubernetes" service in the
// default namespace (the first address of the default service CIDR
// 10.43.0.0/16). Pods reach the API server through it, so the serving
// certificate must name it.
const DefaultServiceIP = "10.43.0.1"

// fixedDNSNames are the names every serving certificate carries: those under
// which pods and local clients address the API server.
var fixedDNSNames = []string{
	"localhost",
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// sanSet is a normalised set of subject alternative names: lower-case DNS
// names and unmapped IP addresses, each sorted and free of duplicates.
type sanSet struct {
	dns []string
	ips []netip.Addr
}

func (s *sanSet) add(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	if a, err := netip.ParseAddr(name); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("SAN %q: an IP address with a zone cannot be named in a certificate", name)
		}
		s.ips = append(s.ips, a.Unmap())
		return nil
	}
	if err := validDNSName(name); err != nil {
		return err
	}
	s.dns = append(s.dns, strings.ToLower(name))
	return nil
}

func (s *sanSet) addIP(ip net.IP) {
	if a, ok := netip.AddrFromSlice(ip); ok {
		s.ips = append(s.ips, a.Unmap())
	}
}

func (s *sanSet) normalise() {
	slices.Sort(s.dns)
	s.dns = slices.Compact(s.dns)
	slices.SortFunc(s.ips, func(a, b netip.Addr) int { return a.Compare(b) })
	s.ips = slices.Compact(s.ips)
}

func (s *sanSet) netIPs() []net.IP {
	out := make([]net.IP, 0, len(s.ips))
	for _, a := range s.ips {
		out = append(out, net.IP(a.AsSlice()))
	}
	return out
}

// missingFrom returns, in a readable form, the names of s that cert lacks.
func (s *sanSet) missingFrom(cert *x509.Certificate) []string {
	var have sanSet
	for _, d := range cert.DNSNames {
		have.dns = append(have.dns, strings.ToLower(d))
	}
	for _, ip := range cert.IPAddresses {
		have.addIP(ip)
	}
	var missing []string
	for _, d := range s.dns {
		if !slices.Contains(have.dns, d) {
			missing = append(missing, "DNS:"+d)
		}
	}
	for _, a := range s.ips {
		if !slices.Contains(have.ips, a) {
			missing = append(missing, "IP:"+a.String())
		}
	}
	return missing
}

// validDNSName accepts what can sensibly appear as a DNS SAN, including a
// leading wildcard label, and rejects things like URLs or host:port that
// are common --tls-san mistakes.
func validDNSName(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("SAN %q: DNS name longer than 253 characters", name)
	}
	for i, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return fmt.Errorf("SAN %q: not a valid DNS name or IP address", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("SAN %q: not a valid DNS name or IP address", name)
			}
		}
	}
	return nil
}

// servingSANs computes the names the serving certificate must carry. Notes
// on anything that could not be determined are returned for the caller to
// report; they are not fatal, because a server that cannot list its
// interfaces is still reachable under its other names.
func servingSANs(opts Options) (sanSet, []string, error) {
	var (
		s     sanSet
		notes []string
	)
	s.dns = append(s.dns, fixedDNSNames...)
	s.ips = append(s.ips, netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback())

	serviceIP := opts.ServiceIP
	if serviceIP == "" {
		serviceIP = DefaultServiceIP
	}
	a, err := netip.ParseAddr(serviceIP)
	if err != nil {
		return s, nil, fmt.Errorf("service IP %q: %w", serviceIP, err)
	}
	s.ips = append(s.ips, a.Unmap())

	hostname := opts.Hostname
	if hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			notes = append(notes, fmt.Sprintf("hostname not added to the serving certificate: %v", err))
			hostname = ""
		}
	}
	if err := s.add(hostname); err != nil {
		notes = append(notes, fmt.Sprintf("hostname not added to the serving certificate: %v", err))
	}

	addrs, err := hostAddresses()
	if err != nil {
		notes = append(notes, fmt.Sprintf("interface addresses not added to the serving certificate: %v", err))
	}
	s.ips = append(s.ips, addrs...)

	for _, name := range opts.ExtraSANs {
		if err := s.add(name); err != nil {
			return s, nil, err
		}
	}
	s.normalise()
	return s, notes, nil
}

// hostAddresses returns the unicast addresses of the interfaces that are up.
// Link-local addresses are left out: they cannot be used without a zone,
// which a certificate cannot express, and they come and go with every
// virtual interface (pod veths), which would force needless re-issues.
func hostAddresses() ([]netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return out, fmt.Errorf("interface %s: %w", ifc.Name, err)
		}
		for _, addr := range addrs {
			var ip net.IP
			switch v := addr.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			default:
				continue
			}
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			a = a.Unmap()
			if a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
				continue
			}
			out = append(out, a)
		}
	}
	return out, nil
}
