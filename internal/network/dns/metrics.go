package dns

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors. None is registered here:
// the agent registers Collectors() where it serves its metrics.
type metrics struct {
	requests       *prometheus.CounterVec
	requestsByKind [len(typeLabels)][rcodeSlots]atomic.Pointer[prometheus.Counter]
	cacheHits      *prometheus.CounterVec
	cacheMisses    prometheus.Counter
	cacheEntries   prometheus.GaugeFunc
	forward        *prometheus.HistogramVec
	autopath       prometheus.Counter
	loops          prometheus.Gauge
	hitSuccess     prometheus.Counter
	hitDenial      prometheus.Counter
}

// typeLabels are the query types counted under their own name; others
// count as "other".
var typeLabels = [...]struct {
	t    uint16
	name string
}{
	{dns.TypeA, "A"}, {dns.TypeAAAA, "AAAA"}, {dns.TypeSRV, "SRV"}, {dns.TypePTR, "PTR"},
	{dns.TypeTXT, "TXT"}, {dns.TypeCNAME, "CNAME"}, {dns.TypeSOA, "SOA"}, {dns.TypeNS, "NS"},
	{dns.TypeMX, "MX"}, {dns.TypeANY, "ANY"}, {0, "other"},
}

// rcodeSlots covers the rcodes a header can carry plus BADVERS (16);
// the last slot counts anything else.
const rcodeSlots = 18

func newMetrics(cacheLen func() int64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havre", Subsystem: "dns", Name: "requests_total",
			Help: "DNS queries answered, by query type and response code.",
		}, []string{"type", "rcode"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havre", Subsystem: "dns", Name: "cache_hits_total",
			Help: "Forwarded questions answered from the cache: success (records) or denial (NXDOMAIN, NODATA).",
		}, []string{"type"}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "havre", Subsystem: "dns", Name: "cache_misses_total",
			Help: "Forwarded questions not in the cache.",
		}),
		cacheEntries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "havre", Subsystem: "dns", Name: "cache_entries",
			Help: "Answers held in the forwarding cache.",
		}, func() float64 { return float64(cacheLen()) }),
		forward: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "havre", Subsystem: "dns", Name: "forward_request_duration_seconds",
			Help:    "Round trips to upstream resolvers, by upstream and response code (\"error\" when none came).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"to", "rcode"}),
		autopath: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "havre", Subsystem: "dns", Name: "autopath_total",
			Help: "Queries answered by completing the client's search path on the server.",
		}),
		loops: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "havre", Subsystem: "dns", Name: "forward_loop_upstreams",
			Help: "Upstreams dropped because queries sent to them came back to this server.",
		}),
	}
	m.hitSuccess = m.cacheHits.WithLabelValues("success")
	m.hitDenial = m.cacheHits.WithLabelValues("denial")
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.cacheHits, m.cacheMisses, m.cacheEntries, m.forward, m.autopath, m.loops}
}

// request counts one answered query.
func (m *metrics) request(qtype uint16, rcode int) {
	ti := len(typeLabels) - 1
	for i, tl := range typeLabels[:len(typeLabels)-1] {
		if tl.t == qtype {
			ti = i
			break
		}
	}
	ri := rcode
	if ri < 0 || ri >= rcodeSlots-1 {
		ri = rcodeSlots - 1
	}
	slot := &m.requestsByKind[ti][ri]
	if c := slot.Load(); c != nil {
		(*c).Inc()
		return
	}
	name := "other"
	if ri != rcodeSlots-1 {
		name = rcodeName(rcode)
	}
	c := m.requests.WithLabelValues(typeLabels[ti].name, name)
	slot.Store(&c)
	c.Inc()
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}
