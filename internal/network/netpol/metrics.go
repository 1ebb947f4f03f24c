package netpol

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	syncs        *prometheus.CounterVec
	duration     prometheus.Histogram
	changes      *prometheus.CounterVec
	transactions prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "havre_netpol_syncs_total", Help: "Syncs of the NetworkPolicy table, by result (ok, error) and kind (full, partial).",
		}, []string{"result", "kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "havre_netpol_sync_duration_seconds", Help: "How long a sync took, from taking the changes to the kernel's last acknowledgement.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5},
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "havre_netpol_sync_changes_total", Help: "What syncs sent to the kernel, by kind (chains, rules, elements, sets).",
		}, []string{"kind"}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "havre_netpol_transactions_total", Help: "nftables transactions committed.",
		}),
	}
}

// Collectors are the Policer's sync metrics, for the agent to register.
func (p *Policer) Collectors() []prometheus.Collector {
	m := p.metrics
	return []prometheus.Collector{m.syncs, m.duration, m.changes, m.transactions}
}
