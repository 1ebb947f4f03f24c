package overlay

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reconciles *prometheus.CounterVec
	writes     prometheus.Counter
	peers      prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "havre_overlay_reconciles_total", Help: "Passes of the overlay over the kernel, by result (ok, error).",
		}, []string{"result"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "havre_overlay_kernel_writes_total", Help: "Routes, neighbours, forwarding entries and device settings the overlay wrote or removed.",
		}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "havre_overlay_peers", Help: "Nodes whose pod CIDRs the overlay routes to.",
		}),
	}
}

// Collectors are the overlay's metrics, for the agent to register.
func (o *Overlay) Collectors() []prometheus.Collector {
	return []prometheus.Collector{o.metrics.reconciles, o.metrics.writes, o.metrics.peers}
}
