package ingress

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	route := []string{"kind", "namespace", "name"}
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "havre_ingress_requests_total", Help: "Requests the ingress proxy served, by route (the kind, namespace and name of the Ingress or route) and status code.",
		}, append(route, "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "havre_ingress_request_duration_seconds", Help: "How long the ingress proxy took to serve a request, by route, to the end of the response.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, route),
	}
}

// Collectors are the proxy's per-route request metrics, for the agent to
// register.
func (p *Proxy) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.metrics.requests, p.metrics.duration}
}
