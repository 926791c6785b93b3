package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/phases"
)

// Metrics are what a node counts, for Prometheus (names prefixed fractal_).
type Metrics struct {
	blocks      prometheus.Counter
	height      prometheus.Gauge
	txs         *prometheus.CounterVec
	submissions *prometheus.CounterVec
	sealTime    prometheus.Histogram
	blockGas    prometheus.Histogram
	blockTxs    prometheus.Histogram
	streams     prometheus.Gauge
	// resendLookups counts the lookups run again for resends of
	// transactions refused in lookup (decisions 170, 176).
	resendLookups prometheus.Counter
	depth         func() float64
}

// NewMetrics registers a node's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "fractal_blocks_total", Help: "Blocks sealed by this node."}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fractal_head_height", Help: "Height of the last sealed block."}),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fractal_transactions_total",
			Help: "Transactions taken from the mempool into a seal, by status and the phase that refused them (none when accepted)."},
			[]string{"status", "phase"}),
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fractal_submissions_total",
			Help: "Submissions (plain and encrypted) admitted to the mempool or refused at once."}, []string{"result"}),
		sealTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fractal_seal_duration_seconds",
			Help: "Time one seal took: phases 1-3, the commit and the signature.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		blockGas: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fractal_block_gas",
			Help: "Gas used by the accepted transactions of a block.", Buckets: prometheus.ExponentialBuckets(1000, 4, 12)}),
		blockTxs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fractal_block_transactions",
			Help: "Transactions committed by a block.", Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fractal_api_streams", Help: "Watch and CompactBlocks streams open."}),
		resendLookups: prometheus.NewCounter(prometheus.CounterOpts{Name: "fractal_resend_lookups_total",
			Help: "Lookups run again for resends of transactions a recent block refused in lookup (at most one per transaction and commit)."}),
		depth: func() float64 { return 0 },
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fractal_mempool_depth", Help: "Submissions queued, plain and encrypted."},
		func() float64 { return m.depth() })
	reg.MustRegister(m.blocks, m.height, m.txs, m.submissions, m.sealTime, m.blockGas, m.blockTxs, m.streams, m.resendLookups, depth)
	return m
}

func (m *Metrics) observeHead(h uint64) { m.height.Set(float64(h)) }

// ObserveSeal counts a block committed by another path than the node's
// own seal loop (a validator's, whose blocks come from consensus): took is
// how long executing and committing it took.
func (n *Node) ObserveSeal(s *fractal.Sealed, took time.Duration) { n.m.observeSeal(s, took) }

// observeSeal counts one seal.
func (m *Metrics) observeSeal(s *fractal.Sealed, took time.Duration) {
	m.sealTime.Observe(took.Seconds())
	var gas uint64
	for _, rc := range s.Receipts {
		status, phase := "accepted", "none"
		if rc.Status != phases.Accepted {
			status, phase = "refused", rc.Phase.String()
		} else {
			gas += rc.Gas.Total()
		}
		m.txs.WithLabelValues(status, phase).Inc()
	}
	if b := s.Block; b != nil {
		m.blocks.Inc()
		m.observeHead(b.Height)
		m.blockGas.Observe(float64(gas))
		m.blockTxs.Observe(float64(len(b.TxIDs)))
	}
}
