// SPDX-License-Identifier: Apache-2.0

package server

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/kflow-dev/kflow/collector/sflow"
	"github.com/kflow-dev/kflow/exporter/promtext"
)

// Bounds of what is kept per exporter transport session of sFlow: agents
// (datagram sequence numbers), data sources and interfaces. Past them new
// ones are counted in SFlowStats.NotKept and not kept.
const (
	maxSFlowAgents     = 256
	maxSFlowSources    = 1024
	maxSFlowInterfaces = 4096
)

// SFlowStats is what sFlow agents sent through one exporter transport
// session. Records of sFlow samples name the agent address as their
// exporter and the sub-agent id as their observation domain.
type SFlowStats struct {
	Datagrams      uint64
	FlowSamples    uint64 // compact and expanded
	CounterSamples uint64
	// NotIP counts flow samples of packets that are neither IPv4 nor IPv6
	// (ARP, MPLS, ...): they make no record.
	NotIP uint64
	// SkippedSamples and SkippedRecords count samples and records of
	// formats kflow does not read (other enterprises' structures, counter
	// blocks other than generic interface counters).
	SkippedSamples uint64
	SkippedRecords uint64
	// NotKept counts agents, sources and interfaces past the bounds.
	NotKept uint64
	// Sources holds, per data source, the last sample's sampling rate,
	// sample pool and drops as the agent counts them, and the flow
	// samples received.
	Sources []SFlowSource
	// Interfaces holds the last generic interface counters of each
	// interface.
	Interfaces []SFlowInterface
}

// SFlowSource is one sFlow data source (a sampler).
type SFlowSource struct {
	Agent        netip.Addr
	SubAgent     uint32
	SourceType   uint32
	SourceIndex  uint32
	SamplingRate uint32
	SamplePool   uint32 // packets the source saw (the agent's counter, wraps)
	Drops        uint32 // samples the agent lost for lack of resources
	Samples      uint64 // flow samples received
}

// SFlowInterface is the last generic interface counters of an agent's
// interface.
type SFlowInterface struct {
	Agent    netip.Addr
	SubAgent uint32
	Updated  time.Time
	sflow.InterfaceCounters
}

type sflowAgent struct {
	addr netip.Addr
	sub  uint32
}

type sflowSourceKey struct {
	agent     sflowAgent
	typ, indx uint32
}

type sflowIfKey struct {
	agent   sflowAgent
	ifIndex uint32
}

type sflowSeq struct{ next uint32 }

// sflowState is the sFlow part of an exporter session.
type sflowState struct {
	stats   SFlowStats
	seq     map[sflowAgent]*sflowSeq
	sources map[sflowSourceKey]*SFlowSource
	ifaces  map[sflowIfKey]*SFlowInterface
}

func (s *sflowState) snapshot() *SFlowStats {
	c := s.stats
	c.Sources = make([]SFlowSource, 0, len(s.sources))
	for _, v := range s.sources {
		c.Sources = append(c.Sources, *v)
	}
	slices.SortFunc(c.Sources, func(a, b SFlowSource) int {
		return cmp.Or(a.Agent.Compare(b.Agent), cmp.Compare(a.SubAgent, b.SubAgent),
			cmp.Compare(a.SourceType, b.SourceType), cmp.Compare(a.SourceIndex, b.SourceIndex))
	})
	c.Interfaces = make([]SFlowInterface, 0, len(s.ifaces))
	for _, v := range s.ifaces {
		c.Interfaces = append(c.Interfaces, *v)
	}
	slices.SortFunc(c.Interfaces, func(a, b SFlowInterface) int {
		return cmp.Or(a.Agent.Compare(b.Agent), cmp.Compare(a.SubAgent, b.SubAgent), cmp.Compare(a.IfIndex, b.IfIndex))
	})
	return &c
}

// handleSFlow decodes an sFlow datagram: its flow samples' records are
// stored (scaled by their sampling rate), its counters kept.
func (h *Handler) handleSFlow(e *exporter, b []byte, now time.Time) {
	if e.sflow == nil {
		e.sflow = &sflowState{seq: map[sflowAgent]*sflowSeq{}, sources: map[sflowSourceKey]*SFlowSource{},
			ifaces: map[sflowIfKey]*SFlowInterface{}}
	}
	st := e.sflow
	d := &h.sd
	err := sflow.Decode(d, b, now)
	if err != nil {
		e.decodeError(err)
	}
	if !d.HeaderRead {
		return // another version, or a header cut short: counted as a decode error
	}
	st.stats.Datagrams++
	st.stats.FlowSamples += uint64(len(d.Flows))
	st.stats.NotIP += uint64(d.NotIP)
	st.stats.SkippedSamples += uint64(d.SkippedSamples)
	st.stats.SkippedRecords += uint64(d.SkippedRecords)
	agentAddr := d.Agent
	if !agentAddr.IsValid() {
		agentAddr = e.addr
	}
	agent := sflowAgent{agentAddr, d.SubAgent}
	h.sflowSequence(e, agent, d.Sequence)
	for i := range d.Flows {
		f := &d.Flows[i]
		k := sflowSourceKey{agent, f.SourceType, f.SourceIndex}
		src := st.sources[k]
		if src == nil {
			if len(st.sources) >= maxSFlowSources {
				st.stats.NotKept++
				continue
			}
			src = &SFlowSource{Agent: agent.addr, SubAgent: agent.sub, SourceType: f.SourceType, SourceIndex: f.SourceIndex}
			st.sources[k] = src
		}
		src.SamplingRate, src.SamplePool, src.Drops = f.SamplingRate, f.SamplePool, f.Drops
		src.Samples++
	}
	st.stats.CounterSamples += uint64(d.CounterSamples)
	for i := range d.Counters {
		c := &d.Counters[i]
		k := sflowIfKey{agent, c.IfIndex}
		ifc := st.ifaces[k]
		if ifc == nil {
			if len(st.ifaces) >= maxSFlowInterfaces {
				st.stats.NotKept++
				continue
			}
			ifc = &SFlowInterface{Agent: agent.addr, SubAgent: agent.sub}
			st.ifaces[k] = ifc
		}
		ifc.Updated = now
		ifc.InterfaceCounters = *c
	}
	for i := range d.Records {
		if !d.Records[i].Exporter.IsValid() {
			d.Records[i].Exporter = e.addr
		}
	}
	h.storeStamped(e, d.Records)
}

// sflowSequence checks a datagram's sequence number against the agent's
// previous one: sFlow numbers datagrams 1, 2, 3 ... per agent and
// sub-agent, from 1 again when the agent restarts (not a gap).
func (h *Handler) sflowSequence(e *exporter, agent sflowAgent, seq uint32) {
	st := e.sflow
	s := st.seq[agent]
	if s == nil {
		if len(st.seq) >= maxSFlowAgents {
			st.stats.NotKept++
			return
		}
		st.seq[agent] = &sflowSeq{next: seq + 1}
		return
	}
	if seq != s.next && seq != 1 {
		e.stats.SequenceGaps++
		if d := int32(seq - s.next); d > 0 {
			e.stats.SequenceLost += uint64(d)
		}
		h.cfg.Sink.SequenceFailures(agent.addr, agent.sub, 1)
	}
	s.next = seq + 1
}

// sflowMetrics exposes the sFlow counters of Stats.
type sflowMetrics struct {
	samples, pool, drops, rate            *promtext.Desc
	ifOctets, ifPackets, ifErrors, ifDisc *promtext.Desc
}

func newSFlowMetrics() sflowMetrics {
	d := func(name, help string, labels ...string) *promtext.Desc {
		return promtext.NewDesc("kflow_collector_sflow_"+name, help, labels...)
	}
	src := []string{"exporter", "transport", "agent", "sub_agent", "source"}
	ifc := []string{"exporter", "transport", "agent", "sub_agent", "ifindex", "direction"}
	return sflowMetrics{
		samples:   d("samples_total", "sFlow samples received, per exporter and kind (flow, counter, not_ip: flow samples of non-IP packets, skipped: formats not read).", "exporter", "transport", "kind"),
		pool:      d("sample_pool", "Packets a data source saw, as its agent counts them (a 32-bit counter that wraps).", src...),
		drops:     d("agent_drops", "Samples a data source's agent lost for lack of resources, as it counts them.", src...),
		rate:      d("sampling_rate", "The sampling rate of a data source's last flow sample (1 in N).", src...),
		ifOctets:  d("interface_octets", "Octets of an agent's interface, from its last generic interface counters.", ifc...),
		ifPackets: d("interface_packets", "Packets (unicast, multicast and broadcast) of an agent's interface, from its last generic interface counters (32-bit counters that wrap).", ifc...),
		ifErrors:  d("interface_errors", "Errors of an agent's interface, from its last generic interface counters.", ifc...),
		ifDisc:    d("interface_discards", "Discarded packets of an agent's interface, from its last generic interface counters.", ifc...),
	}
}

func (m *sflowMetrics) describe() []*promtext.Desc {
	return []*promtext.Desc{m.samples, m.pool, m.drops, m.rate, m.ifOctets, m.ifPackets, m.ifErrors, m.ifDisc}
}

// collect sends the sFlow metrics of e. The agents' counters are gauges:
// they are the agents' values, which restart and wrap.
func (m *sflowMetrics) collect(w *promtext.Writer, e *ExporterStats) {
	s := e.SFlow
	if s == nil {
		return
	}
	ex, tr := e.Exporter.String(), e.Transport
	counter := func(kind string, v uint64) {
		w.Counter(m.samples, float64(v), ex, tr, kind)
	}
	counter("flow", s.FlowSamples)
	counter("counter", s.CounterSamples)
	counter("not_ip", s.NotIP)
	counter("skipped", s.SkippedSamples)
	gauge := func(d *promtext.Desc, v float64, labels ...string) {
		w.Gauge(d, v, labels...)
	}
	for _, src := range s.Sources {
		l := []string{ex, tr, src.Agent.String(), strconv.FormatUint(uint64(src.SubAgent), 10),
			strconv.FormatUint(uint64(src.SourceType), 10) + ":" + strconv.FormatUint(uint64(src.SourceIndex), 10)}
		gauge(m.pool, float64(src.SamplePool), l...)
		gauge(m.drops, float64(src.Drops), l...)
		gauge(m.rate, float64(src.SamplingRate), l...)
	}
	for _, i := range s.Interfaces {
		l := []string{ex, tr, i.Agent.String(), strconv.FormatUint(uint64(i.SubAgent), 10), strconv.FormatUint(uint64(i.IfIndex), 10)}
		in, out := append(slices.Clone(l), "in"), append(slices.Clone(l), "out")
		gauge(m.ifOctets, float64(i.InOctets), in...)
		gauge(m.ifOctets, float64(i.OutOctets), out...)
		gauge(m.ifPackets, float64(uint64(i.InUcastPkts)+uint64(i.InMulticastPkts)+uint64(i.InBroadcastPkts)), in...)
		gauge(m.ifPackets, float64(uint64(i.OutUcastPkts)+uint64(i.OutMulticastPkts)+uint64(i.OutBroadcastPkts)), out...)
		gauge(m.ifErrors, float64(i.InErrors), in...)
		gauge(m.ifErrors, float64(i.OutErrors), out...)
		gauge(m.ifDisc, float64(i.InDiscards), in...)
		gauge(m.ifDisc, float64(i.OutDiscards), out...)
	}
}
