package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/network/dns"
	"github.com/havre/havre/internal/network/netpol"
	"github.com/havre/havre/internal/network/overlay"
	"github.com/havre/havre/internal/network/proxy"
)

// kubeDNS is the Service cluster DNS answers on; each node's proxy sends
// its traffic to the node's own DNS server.
var kubeDNS = types.NamespacedName{Namespace: "kube-system", Name: "kube-dns"}

// startPodNetwork sets up this node's networking once its pod CIDR is
// known, in this order: the overlay that joins the nodes' pod networks
// (which decides the pods' MTU), the pod bridge, the service proxy and the
// cluster DNS server, which listens on the bridge's address and forwards
// other names to the host's resolvers. It returns the pods' MTU once the
// overlay has its peers and the node's Services are programmed, so that a
// pod's first packets never go where the cluster would not send them.
func (a *Agent) startPodNetwork(ctx context.Context, wg *sync.WaitGroup, cidr string) (int, error) {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	podCIDR, err := netip.ParsePrefix(cidr)
	if err != nil {
		return 0, fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	mode, err := overlay.ParseMode(a.opts.PodNetworkBackend)
	if err != nil {
		return 0, err
	}
	_, hostIPs, _ := a.facts()
	if len(hostIPs) == 0 {
		return 0, errors.New("the node has no address to join the pod network with (pass --node-ip)")
	}
	nodeIP, err := netip.ParseAddr(hostIPs[0])
	if err != nil {
		return 0, err
	}
	ov, err := overlay.New(overlay.Config{
		Device: overlayDevice(a.bridge()), NodeName: a.nodeName, NodeIP: nodeIP, PodCIDR: podCIDR, Mode: mode,
	}, factory.Core().V1().Nodes())
	if err != nil {
		return 0, fmt.Errorf("pod network across nodes: %w", err)
	}
	mtu := ov.PodMTU()
	gateway, err := a.setUpBridge(cidr, mtu)
	if err != nil {
		return 0, err
	}
	cfg, err := a.proxyConfig(gateway)
	if err != nil {
		return 0, err
	}
	p, err := proxy.New(cfg, factory)
	if err != nil {
		return 0, fmt.Errorf("service proxy: %w", err)
	}
	var upstreams []string
	for _, s := range a.hostDNS.Servers {
		upstreams = append(upstreams, net.JoinHostPort(s, "53"))
	}
	d, err := dns.New(dns.Config{
		Domain:      a.clusterDomain(),
		Listen:      []string{net.JoinHostPort(gateway.String(), "53")},
		Upstreams:   upstreams,
		Search:      a.hostDNS.Searches,
		NamespaceOf: a.namespaceOf,
	}, factory)
	if err != nil {
		return 0, fmt.Errorf("cluster DNS: %w", err)
	}
	pol, err := netpol.New(netpol.Config{
		Table: netpolTable(a.bridge()), NodeName: a.nodeName, PodCIDR: podCIDR, Gateway: gateway, DNS: gateway,
	}, factory)
	if err != nil {
		return 0, fmt.Errorf("network policies: %w", err)
	}
	ing, gwFactory, err := a.ingressProxy(factory)
	if err != nil {
		return 0, err
	}
	svcInformer := factory.Core().V1().Services().Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), svcInformer.HasSynced) {
		return 0, ctx.Err()
	}
	a.watchClusterDNS(svcInformer)
	programmed, policed := p.NextSync(), pol.NextSync()
	run := func(what string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				slog.Error(what+" stopped", "err", err)
			}
		}()
	}
	run("the pod network across nodes", ov.Run)
	run("the service proxy", p.Run)
	run("cluster DNS", d.Run)
	run("network policies", pol.Run)
	if ing != nil {
		run("the ingress proxy", func(ctx context.Context) error {
			return runIngress(ctx, ing, gwFactory, a.opts.IngressHTTPPort, a.opts.IngressHTTPSPort)
		})
	}
	a.policer.Store(pol)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	for what, ready := range map[string]<-chan struct{}{"the overlay has not set up its peers": ov.Ready(), "the service proxy has not programmed the node's Services": programmed,
		"the node's network policies are not programmed": policed} {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			slog.Warn(what + " in 30s; starting pods anyway (see the errors above)")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	slog.Info("pod network, service proxy, network policies and cluster DNS started", "podCIDR", cidr, "backend", mode, "podMTU", mtu,
		"tables", []string{cfg.Table, netpolTable(a.bridge())}, "nodeIPs", cfg.NodeIPs, "serviceCIDRs", cfg.ServiceCIDRs,
		"dns", net.JoinHostPort(gateway.String(), "53"), "domain", a.clusterDomain(), "upstreams", upstreams)
	return mtu, nil
}

// netpolTable names the nftables table of the network policies of the
// agent of a bridge.
func netpolTable(bridge string) string { return bridge + "-netpol" }

// podPoliced tells the node's network policies a pod's sandbox addresses
// and waits until its rules are committed (netpol.Policer.PodStarting): the
// agent starts none of a pod's containers before, so that a pod a policy
// isolates is never reachable. It is quick when nothing changed; false
// means the pod must wait and retry.
func (a *Agent) podPoliced(ctx context.Context, pod *corev1.Pod, podIPs []string) bool {
	pol := a.policer.Load()
	if pol == nil || pod.Spec.HostNetwork {
		return true
	}
	var ips []netip.Addr
	for _, s := range podIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, ip)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pol.PodStarting(ctx, pod, ips); err != nil {
		slog.Warn("the pod's network policy rules are not in place; its containers wait", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return false
	}
	return true
}

// overlayDevice names the VXLAN device of the agent of a bridge.
func overlayDevice(bridge string) string { return bridge + ".vx" }

// proxyConfig is the service proxy's configuration for this node.
func (a *Agent) proxyConfig(gateway netip.Addr) (proxy.Config, error) {
	cluster, err := netip.ParsePrefix(a.clusterCIDR())
	if err != nil {
		return proxy.Config{}, fmt.Errorf("cluster CIDR %q: %w", a.clusterCIDR(), err)
	}
	serviceCIDR := a.opts.ServiceCIDR
	if serviceCIDR == "" {
		serviceCIDR = DefaultServiceCIDR
	}
	services, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return proxy.Config{}, fmt.Errorf("service CIDR %q: %w", serviceCIDR, err)
	}
	_, hostIPs, _ := a.facts()
	var nodeIPs []netip.Addr
	for _, s := range hostIPs {
		if ip, err := netip.ParseAddr(s); err == nil {
			nodeIPs = append(nodeIPs, ip)
		}
	}
	return proxy.Config{
		Table: a.bridge(), NodeName: a.nodeName, NodeIPs: nodeIPs,
		ClusterCIDR: cluster, ServiceCIDRs: []netip.Prefix{services},
		LocalDNS: &proxy.LocalService{Service: kubeDNS, Addr: gateway, Port: 53},
	}, nil
}

// watchClusterDNS keeps the cluster DNS address ClusterFirst pods get: the
// configured one, else the kube-dns Service's cluster IP.
func (a *Agent) watchClusterDNS(svcInformer cache.SharedIndexInformer) {
	if len(a.opts.ClusterDNS) > 0 {
		a.clusterDNSServers.Store(a.opts.ClusterDNS)
		return
	}
	set := func(obj any) {
		svc, ok := obj.(*corev1.Service)
		if !ok || svc.Namespace != kubeDNS.Namespace || svc.Name != kubeDNS.Name {
			return
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			a.clusterDNSServers.Store([]string{ip})
		}
	}
	if obj, ok, _ := svcInformer.GetStore().GetByKey(kubeDNS.String()); ok {
		set(obj)
	} else {
		slog.Warn("no kube-system/kube-dns Service yet: pods with dnsPolicy ClusterFirst resolve with the host's resolvers until it exists")
	}
	_, _ = svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
	})
}
