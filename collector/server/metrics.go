// SPDX-License-Identifier: Apache-2.0

package server

import (
	"strconv"

	"github.com/kflow-dev/kflow/exporter/promtext"
)

// Metrics exposes a server's counters to Prometheus, read from Stats at
// scrape time.
type Metrics struct {
	s *Server

	packets, bytes, records, optRecords    *promtext.Desc
	decodeErrors, templates, withdrawals   *promtext.Desc
	templateMisses, heldDecoded, heldDrop  *promtext.Desc
	seqGaps, seqLost, storeErrors          *promtext.Desc
	storeErrorPackets, lostPackets         *promtext.Desc
	restartLost                            *promtext.Desc
	lPackets, kernelDrops, conns, refused  *promtext.Desc
	notAllowed, evicted, flushErrors       *promtext.Desc
	files, fileBytes, fileRecords, lost    *promtext.Desc
	fileErrors, expired, expiredBytes      *promtext.Desc
	rotationLag, lastRotation              *promtext.Desc
	ignoredPackets, ignoredOctets, ifNames *promtext.Desc
	sflow                                  sflowMetrics
}

// NewMetrics returns a promtext.Collector for the server.
func NewMetrics(s *Server) *Metrics {
	d := func(name, help string, labels ...string) *promtext.Desc {
		return promtext.NewDesc("kflow_collector_"+name, help, labels...)
	}
	ex := []string{"exporter", "transport"}
	return &Metrics{
		s:                 s,
		packets:           d("packets_total", "Export messages received, per exporter.", ex...),
		bytes:             d("bytes_total", "Bytes of export messages received, per exporter.", ex...),
		records:           d("records_total", "Flow records stored, per exporter.", ex...),
		optRecords:        d("options_records_total", "Options data records decoded, per exporter.", ex...),
		decodeErrors:      d("decode_errors_total", "Malformed messages, per exporter and kind.", "exporter", "transport", "kind"),
		templates:         d("templates_total", "Template records received, per exporter.", ex...),
		withdrawals:       d("template_withdrawals_total", "Templates withdrawn, per exporter.", ex...),
		templateMisses:    d("template_misses_total", "Data sets that arrived before their template, per exporter.", ex...),
		heldDecoded:       d("held_decoded_total", "Held data sets decoded once their template arrived, per exporter.", ex...),
		heldDrop:          d("held_dropped_total", "Held data sets dropped: their template never came, per exporter.", ex...),
		seqGaps:           d("sequence_gaps_total", "Sequence number discontinuities, per exporter.", ex...),
		seqLost:           d("sequence_lost_total", "What the sequence gaps say is missing (v5 flows, v9 packets, IPFIX records), per exporter.", ex...),
		storeErrors:       d("store_errors_total", "Records the flow files refused, per exporter.", ex...),
		lPackets:          d("listener_packets_total", "Datagrams or messages read, per socket.", "listener"),
		kernelDrops:       d("kernel_drops_total", "Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL).", "listener"),
		conns:             d("tcp_connections_total", "TCP connections accepted.", "listener"),
		refused:           d("tcp_connections_refused_total", "TCP connections refused.", "listener"),
		notAllowed:        d("not_allowed_total", "Messages from exporters outside --allow, ignored."),
		evicted:           d("exporters_evicted_total", "Exporter sessions dropped to stay within the exporter limit."),
		flushErrors:       d("flush_errors_total", "Failed writes of buffered records to the current files."),
		files:             d("files_total", "Flow files finished."),
		fileBytes:         d("file_bytes_total", "Bytes of flow files finished."),
		fileRecords:       d("file_records_total", "Flow records in the files finished."),
		lost:              d("file_records_lost_total", "Records no file could take."),
		lostPackets:       d("file_packets_lost_total", "Packets counted in the records no file could take."),
		restartLost:       d("restart_lost_total", "What the sequence numbers say the exporter sent between the previous run's last flush and its first message to this run (v9 packets, IPFIX records): lost while the collector was down, or received and not flushed when it ended; per UDP exporter.", ex...),
		storeErrorPackets: d("store_error_packets_total", "Packets counted in the records the flow files refused (store_errors_total), per exporter.", ex...),
		fileErrors:        d("file_errors_total", "Files finished with an error."),
		expired:           d("files_expired_total", "Files removed by retention."),
		expiredBytes:      d("files_expired_bytes_total", "Bytes of files removed by retention."),
		rotationLag:       d("rotation_lag_seconds", "How long after its slot ended the last file was finished."),
		lastRotation:      d("last_rotation_timestamp_seconds", "When the last file was finished (Unix time)."),
		ignoredPackets:    d("exporter_ignored_packets", "Packets the exporter says it could not put in a flow (its last ignoredPacketTotalCount, IE 164), per exporter and observation domain.", "exporter", "transport", "domain"),
		ignoredOctets:     d("exporter_ignored_octets", "Octets of those packets (ignoredOctetTotalCount, IE 165), per exporter and observation domain.", "exporter", "transport", "domain"),
		ifNames:           d("exporter_interface_names", "Interface names the exporter announced (IE 82), per exporter and observation domain.", "exporter", "transport", "domain"),
		sflow:             newSFlowMetrics(),
	}
}

// Describe implements promtext.Collector.
func (m *Metrics) Describe() []*promtext.Desc {
	return append([]*promtext.Desc{m.packets, m.bytes, m.records, m.optRecords, m.decodeErrors, m.templates,
		m.withdrawals, m.templateMisses, m.heldDecoded, m.heldDrop, m.seqGaps, m.seqLost, m.storeErrors, m.storeErrorPackets, m.lostPackets, m.restartLost, m.lPackets,
		m.kernelDrops, m.conns, m.refused, m.notAllowed, m.evicted, m.flushErrors, m.files, m.fileBytes,
		m.fileRecords, m.lost, m.fileErrors, m.expired, m.expiredBytes, m.rotationLag, m.lastRotation, m.ignoredPackets, m.ignoredOctets, m.ifNames}, m.sflow.describe()...)
}

// Collect implements promtext.Collector.
func (m *Metrics) Collect(w *promtext.Writer) {
	st := m.s.Stats()
	counter := func(d *promtext.Desc, v uint64, labels ...string) {
		w.Counter(d, float64(v), labels...)
	}
	gauge := func(d *promtext.Desc, v float64, labels ...string) {
		w.Gauge(d, v, labels...)
	}
	for _, e := range st.Exporters {
		l := []string{e.Exporter.String(), e.Transport}
		counter(m.packets, e.Packets, l...)
		counter(m.bytes, e.Bytes, l...)
		counter(m.records, e.Records, l...)
		counter(m.optRecords, e.OptionsRecords, l...)
		for kind, n := range e.DecodeErrors {
			counter(m.decodeErrors, n, l[0], l[1], kind)
		}
		counter(m.templates, e.Templates, l...)
		counter(m.withdrawals, e.Withdrawals, l...)
		counter(m.templateMisses, e.TemplateMisses, l...)
		counter(m.heldDecoded, e.HeldDecoded, l...)
		counter(m.heldDrop, e.HeldDropped, l...)
		counter(m.seqGaps, e.SequenceGaps, l...)
		counter(m.seqLost, e.SequenceLost, l...)
		counter(m.storeErrors, e.StoreErrors, l...)
		counter(m.storeErrorPackets, e.StoreErrorPackets, l...)
		counter(m.restartLost, e.RestartLost, l...)
		for _, r := range e.Reports {
			dl := []string{l[0], l[1], strconv.FormatUint(uint64(r.Domain), 10)}
			if r.HasStats {
				gauge(m.ignoredPackets, float64(r.IgnoredPackets), dl...)
				gauge(m.ignoredOctets, float64(r.IgnoredOctets), dl...)
			}
			gauge(m.ifNames, float64(len(r.Interfaces)), dl...)
		}
		m.sflow.collect(w, &e)
	}
	for _, l := range st.Listeners {
		counter(m.lPackets, l.Packets, l.Addr)
		counter(m.kernelDrops, l.KernelDrops, l.Addr)
		counter(m.conns, l.Conns, l.Addr)
		counter(m.refused, l.ConnsRefused, l.Addr)
	}
	counter(m.notAllowed, st.NotAllowed)
	counter(m.evicted, st.Evicted)
	counter(m.flushErrors, st.FlushErrors)
	f := st.Files
	counter(m.files, f.Files)
	counter(m.fileBytes, f.Bytes)
	counter(m.fileRecords, f.Records)
	counter(m.lost, f.LostRecords)
	counter(m.lostPackets, f.LostPackets)
	counter(m.fileErrors, f.FileErrors)
	counter(m.expired, f.Expired)
	counter(m.expiredBytes, f.ExpiredBytes)
	gauge(m.rotationLag, f.RotationLag.Seconds())
	if !f.LastRotation.IsZero() {
		gauge(m.lastRotation, float64(f.LastRotation.UnixNano())/1e9)
	}
}
