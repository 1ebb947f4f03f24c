//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package endpoint

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// RepackSubsets puts subsets in their canonical form: ports that are
// offered by exactly the same addresses (with the same readiness) share one
// subset, every address appears once per subset, addresses are sorted by IP
// then target UID, ports by name, port and protocol, and subsets by their
// ports. An address listed both ready and not ready for a port is ready.
// Equivalent inputs give equal outputs, so the result can be compared with
// what is stored.
func RepackSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	type addrKey struct{ ip, uid string }
	// noPort stands for the ports of a subset without any, so that its
	// addresses are kept.
	const noPort = "-"

	addrs := map[addrKey]corev1.EndpointAddress{}
	ports := map[string]corev1.EndpointPort{}
	// readyByPort is, for each port, its addresses and whether each is ready.
	readyByPort := map[string]map[addrKey]bool{}
	for _, s := range subsets {
		keys := []string{noPort}
		if len(s.Ports) > 0 {
			keys = keys[:0]
			for _, p := range s.Ports {
				k := portsKey([]corev1.EndpointPort{p})
				ports[k] = p
				keys = append(keys, k)
			}
		}
		add := func(a corev1.EndpointAddress, ready bool) {
			ak := addrKey{ip: a.IP}
			if a.TargetRef != nil {
				ak.uid = string(a.TargetRef.UID)
			}
			if _, ok := addrs[ak]; !ok {
				addrs[ak] = a
			}
			for _, pk := range keys {
				m := readyByPort[pk]
				if m == nil {
					m = map[addrKey]bool{}
					readyByPort[pk] = m
				}
				m[ak] = m[ak] || ready
			}
		}
		for _, a := range s.Addresses {
			add(a, true)
		}
		for _, a := range s.NotReadyAddresses {
			add(a, false)
		}
	}

	// Ports whose address sets are equal form one subset.
	type group struct {
		ports []corev1.EndpointPort
		addrs map[addrKey]bool
	}
	groups := map[string]*group{}
	for pk, m := range readyByPort {
		members := make([]string, 0, len(m))
		for ak, ready := range m {
			members = append(members, ak.ip+"|"+ak.uid+"|"+strconv.FormatBool(ready))
		}
		slices.Sort(members)
		setKey := strings.Join(members, ",")
		g := groups[setKey]
		if g == nil {
			g = &group{addrs: m}
			groups[setKey] = g
		}
		if pk != noPort {
			g.ports = append(g.ports, ports[pk])
		}
	}

	out := make([]corev1.EndpointSubset, 0, len(groups))
	for _, g := range groups {
		var s corev1.EndpointSubset
		for ak, ready := range g.addrs {
			if ready {
				s.Addresses = append(s.Addresses, addrs[ak])
			} else {
				s.NotReadyAddresses = append(s.NotReadyAddresses, addrs[ak])
			}
		}
		slices.SortFunc(s.Addresses, compareAddresses)
		slices.SortFunc(s.NotReadyAddresses, compareAddresses)
		slices.SortFunc(g.ports, comparePorts)
		s.Ports = g.ports
		out = append(out, s)
	}
	// Each port is in one subset, so subsets differ in their ports (at most
	// one has none).
	slices.SortFunc(out, func(a, b corev1.EndpointSubset) int {
		return strings.Compare(portsKey(a.Ports), portsKey(b.Ports))
	})
	return out
}

func comparePorts(a, b corev1.EndpointPort) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port), strings.Compare(string(a.Protocol), string(b.Protocol)))
}

func portsKey(ports []corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		b.WriteString(p.Name)
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(p.Port)))
		b.WriteByte('/')
		b.WriteString(string(p.Protocol))
		if p.AppProtocol != nil {
			b.WriteByte('/')
			b.WriteString(*p.AppProtocol)
		}
		b.WriteByte(';')
	}
	return b.String()
}

func compareAddresses(a, b corev1.EndpointAddress) int {
	if c := compareIPs(a.IP, b.IP); c != 0 {
		return c
	}
	var ua, ub string
	if a.TargetRef != nil {
		ua = string(a.TargetRef.UID)
	}
	if b.TargetRef != nil {
		ub = string(b.TargetRef.UID)
	}
	return strings.Compare(ua, ub)
}

// compareIPs orders IPs numerically (10.0.0.9 before 10.0.0.10), anything
// unparsable after them as text.
func compareIPs(a, b string) int {
	ia, errA := netip.ParseAddr(a)
	ib, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return ia.Compare(ib)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}
