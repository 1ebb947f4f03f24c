package proxy

import (
	"net/netip"
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

// Names of the fixed sets, maps and chains (kube-proxy's nftables mode).
const (
	setClusterIPs          = "cluster-ips"
	setNodePortIPs         = "nodeport-ips"
	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"

	chainServices             = "services"
	chainMasquerading         = "masquerading"
	chainMarkMasq             = "mark-for-masquerade"
	chainClusterIPsCheck      = "cluster-ips-check"
	chainNodePortEndpoints    = "nodeport-endpoints-check"
	chainServiceEndpoints     = "service-endpoints-check"
	chainReject               = "reject-chain"
	chainFilterInput          = "filter-input"
	chainFilterForward        = "filter-forward"
	chainFilterOutput         = "filter-output"
	chainFilterOutputPostDNAT = "filter-output-post-dnat"
	chainNATPrerouting        = "nat-prerouting"
	chainNATOutput            = "nat-output"
	chainNATPostrouting       = "nat-postrouting"

	masqBit = 0x4000

	defaultAffinityTimeout = 10800 * time.Second
)

// BuildConfig is everything besides Services and EndpointSlices the rules depend on.
type BuildConfig struct {
	Table        string
	NodeName     string
	Zone         string // this node's topology.kubernetes.io/zone
	NodeIPs      []netip.Addr
	ClusterCIDR  netip.Prefix
	ServiceCIDRs []netip.Prefix
	LocalDNS     *LocalService
	// Shards is how many shard tables Services are spread over; 0 means DefaultShards.
	Shards int
}

func (bc *BuildConfig) shards() int {
	if bc.Shards <= 0 {
		return DefaultShards
	}
	return min(bc.Shards, MaxShards)
}

// Build is the whole model for these Services and EndpointSlices: a pure function.
func Build(bc *BuildConfig, services []*v1.Service, slices []*discovery.EndpointSlice) *Model {
	bySvc := map[types.NamespacedName][]*discovery.EndpointSlice{}
	for _, s := range slices {
		if n := s.Labels[discovery.LabelServiceName]; n != "" {
			k := types.NamespacedName{Namespace: s.Namespace, Name: n}
			bySvc[k] = append(bySvc[k], s)
		}
	}
	m := &Model{Table: bc.Table, Shards: bc.shards(), Base: buildBase(bc), ShardBase: buildShardBase(bc), Services: map[types.NamespacedName]*Fragment{}}
	for _, svc := range services {
		k := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		if f := buildService(bc, svc, bySvc[k]); f != nil {
			m.Services[k] = f
		}
	}
	return m
}

func ctNew(chain string) nft.Rule {
	return nft.Rule{Match: []nft.Match{nft.MatchCtNew{}}, Stmt: nft.StmtVerdict{Kind: nft.VerdictJump, Chain: chain}}
}

func jump(chain string) nft.Stmt { return nft.StmtVerdict{Kind: nft.VerdictJump, Chain: chain} }
func goTo(chain string) nft.Stmt { return nft.StmtVerdict{Kind: nft.VerdictGoto, Chain: chain} }

// buildBase is the main table's fixed skeleton: what every Service shares (the filter
// hooks that reject or drop traffic to ClusterIPs, ports and node ports that no endpoint
// serves, and masquerading).
func buildBase(bc *BuildConfig) *nft.Fragment {
	f := &nft.Fragment{
		Sets: []nft.Set{
			{Name: setClusterIPs, Key: nft.KeyAddr, Comment: "Active ClusterIPs"},
			{Name: setNodePortIPs, Key: nft.KeyAddr, Comment: "IPs that accept NodePort traffic"},
			{Name: mapNoEndpointServices, Key: nft.KeyAddrProtoPort, Map: true, Comment: "vmap to drop or reject packets to services with no endpoints"},
			{Name: mapNoEndpointNodePorts, Key: nft.KeyProtoPort, Map: true, Comment: "vmap to drop or reject packets to service nodeports with no endpoints"},
		},
	}
	check := []nft.Rule{{Match: []nft.Match{nft.MatchAddrInSet{Field: nft.Daddr, Set: setClusterIPs}}, Stmt: nft.StmtReject{}, Comment: "Reject traffic to invalid ports of ClusterIPs"}}
	for _, p := range bc.ServiceCIDRs {
		check = append(check, nft.Rule{Match: []nft.Match{nft.MatchAddr{Field: nft.Daddr, Prefix: p.Masked()}}, Stmt: nft.StmtVerdict{Kind: nft.VerdictDrop}, Comment: "Drop traffic to unallocated ClusterIPs"})
	}
	f.Chains = []*nft.Chain{
		{Name: chainFilterInput, Base: hook("filter", "input", -110), Rules: []nft.Rule{ctNew(chainNodePortEndpoints), ctNew(chainServiceEndpoints)}},
		{Name: chainFilterForward, Base: hook("filter", "forward", -110), Rules: []nft.Rule{ctNew(chainServiceEndpoints), ctNew(chainClusterIPsCheck)}},
		{Name: chainFilterOutput, Base: hook("filter", "output", -110), Rules: []nft.Rule{ctNew(chainServiceEndpoints)}},
		{Name: chainFilterOutputPostDNAT, Base: hook("filter", "output", -90), Rules: []nft.Rule{ctNew(chainClusterIPsCheck)}},
		{Name: chainNATPostrouting, Base: hook("nat", "postrouting", 100), Rules: []nft.Rule{{Stmt: jump(chainMasquerading)}}},
		{Name: chainClusterIPsCheck, Rules: check},
		{Name: chainMasquerading, Rules: []nft.Rule{
			{Match: []nft.Match{nft.MatchMarkClear{Bits: masqBit}}, Stmt: nft.StmtVerdict{Kind: nft.VerdictReturn}},
			{Stmt: nft.StmtMark{Bits: masqBit, Xor: true}},
			{Stmt: nft.StmtMasquerade{}},
		}},
		{Name: chainNodePortEndpoints, Rules: []nft.Rule{{Match: []nft.Match{nft.MatchAddrInSet{Field: nft.Daddr, Set: setNodePortIPs}}, Stmt: nft.StmtVmap{Key: nft.KeyProtoPort, Map: mapNoEndpointNodePorts}}}},
		{Name: chainServiceEndpoints, Rules: []nft.Rule{{Stmt: nft.StmtVmap{Key: nft.KeyAddrProtoPort, Map: mapNoEndpointServices}}}},
		{Name: chainReject, Rules: []nft.Rule{{Stmt: nft.StmtReject{}}}},
	}
	f.Elements = nodePortIPs(bc)
	return f
}

// buildShardBase is every shard table's fixed skeleton: the NAT hooks that dispatch, on
// destination address, protocol and port, to the shard's own Services.
func buildShardBase(bc *BuildConfig) *nft.Fragment {
	return &nft.Fragment{
		Sets: []nft.Set{
			{Name: setNodePortIPs, Key: nft.KeyAddr, Comment: "IPs that accept NodePort traffic"},
			{Name: mapServiceIPs, Key: nft.KeyAddrProtoPort, Map: true, Comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic"},
			{Name: mapServiceNodePorts, Key: nft.KeyProtoPort, Map: true, Comment: "NodePort traffic"},
		},
		Chains: []*nft.Chain{
			{Name: chainNATPrerouting, Base: hook("nat", "prerouting", -100), Rules: []nft.Rule{{Stmt: jump(chainServices)}}},
			{Name: chainNATOutput, Base: hook("nat", "output", -100), Rules: []nft.Rule{{Stmt: jump(chainServices)}}},
			{Name: chainMarkMasq, Rules: []nft.Rule{{Stmt: nft.StmtMark{Bits: masqBit}}}},
			{Name: chainServices, Rules: []nft.Rule{
				{Stmt: nft.StmtVmap{Key: nft.KeyAddrProtoPort, Map: mapServiceIPs}},
				{Match: []nft.Match{nft.MatchAddrInSet{Field: nft.Daddr, Set: setNodePortIPs}}, Stmt: nft.StmtVmap{Key: nft.KeyProtoPort, Map: mapServiceNodePorts}},
			}},
		},
		Elements: nodePortIPs(bc),
	}
}

func hook(typ, h string, prio int) *nft.Hook { return &nft.Hook{Type: typ, Hook: h, Priority: prio} }

func nodePortIPs(bc *BuildConfig) []nft.Element {
	ips := append([]netip.Addr(nil), bc.NodeIPs...)
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	var out []nft.Element
	for i, a := range ips {
		if a.Is4() && (i == 0 || a != ips[i-1]) {
			out = append(out, nft.Element{Set: setNodePortIPs, Key: nft.Key{Addr: a}})
		}
	}
	return out
}

func protoOf(p v1.Protocol) (nft.Proto, bool) {
	switch p {
	case v1.ProtocolTCP, "":
		return nft.ProtoTCP, true
	case v1.ProtocolUDP:
		return nft.ProtoUDP, true
	case v1.ProtocolSCTP:
		return nft.ProtoSCTP, true
	}
	return 0, false
}

func parseIPv4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Is4()
}

// buildService is one Service's fragment, or nil when the proxy has nothing to do for it
// (headless, ExternalName, no IPv4 ClusterIP). A pure function of its arguments.
func buildService(bc *BuildConfig, svc *v1.Service, slices []*discovery.EndpointSlice) *Fragment {
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return nil
	}
	vip, ok := parseIPv4(svc.Spec.ClusterIP)
	if !ok {
		return nil
	}
	f := &Fragment{}
	f.Main = append(f.Main, nft.Element{Set: setClusterIPs, Key: nft.Key{Addr: vip}})

	var extIPs []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, ok := parseIPv4(s); ok {
			extIPs = append(extIPs, a)
		}
	}
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, ok := parseIPv4(ing.IP); ok && (ing.IPMode == nil || *ing.IPMode == v1.LoadBalancerIPModeVIP) {
				extIPs = append(extIPs, a)
			}
		}
	}
	externallyAccessible := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(extIPs) > 0
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	externalLocal := externallyAccessible && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	var affinity time.Duration
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	if externalLocal && svc.Spec.HealthCheckNodePort > 0 && svc.Spec.HealthCheckNodePort <= 65535 {
		f.HealthCheckPort = uint16(svc.Spec.HealthCheckNodePort)
	}
	localDNS := bc.LocalDNS != nil && bc.LocalDNS.Service.Namespace == svc.Namespace && bc.LocalDNS.Service.Name == svc.Name

	localSeen := map[netip.Addr]bool{} // local ready endpoints, for the health check
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto, ok := protoOf(sp.Protocol)
		if !ok || sp.Port <= 0 || sp.Port > 65535 {
			continue
		}
		port := uint16(sp.Port)
		spn := svc.Namespace + "/" + svc.Name + "/" + proto.String() + "/" + sp.Name
		svcChain, extChain, localChain := prefixed("service", spn), prefixed("external", spn), prefixed("local", spn)
		var nodePort uint16
		if (svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer) && sp.NodePort > 0 && sp.NodePort <= 65535 {
			nodePort = uint16(sp.NodePort)
		}

		if localDNS && port == 53 && (proto == nft.ProtoUDP || proto == nft.ProtoTCP) {
			// Node-local DNS: ClusterIP:53 goes to this node's DNS server, source kept.
			epChain := prefixed("endpoint", spn+"__"+epSuffix(bc.LocalDNS.Addr, bc.LocalDNS.Port))
			f.Chains = append(f.Chains,
				&nft.Chain{Name: svcChain, Rules: []nft.Rule{{Stmt: nft.StmtNumgen{Targets: []string{epChain}}}}},
				&nft.Chain{Name: epChain, Rules: []nft.Rule{{Match: []nft.Match{nft.MatchL4Proto{Proto: proto}}, Stmt: nft.StmtDNAT{Addr: bc.LocalDNS.Addr, Port: bc.LocalDNS.Port}}}},
			)
			f.Elements = append(f.Elements, nft.Element{Set: mapServiceIPs, Key: nft.Key{Addr: vip, Proto: proto, Port: port}, Verdict: nft.Verdict{Kind: nft.VerdictGoto, Chain: svcChain}})
			continue
		}

		eps := endpointsFor(slices, sp, bc.NodeName)
		useCluster := !internalLocal || (externallyAccessible && !externalLocal)
		useLocal := internalLocal || externalLocal
		clusterEps, localEps, hasAny := categorize(eps, useCluster, useLocal, svc.Spec.TrafficDistribution, bc.NodeName, bc.Zone)
		for _, e := range eps {
			if e.local && e.ready {
				localSeen[e.addr] = true
			}
		}

		internalEps, internalChain := clusterEps, svcChain
		if internalLocal {
			internalEps, internalChain = localEps, localChain
		}
		externalEps := clusterEps
		if externalLocal {
			externalEps = localEps
		}
		noEndpoints := func(local bool) nft.Verdict {
			if hasAny && local {
				return nft.Verdict{Kind: nft.VerdictDrop}
			}
			return nft.Verdict{Kind: nft.VerdictGoto, Chain: chainReject}
		}

		// Endpoint chains, and the chains that balance over them.
		epChains := map[netip.AddrPort]string{}
		affSets := map[netip.AddrPort]string{}
		for _, e := range append(append([]*endpoint(nil), clusterEps...), localEps...) {
			ap := e.ap()
			if _, done := epChains[ap]; done {
				continue
			}
			suffix := spn + "__" + epSuffix(e.addr, e.port)
			name := prefixed("endpoint", suffix)
			epChains[ap] = name
			rules := []nft.Rule{{Match: []nft.Match{nft.MatchAddr{Field: nft.Saddr, Prefix: netip.PrefixFrom(e.addr, 32)}}, Stmt: jump(chainMarkMasq)}}
			if affinity > 0 {
				set := prefixed("affinity", suffix)
				affSets[ap] = set
				f.Sets = append(f.Sets, nft.Set{Name: set, Key: nft.KeyAddr, Timeout: affinity})
				rules = append(rules, nft.Rule{Stmt: nft.StmtAffinity{Set: set}})
			}
			rules = append(rules, nft.Rule{Match: []nft.Match{nft.MatchL4Proto{Proto: proto}}, Stmt: nft.StmtDNAT{Addr: e.addr, Port: e.port}})
			f.Chains = append(f.Chains, &nft.Chain{Name: name, Rules: rules})
		}
		balance := func(eps []*endpoint) []nft.Rule {
			var rules []nft.Rule
			targets := make([]string, len(eps))
			for i, e := range eps {
				targets[i] = epChains[e.ap()]
				if affinity > 0 {
					rules = append(rules, nft.Rule{Match: []nft.Match{nft.MatchAddrInSet{Field: nft.Saddr, Set: affSets[e.ap()]}}, Stmt: goTo(targets[i])})
				}
			}
			return append(rules, nft.Rule{Stmt: nft.StmtNumgen{Targets: targets}})
		}
		masqOutside := func() []nft.Rule {
			if !bc.ClusterCIDR.IsValid() {
				return nil
			}
			return []nft.Rule{{Match: []nft.Match{
				nft.MatchAddr{Field: nft.Daddr, Prefix: netip.PrefixFrom(vip, 32)},
				nft.MatchDport{Proto: proto, Port: port},
				nft.MatchAddr{Field: nft.Saddr, Prefix: bc.ClusterCIDR.Masked(), Neg: true},
			}, Stmt: jump(chainMarkMasq)}}
		}
		hasCluster := useCluster && len(clusterEps) > 0
		if hasCluster {
			var rules []nft.Rule
			if !internalLocal {
				rules = masqOutside()
			}
			f.Chains = append(f.Chains, &nft.Chain{Name: svcChain, Rules: append(rules, balance(clusterEps)...)})
		}
		if useLocal && len(localEps) > 0 {
			var rules []nft.Rule
			if internalLocal {
				rules = masqOutside()
			}
			f.Chains = append(f.Chains, &nft.Chain{Name: localChain, Rules: append(rules, balance(localEps)...)})
		}

		// ClusterIP.
		if len(internalEps) > 0 {
			f.Elements = append(f.Elements, nft.Element{Set: mapServiceIPs, Key: nft.Key{Addr: vip, Proto: proto, Port: port}, Verdict: nft.Verdict{Kind: nft.VerdictGoto, Chain: internalChain}})
		} else {
			f.Main = append(f.Main, nft.Element{Set: mapNoEndpointServices, Key: nft.Key{Addr: vip, Proto: proto, Port: port}, Verdict: noEndpoints(internalLocal)})
		}

		// External traffic: NodePort, externalIPs, load balancer IPs.
		if !externallyAccessible || (nodePort == 0 && len(extIPs) == 0) {
			if proto == nft.ProtoUDP {
				f.UDP = append(f.UDP, udpPort{VIPs: []netip.Addr{vip}, Port: port, Endpoints: epAddrs(clusterEps, localEps)})
			}
			continue
		}
		if len(externalEps) > 0 {
			var rules []nft.Rule
			if !externalLocal {
				rules = []nft.Rule{{Stmt: jump(chainMarkMasq)}, {Stmt: goTo(svcChain)}}
			} else {
				if hasCluster && bc.ClusterCIDR.IsValid() {
					rules = append(rules, nft.Rule{Match: []nft.Match{nft.MatchAddr{Field: nft.Saddr, Prefix: bc.ClusterCIDR.Masked()}}, Stmt: goTo(svcChain), Comment: "short-circuit pod traffic"})
				}
				if hasCluster {
					rules = append(rules,
						nft.Rule{Match: []nft.Match{nft.MatchFibSaddrLocal{}}, Stmt: jump(chainMarkMasq), Comment: "masquerade local traffic"},
						nft.Rule{Match: []nft.Match{nft.MatchFibSaddrLocal{}}, Stmt: goTo(svcChain), Comment: "route local traffic to cluster endpoints"},
					)
				}
				rules = append(rules, nft.Rule{Stmt: goTo(localChain)})
			}
			f.Chains = append(f.Chains, &nft.Chain{Name: extChain, Rules: rules})
		}
		for _, a := range extIPs {
			if len(externalEps) > 0 {
				f.Elements = append(f.Elements, nft.Element{Set: mapServiceIPs, Key: nft.Key{Addr: a, Proto: proto, Port: port}, Verdict: nft.Verdict{Kind: nft.VerdictGoto, Chain: extChain}})
			} else {
				f.Main = append(f.Main, nft.Element{Set: mapNoEndpointServices, Key: nft.Key{Addr: a, Proto: proto, Port: port}, Verdict: noEndpoints(externalLocal)})
			}
		}
		if nodePort != 0 {
			if len(externalEps) > 0 {
				f.Elements = append(f.Elements, nft.Element{Set: mapServiceNodePorts, Key: nft.Key{Proto: proto, Port: nodePort}, Verdict: nft.Verdict{Kind: nft.VerdictGoto, Chain: extChain}})
			} else {
				f.Main = append(f.Main, nft.Element{Set: mapNoEndpointNodePorts, Key: nft.Key{Proto: proto, Port: nodePort}, Verdict: noEndpoints(externalLocal)})
			}
		}
		if proto == nft.ProtoUDP {
			f.UDP = append(f.UDP, udpPort{VIPs: append([]netip.Addr{vip}, extIPs...), Port: port, NodePort: nodePort, Endpoints: epAddrs(clusterEps, localEps)})
		}
	}
	f.LocalEndpoints = len(localSeen)
	if len(f.Chains) > 1 {
		sort.Slice(f.Chains, func(i, j int) bool { return f.Chains[i].Name < f.Chains[j].Name })
	}
	sort.Slice(f.Sets, func(i, j int) bool { return f.Sets[i].Name < f.Sets[j].Name })
	return f
}

func epAddrs(lists ...[]*endpoint) []netip.Addr {
	var out []netip.Addr
	for _, l := range lists {
		for _, e := range l {
			out = append(out, e.addr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return compactAddrs(out)
}

func compactAddrs(a []netip.Addr) []netip.Addr {
	out := a[:0]
	for i, x := range a {
		if i == 0 || x != a[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// epSuffix is how endpoint chain and affinity set names end: "ip/port", as kube-proxy's
// (a colon would not survive nft's parser).
func epSuffix(a netip.Addr, port uint16) string {
	return a.String() + "/" + strconv.Itoa(int(port))
}
