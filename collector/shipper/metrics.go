// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"time"

	"github.com/kflow-dev/kflow/exporter/promtext"
)

// Metrics exposes a shipper's counters to Prometheus, read from Stats at
// scrape time.
type Metrics struct {
	s                                  *Shipper
	rows, rawBytes, bytes, inserts     *promtext.Desc
	errors, retries, dups, unrepr      *promtext.Desc
	corrupt, unshipped, unshippedBytes *promtext.Desc
	dropped, lag, lagBlocks, lagBytes  *promtext.Desc
	ready                              *promtext.Desc
}

// NewMetrics returns a promtext.Collector for the shipper.
func NewMetrics(s *Shipper) *Metrics {
	d := func(name, help string) *promtext.Desc {
		return promtext.NewDesc("kflow_clickhouse_"+name, help)
	}
	return &Metrics{
		s:              s,
		rows:           d("rows_total", "Flow records inserted into ClickHouse."),
		rawBytes:       d("row_bytes_total", "RowBinary bytes of the rows inserted."),
		bytes:          d("bytes_total", "Bytes sent in inserts (gzip-compressed unless compression is off)."),
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

// Describe implements promtext.Collector.
func (m *Metrics) Describe() []*promtext.Desc {
	return []*promtext.Desc{m.rows, m.rawBytes, m.bytes, m.inserts, m.errors, m.retries, m.dups,
		m.unrepr, m.corrupt, m.unshipped, m.unshippedBytes, m.dropped, m.lag, m.lagBlocks, m.lagBytes, m.ready}
}

// Collect implements promtext.Collector.
func (m *Metrics) Collect(w *promtext.Writer) {
	st := m.s.Stats()
	counter := func(d *promtext.Desc, v uint64) {
		w.Counter(d, float64(v))
	}
	gauge := func(d *promtext.Desc, v float64) {
		w.Gauge(d, v)
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
