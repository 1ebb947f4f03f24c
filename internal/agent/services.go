package agent

import (
	"context"
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
	"github.com/havre/havre/internal/network/proxy"
)

// kubeDNS is the Service cluster DNS answers on; each node's proxy sends
// its traffic to the node's own DNS server.
var kubeDNS = types.NamespacedName{Namespace: "kube-system", Name: "kube-dns"}

// startServices starts what makes Services work on this node once its pod
// network is up: the service proxy and the cluster DNS server, which
// listens on the pod bridge's address (gateway) and forwards other names
// to the host's resolvers. It returns once both run, the node's Services
// are programmed and ClusterFirst pods can be given the cluster DNS
// address.
func (a *Agent) startServices(ctx context.Context, wg *sync.WaitGroup, gateway netip.Addr) error {
	factory := informers.NewSharedInformerFactory(a.client, 0)
	cfg, err := a.proxyConfig(gateway)
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg, factory)
	if err != nil {
		return fmt.Errorf("service proxy: %w", err)
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
		return fmt.Errorf("cluster DNS: %w", err)
	}
	svcInformer := factory.Core().V1().Services().Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), svcInformer.HasSynced) {
		return ctx.Err()
	}
	a.watchClusterDNS(svcInformer)
	programmed := p.NextSync()
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil && ctx.Err() == nil {
			slog.Error("the service proxy stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			slog.Error("cluster DNS stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	// Pods start only once the node's Services are programmed: a pod's first
	// packets to a Service must not be routed as if it did not exist.
	select {
	case <-programmed:
	case <-time.After(30 * time.Second):
		slog.Warn("the service proxy has not programmed the node's Services in 30s; starting pods anyway (see the proxy's errors above)")
	case <-ctx.Done():
		return ctx.Err()
	}
	slog.Info("service proxy and cluster DNS started", "table", cfg.Table, "nodeIPs", cfg.NodeIPs, "serviceCIDRs", cfg.ServiceCIDRs,
		"dns", net.JoinHostPort(gateway.String(), "53"), "domain", a.clusterDomain(), "upstreams", upstreams)
	return nil
}

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
