package dns

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// svcKind is what a Service's own name resolves to.
type svcKind uint8

const (
	kindClusterIP    svcKind = iota // its ClusterIPs
	kindHeadless                    // its selected endpoints
	kindExternalName                // a CNAME
)

// portInfo is a Service or EndpointSlice port as DNS sees it.
type portInfo struct {
	name  string // lowercase; "" when unnamed
	proto string // lowercase: tcp, udp, sctp
	port  uint16
}

// svcSpec is what DNS keeps of a Service.
type svcSpec struct {
	kind            svcKind
	ips             []netip.Addr // ClusterIPs (kindClusterIP)
	external        string       // FQDN, lowercase (kindExternalName)
	ports           []portInfo
	publishNotReady bool
}

// sliceEndpoint is one endpoint of an EndpointSlice.
type sliceEndpoint struct {
	addrs    []netip.Addr
	hostname string
	ready    bool
}

// sliceData is what DNS keeps of an EndpointSlice.
type sliceData struct {
	ports []portInfo
	eps   []sliceEndpoint
}

// srvRecord is one SRV target of a headless Service: an endpoint (by its
// label, the hostname or the dashed IP) with one of its ports.
type srvRecord struct {
	port  portInfo
	label string
}

// headless holds the records derived from a headless Service's endpoints.
type headless struct {
	addrs  []netip.Addr            // every selected address, once, sorted
	labels map[string][]netip.Addr // hostname or dashed IP → addresses
	srv    []srvRecord             // deduplicated, sorted by port then label
}

// revEntry is one PTR record an entry put into the reverse index.
type revEntry struct {
	addr netip.Addr
	name string
}

// entry is everything known under one <name>.<ns>: the Service (nil until
// it is seen, or after it is deleted while slices remain) and the
// EndpointSlices that name it.
type entry struct {
	ns, name string
	fqdn     string // <name>.<ns>.svc.<zone>.
	svc      *svcSpec
	slices   map[string]*sliceData // by slice name
	hl       *headless             // nil unless headless with selected endpoints
	revs     []revEntry
	// a4 and a6 are the A and AAAA records of the Service's own name
	// (fqdn), built once per change for the common query; read-only.
	a4, a6 []dns.RR
}

type nsName struct{ ns, name string }

// index is the cluster zone's data, updated incrementally by informer
// events and read by queries.
type index struct {
	zone string // lowercase, with the trailing dot
	ttl  uint32 // of the records built in advance

	mu         sync.RWMutex
	entries    map[nsName]*entry
	nsServices map[string]int          // Services per namespace
	rev        map[netip.Addr][]string // address → PTR targets
	sliceOwner map[nsName]nsName       // slice → the Service it names
	serial     atomic.Uint32           // SOA serial: bumped on every change
	now        func() uint32           // seconds, for the serial
	onChange   func()                  // called after every change; may be nil
}

func newIndex(zone string, ttl uint32, now func() uint32) *index {
	ix := &index{
		zone:       zone,
		ttl:        ttl,
		entries:    make(map[nsName]*entry),
		nsServices: make(map[string]int),
		rev:        make(map[netip.Addr][]string),
		sliceOwner: make(map[nsName]nsName),
		now:        now,
	}
	ix.serial.Store(now())
	return ix
}

// bump advances the SOA serial; called with mu held.
func (ix *index) bump() {
	s, n := ix.serial.Load(), ix.now()
	if n <= s {
		n = s + 1
	}
	ix.serial.Store(n)
}

func (ix *index) entryFor(k nsName) *entry {
	e := ix.entries[k]
	if e == nil {
		e = &entry{ns: k.ns, name: k.name, fqdn: k.name + "." + k.ns + ".svc." + ix.zone}
		ix.entries[k] = e
	}
	return e
}

// dropIfEmpty forgets an entry with neither Service nor slices.
func (ix *index) dropIfEmpty(k nsName, e *entry) {
	if e.svc == nil && len(e.slices) == 0 {
		ix.setRevs(e, nil)
		delete(ix.entries, k)
	}
}

// specOf reduces a Service to what DNS needs.
func specOf(svc *v1.Service) *svcSpec {
	sp := &svcSpec{publishNotReady: svc.Spec.PublishNotReadyAddresses}
	switch {
	case svc.Spec.Type == v1.ServiceTypeExternalName:
		sp.kind = kindExternalName
		sp.external = strings.ToLower(strings.TrimSuffix(svc.Spec.ExternalName, ".")) + "."
	case svc.Spec.ClusterIP == v1.ClusterIPNone:
		sp.kind = kindHeadless
	default:
		sp.kind = kindClusterIP
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, s := range ips {
			if a, err := netip.ParseAddr(s); err == nil {
				sp.ips = append(sp.ips, a.Unmap())
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		sp.ports = append(sp.ports, portInfo{name: strings.ToLower(p.Name), proto: protoOf(p.Protocol), port: uint16(p.Port)})
	}
	return sp
}

func protoOf(p v1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// sliceOf reduces an EndpointSlice to what DNS needs.
func sliceOf(es *discoveryv1.EndpointSlice) *sliceData {
	sd := &sliceData{}
	if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
		return sd
	}
	for _, p := range es.Ports {
		pi := portInfo{proto: "tcp"}
		if p.Name != nil {
			pi.name = strings.ToLower(*p.Name)
		}
		if p.Protocol != nil {
			pi.proto = protoOf(*p.Protocol)
		}
		if p.Port != nil {
			pi.port = uint16(*p.Port)
		}
		sd.ports = append(sd.ports, pi)
	}
	for _, ep := range es.Endpoints {
		se := sliceEndpoint{ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
		if ep.Hostname != nil {
			se.hostname = strings.ToLower(*ep.Hostname)
		}
		for _, s := range ep.Addresses {
			if a, err := netip.ParseAddr(s); err == nil {
				se.addrs = append(se.addrs, a.Unmap())
			}
		}
		if len(se.addrs) > 0 {
			sd.eps = append(sd.eps, se)
		}
	}
	return sd
}

// dashed is the label of an endpoint without a hostname: its address with
// dashes for dots (IPv4) or colons (IPv6).
func dashed(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.String(), ":", "-")
}

// derive recomputes an entry's headless records and its PTR records from
// its Service and slices. It touches this entry only.
func (ix *index) derive(e *entry) {
	e.hl = nil
	var revs []revEntry
	var addrs []netip.Addr
	switch {
	case e.svc == nil:
	case e.svc.kind == kindClusterIP:
		addrs = e.svc.ips
		for _, a := range e.svc.ips {
			revs = append(revs, revEntry{a, e.fqdn})
		}
	case e.svc.kind == kindHeadless:
		e.hl = buildHeadless(e.svc, e.slices)
		if e.hl != nil {
			addrs = e.hl.addrs
			for label, addrs := range e.hl.labels {
				name := label + "." + e.fqdn
				for _, a := range addrs {
					revs = append(revs, revEntry{a, name})
				}
			}
		}
	}
	e.a4, e.a6 = nil, nil
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: e.fqdn, Class: dns.ClassINET, Ttl: ix.ttl}
		if a.Is4() {
			hdr.Rrtype = dns.TypeA
			b := a.As4()
			e.a4 = append(e.a4, &dns.A{Hdr: hdr, A: net.IP(b[:])})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			b := a.As16()
			e.a6 = append(e.a6, &dns.AAAA{Hdr: hdr, AAAA: net.IP(b[:])})
		}
	}
	e.a4, e.a6 = slices.Clip(e.a4), slices.Clip(e.a6)
	ix.setRevs(e, revs)
}

func buildHeadless(sp *svcSpec, sl map[string]*sliceData) *headless {
	h := &headless{labels: make(map[string][]netip.Addr)}
	seenAddr := make(map[netip.Addr]bool)
	seenSRV := make(map[srvRecord]bool)
	for _, sd := range sl {
		for _, ep := range sd.eps {
			if !ep.ready && !sp.publishNotReady {
				continue
			}
			for _, a := range ep.addrs {
				label := ep.hostname
				if label == "" {
					label = dashed(a)
				}
				if !seenAddr[a] {
					seenAddr[a] = true
					h.addrs = append(h.addrs, a)
				}
				if !slices.Contains(h.labels[label], a) {
					h.labels[label] = append(h.labels[label], a)
				}
				for _, p := range sd.ports {
					r := srvRecord{port: p, label: label}
					if !seenSRV[r] {
						seenSRV[r] = true
						h.srv = append(h.srv, r)
					}
				}
			}
		}
	}
	if len(h.addrs) == 0 {
		return nil
	}
	slices.SortFunc(h.addrs, netip.Addr.Compare)
	for _, as := range h.labels {
		slices.SortFunc(as, netip.Addr.Compare)
	}
	slices.SortFunc(h.srv, func(a, b srvRecord) int {
		if c := strings.Compare(a.port.name, b.port.name); c != 0 {
			return c
		}
		if c := strings.Compare(a.port.proto, b.port.proto); c != 0 {
			return c
		}
		if a.port.port != b.port.port {
			return int(a.port.port) - int(b.port.port)
		}
		return strings.Compare(a.label, b.label)
	})
	return h
}

// setRevs replaces the PTR records an entry contributes.
func (ix *index) setRevs(e *entry, revs []revEntry) {
	for _, r := range e.revs {
		names := ix.rev[r.addr]
		if i := slices.Index(names, r.name); i >= 0 {
			names = slices.Delete(names, i, i+1)
		}
		if len(names) == 0 {
			delete(ix.rev, r.addr)
		} else {
			ix.rev[r.addr] = names
		}
	}
	for _, r := range revs {
		if !slices.Contains(ix.rev[r.addr], r.name) {
			ix.rev[r.addr] = append(ix.rev[r.addr], r.name)
		}
	}
	e.revs = revs
}

func (ix *index) changed() {
	ix.bump()
	if ix.onChange != nil {
		ix.onChange()
	}
}

// upsertService records a Service's current state.
func (ix *index) upsertService(svc *v1.Service) {
	k := nsName{strings.ToLower(svc.Namespace), strings.ToLower(svc.Name)}
	sp := specOf(svc)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.entryFor(k)
	if e.svc == nil {
		ix.nsServices[k.ns]++
	}
	e.svc = sp
	ix.derive(e)
	ix.changed()
}

// deleteService forgets a Service; its slices stay until they are deleted.
func (ix *index) deleteService(ns, name string) {
	k := nsName{strings.ToLower(ns), strings.ToLower(name)}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.entries[k]
	if e == nil || e.svc == nil {
		return
	}
	e.svc = nil
	if ix.nsServices[k.ns]--; ix.nsServices[k.ns] <= 0 {
		delete(ix.nsServices, k.ns)
	}
	ix.derive(e)
	ix.dropIfEmpty(k, e)
	ix.changed()
}

// upsertSlice records an EndpointSlice under the Service its
// kubernetes.io/service-name label names.
func (ix *index) upsertSlice(es *discoveryv1.EndpointSlice) {
	sk := nsName{es.Namespace, es.Name}
	owner := es.Labels[discoveryv1.LabelServiceName]
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if prev, ok := ix.sliceOwner[sk]; ok && prev.name != strings.ToLower(owner) {
		ix.removeSliceLocked(sk, prev)
	}
	if owner == "" {
		ix.changed()
		return
	}
	k := nsName{strings.ToLower(es.Namespace), strings.ToLower(owner)}
	e := ix.entryFor(k)
	if e.slices == nil {
		e.slices = make(map[string]*sliceData)
	}
	e.slices[es.Name] = sliceOf(es)
	ix.sliceOwner[sk] = k
	if e.svc != nil && e.svc.kind == kindHeadless {
		ix.derive(e)
	}
	ix.changed()
}

// deleteSlice forgets an EndpointSlice.
func (ix *index) deleteSlice(ns, name string) {
	sk := nsName{ns, name}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if prev, ok := ix.sliceOwner[sk]; ok {
		ix.removeSliceLocked(sk, prev)
		ix.changed()
	}
}

func (ix *index) removeSliceLocked(sk, owner nsName) {
	delete(ix.sliceOwner, sk)
	e := ix.entries[owner]
	if e == nil {
		return
	}
	delete(e.slices, sk.name)
	if e.svc != nil && e.svc.kind == kindHeadless {
		ix.derive(e)
	}
	ix.dropIfEmpty(owner, e)
}

// handlers are the informer event handlers feeding the index.
func (ix *index) serviceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { ix.onService(obj, false) },
		UpdateFunc: func(_, obj any) { ix.onService(obj, false) },
		DeleteFunc: func(obj any) { ix.onService(obj, true) },
	}
}

func (ix *index) onService(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	svc, ok := obj.(*v1.Service)
	if !ok {
		return
	}
	if deleted {
		ix.deleteService(svc.Namespace, svc.Name)
		return
	}
	ix.upsertService(svc)
}

func (ix *index) sliceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { ix.onSlice(obj, false) },
		UpdateFunc: func(_, obj any) { ix.onSlice(obj, false) },
		DeleteFunc: func(obj any) { ix.onSlice(obj, true) },
	}
}

func (ix *index) onSlice(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if deleted {
		ix.deleteSlice(es.Namespace, es.Name)
		return
	}
	ix.upsertSlice(es)
}
