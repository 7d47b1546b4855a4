// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exposes a shipper's counters to Prometheus, read from Stats at
// scrape time.
type Metrics struct {
	s                                  *Shipper
	rows, rawBytes, bytes, inserts     *prometheus.Desc
	errors, retries, dups, unrepr      *prometheus.Desc
	corrupt, unshipped, unshippedBytes *prometheus.Desc
	dropped, lag, lagBlocks, lagBytes  *prometheus.Desc
	ready                              *prometheus.Desc
}

// NewMetrics returns a prometheus.Collector for the shipper.
func NewMetrics(s *Shipper) *Metrics {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kflow_clickhouse_"+name, help, nil, nil)
	}
	return &Metrics{
		s:              s,
		rows:           d("rows_total", "Flow records inserted into ClickHouse."),
		rawBytes:       d("row_bytes_total", "RowBinary bytes of the rows inserted."),
		bytes:          d("bytes_total", "Bytes sent in inserts (gzip-compressed)."),
		inserts:        d("inserts_total", "Inserts ClickHouse acknowledged."),
		errors:         d("errors_total", "Failed requests to ClickHouse (retried)."),
		retries:        d("retries_total", "Attempts after a failure."),
		dups:           d("duplicate_rows_skipped_total", "Rows found in ClickHouse after an unacknowledged insert, not sent again."),
		unrepr:         d("rows_unrepresentable_total", "Records not shipped: a time outside ClickHouse's DateTime (they stay in the files)."),
		corrupt:        d("corrupt_blocks_total", "Flow-file blocks that failed their checks and were skipped."),
		unshipped:      d("files_removed_unshipped_total", "Flow files removed (retention or by hand) before being shipped whole."),
		unshippedBytes: d("files_removed_unshipped_bytes_total", "The part of those files that was not shipped."),
		dropped:        d("partitions_dropped_total", "ClickHouse partitions dropped by retention."),
		lag:            d("lag_seconds", "How far behind the shipper is: everything written before now minus this is in ClickHouse."),
		lagBlocks:      d("lag_blocks", "Whole flow-file blocks not shipped yet."),
		lagBytes:       d("lag_bytes", "Flow-file bytes not shipped yet."),
		ready:          d("ready", "1 once the schema is in place on every server."),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.rows, m.rawBytes, m.bytes, m.inserts, m.errors, m.retries, m.dups,
		m.unrepr, m.corrupt, m.unshipped, m.unshippedBytes, m.dropped, m.lag, m.lagBlocks, m.lagBytes, m.ready} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(m.rows, st.Rows)
	counter(m.rawBytes, st.RawBytes)
	counter(m.bytes, st.Bytes)
	counter(m.inserts, st.Inserts)
	counter(m.errors, st.Errors)
	counter(m.retries, st.Retries)
	counter(m.dups, st.Duplicates)
	counter(m.unrepr, st.Unrepresentable)
	counter(m.corrupt, st.CorruptBlocks)
	counter(m.unshipped, st.UnshippedFiles)
	counter(m.unshippedBytes, st.UnshippedBytes)
	counter(m.dropped, st.Dropped)
	lag := 0.0
	if !st.LagSince.IsZero() {
		lag = time.Since(st.LagSince).Seconds()
	}
	gauge(m.lag, lag)
	gauge(m.lagBlocks, float64(st.LagBlocks))
	gauge(m.lagBytes, float64(st.LagBytes))
	ready := 0.0
	if st.Ready {
		ready = 1
	}
	gauge(m.ready, ready)
}
