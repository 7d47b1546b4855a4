// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"strconv"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/promtext"
)

// Metrics exposes an agent's counters to Prometheus. Values are read from
// Stats at scrape time: nothing is added to the drain or per-packet paths.
type Metrics struct {
	a *Agent

	ifPackets, ifBytes                     *promtext.Desc
	activeFlows, mapEntries, mapCapacity   *promtext.Desc
	fallbackPackets, fallbackBytes         *promtext.Desc
	ignoredPackets, ignoredBytes           *promtext.Desc
	unparsedPackets, nonIPPackets          *promtext.Desc
	filteredPackets, filteredBytes         *promtext.Desc
	drains, drainSeconds, lastDrainSeconds *promtext.Desc
	cacheRecords, recordsExported          *promtext.Desc
	sinkErrors                             *promtext.Desc
	colRecords, colMessages, colErrors     *promtext.Desc
	colLost, colQueueDrops, colNotExported *promtext.Desc
	colPacketsLost, colOctetsLost          *promtext.Desc
	colUnexported, colUnexportedBytes      *promtext.Desc
	colPacketsSent, colOctetsSent          *promtext.Desc
}

// NewMetrics returns a promtext.Collector for the agent.
func NewMetrics(a *Agent) *Metrics {
	d := func(name, help string, labels ...string) *promtext.Desc {
		return promtext.NewDesc("kflow_exporter_"+name, help, labels...)
	}
	return &Metrics{
		a:                a,
		ifPackets:        d("packets_total", "Packets counted in flows, per interface and direction.", "interface", "direction"),
		ifBytes:          d("bytes_total", "L3 octets counted in flows, per interface and direction.", "interface", "direction"),
		activeFlows:      d("active_flows", "Flows in the flow cache."),
		mapEntries:       d("map_entries", "Flows in the kernel flow maps (IPv4 and IPv6) at the last drain."),
		mapCapacity:      d("map_capacity", "Capacity of each kernel flow map (IPv4, IPv6)."),
		fallbackPackets:  d("ringbuf_fallback_packets_total", "Packets counted through the ring buffer because the flow map was full."),
		fallbackBytes:    d("ringbuf_fallback_bytes_total", "L3 octets counted through the ring buffer because the flow map was full."),
		ignoredPackets:   d("ignored_packets_total", "Packets in no flow: flow map and ring buffer both full (exported as IPFIX IE 164); since the maps were created, across adopting restarts."),
		ignoredBytes:     d("ignored_bytes_total", "Octets in no flow: flow map and ring buffer both full (exported as IPFIX IE 165); since the maps were created, across adopting restarts."),
		unparsedPackets:  d("unparsed_packets_total", "IP frames too short or malformed to key."),
		nonIPPackets:     d("non_ip_packets_total", "Frames that are not IPv4 or IPv6."),
		filteredPackets:  d("filtered_packets_total", "IP packets the capture filter (--filter) left out, per interface and direction.", "interface", "direction"),
		filteredBytes:    d("filtered_bytes_total", "L3 octets of the packets the capture filter left out, per interface and direction.", "interface", "direction"),
		drains:           d("drains_total", "Drains of the kernel flow maps."),
		drainSeconds:     d("drain_seconds_total", "Time spent draining the kernel flow maps."),
		lastDrainSeconds: d("last_drain_seconds", "Duration of the last drain."),
		cacheRecords:     d("cache_records_total", "Flow records the cache ended, per flowEndReason.", "reason"),
		recordsExported:  d("records_total", "Flow records handed to the collectors and the local files."),
		sinkErrors:       d("local_write_errors_total", "Failed writes of records to the local flow files."),
		colRecords:       d("collector_records_sent_total", "Flow records in messages the transport accepted.", "collector"),
		colPacketsSent:   d("collector_packets_sent_total", "Packets counted in the flow records of messages the transport accepted (collector_records_sent_total's packets).", "collector"),
		colOctetsSent:    d("collector_bytes_sent_total", "L3 octets counted in the flow records of messages the transport accepted.", "collector"),
		colMessages:      d("collector_messages_sent_total", "Export messages sent.", "collector"),
		colErrors:        d("collector_send_errors_total", "Export messages the transport refused.", "collector"),
		colLost:          d("collector_records_lost_total", "Flow records not delivered: refused messages, unreachable collector, dropped batches, messages a TCP collector never acknowledged before the connection ended.", "collector"),
		colPacketsLost:   d("collector_packets_lost_total", "Packets counted in the flow records lost on the way to the collector (records_lost_total's packets).", "collector"),
		colOctetsLost:    d("collector_bytes_lost_total", "L3 octets counted in the flow records lost on the way to the collector.", "collector"),
		colUnexported: d("collector_packets_unexported_total", "Packets a previous exporter drained from the kernel but never handed to this collector: "+
			"it ended without its final export (SIGKILL, crash) while they were in its flow cache or queue; read from the pinned ledger by the exporter that adopted its maps, since the maps were created.", "collector"),
		colUnexportedBytes: d("collector_bytes_unexported_total", "L3 octets of collector_packets_unexported_total.", "collector"),
		colQueueDrops:      d("collector_queue_drops_total", "Batches dropped because the collector was too slow.", "collector"),
		colNotExported:     d("collector_records_not_exportable_total", "Records the format cannot carry (IPv6 in NetFlow v5).", "collector"),
	}
}

// Describe implements promtext.Collector.
func (m *Metrics) Describe() []*promtext.Desc {
	return []*promtext.Desc{m.ifPackets, m.ifBytes, m.activeFlows, m.mapEntries, m.mapCapacity,
		m.fallbackPackets, m.fallbackBytes, m.ignoredPackets, m.ignoredBytes, m.unparsedPackets, m.nonIPPackets,
		m.filteredPackets, m.filteredBytes,
		m.drains, m.drainSeconds, m.lastDrainSeconds, m.cacheRecords, m.recordsExported, m.sinkErrors,
		m.colRecords, m.colMessages, m.colErrors, m.colLost, m.colQueueDrops, m.colNotExported,
		m.colPacketsLost, m.colOctetsLost, m.colUnexported, m.colUnexportedBytes, m.colPacketsSent, m.colOctetsSent}
}

// Collect implements promtext.Collector.
func (m *Metrics) Collect(w *promtext.Writer) {
	st := m.a.Stats()
	names := map[uint32]string{}
	for _, i := range m.a.Interfaces() {
		names[i.Index] = i.Name
	}
	counter := func(d *promtext.Desc, v float64, labels ...string) {
		w.Counter(d, v, labels...)
	}
	gauge := func(d *promtext.Desc, v float64, labels ...string) {
		w.Gauge(d, v, labels...)
	}
	ifname := func(i uint32) string {
		if name, ok := names[i]; ok {
			return name
		}
		if i == 0 {
			return "other" // past the filtered map's capacity
		}
		return "if" + strconv.FormatUint(uint64(i), 10) // released since
	}
	for k, c := range st.Interfaces {
		counter(m.ifPackets, float64(c.Packets), ifname(k.Ifindex), k.Direction.String())
		counter(m.ifBytes, float64(c.Octets), ifname(k.Ifindex), k.Direction.String())
	}
	for _, f := range st.Filtered {
		counter(m.filteredPackets, float64(f.Packets), ifname(f.Ifindex), f.Direction.String())
		counter(m.filteredBytes, float64(f.Octets), ifname(f.Ifindex), f.Direction.String())
	}
	gauge(m.activeFlows, float64(st.Cache.Flows))
	gauge(m.mapEntries, float64(st.MapEntries))
	gauge(m.mapCapacity, float64(st.MapCapacity))
	dp := st.Datapath
	counter(m.fallbackPackets, float64(dp.FallbackPackets))
	counter(m.fallbackBytes, float64(dp.FallbackOctets))
	counter(m.ignoredPackets, float64(dp.IgnoredPackets))
	counter(m.ignoredBytes, float64(dp.IgnoredOctets))
	counter(m.unparsedPackets, float64(dp.UnparsedPackets))
	counter(m.nonIPPackets, float64(dp.NonIPPackets))
	counter(m.drains, float64(st.Drains))
	counter(m.drainSeconds, st.DrainSeconds)
	gauge(m.lastDrainSeconds, st.LastDrain.Seconds())
	for r, n := range st.Cache.Records {
		if n > 0 {
			counter(m.cacheRecords, float64(n), flow.EndReason(r).String())
		}
	}
	counter(m.recordsExported, float64(st.RecordsExported))
	counter(m.sinkErrors, float64(st.SinkErrors))
	for _, c := range st.Collectors {
		counter(m.colRecords, float64(c.RecordsSent), c.Target)
		counter(m.colPacketsSent, float64(c.PacketsSent), c.Target)
		counter(m.colOctetsSent, float64(c.OctetsSent), c.Target)
		counter(m.colMessages, float64(c.MessagesSent), c.Target)
		counter(m.colErrors, float64(c.SendErrors), c.Target)
		counter(m.colLost, float64(c.RecordsLost), c.Target)
		counter(m.colPacketsLost, float64(c.PacketsLost), c.Target)
		counter(m.colOctetsLost, float64(c.OctetsLost), c.Target)
		counter(m.colQueueDrops, float64(c.QueueDrops), c.Target)
		counter(m.colNotExported, float64(c.NotExportable), c.Target)
		counter(m.colUnexported, float64(c.PacketsUnexported), c.Target)
		counter(m.colUnexportedBytes, float64(c.OctetsUnexported), c.Target)
	}
	if m.a.sinkAcct != nil {
		counter(m.colUnexported, float64(st.SinkUnexported.Packets), localAccount)
		counter(m.colUnexportedBytes, float64(st.SinkUnexported.Octets), localAccount)
	}
}
