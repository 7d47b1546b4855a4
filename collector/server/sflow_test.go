// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/promtext/promtexttest"
)

// sflowDatagram builds an sFlow v5 datagram from agent 198.18.0.77,
// sub-agent 4: one compact flow sample per packet size (an IPv4 UDP
// packet of that total length, sampled 1 in rate), then a counter sample
// of interface 3 whose input octets are inOctets.
func sflowDatagram(seq, rate uint32, inOctets uint64, sizes ...int) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 5)
	b = be.AppendUint32(b, 1)
	b = append(b, 198, 18, 0, 77)
	b = be.AppendUint32(b, 4)   // sub-agent
	b = be.AppendUint32(b, seq) // sequence
	b = be.AppendUint32(b, 1000)
	b = be.AppendUint32(b, uint32(len(sizes)+1))
	for i, size := range sizes {
		pkt := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, // Ethernet, IPv4
			0x45, 0, byte(size >> 8), byte(size), 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 1, 198, 18, 2, byte(i),
			0x13, 0x88, 0, 53, 0, 8, 0, 0} // UDP 5000 > 53
		rec := be.AppendUint32(nil, 1) // raw packet header
		body := be.AppendUint32(nil, 1)
		body = be.AppendUint32(body, uint32(14+size+4))
		body = be.AppendUint32(body, 4)
		body = be.AppendUint32(body, uint32(len(pkt)))
		body = append(body, pkt...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		rec = be.AppendUint32(rec, uint32(len(body)))
		rec = append(rec, body...)
		s := be.AppendUint32(nil, seq*100+uint32(i)) // sample sequence
		s = be.AppendUint32(s, 3)                    // source: ifIndex 3
		s = be.AppendUint32(s, rate)
		s = be.AppendUint32(s, 1000*seq) // pool
		s = be.AppendUint32(s, 2)        // drops
		s = be.AppendUint32(s, 3)
		s = be.AppendUint32(s, 0x3fffffff)
		s = be.AppendUint32(s, 1)
		s = append(s, rec...)
		b = be.AppendUint32(b, 1)
		b = be.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	c := be.AppendUint32(nil, seq) // counter sample sequence
	c = be.AppendUint32(c, 3)
	c = be.AppendUint32(c, 1)
	c = be.AppendUint32(c, 1) // generic interface counters
	c = be.AppendUint32(c, 88)
	c = be.AppendUint32(c, 3) // ifIndex
	c = be.AppendUint32(c, 6)
	c = be.AppendUint64(c, 1e9)
	c = be.AppendUint32(c, 1)
	c = be.AppendUint32(c, 3)
	c = be.AppendUint64(c, inOctets)
	c = append(c, make([]byte, 88-32)...)
	b = be.AppendUint32(b, 2)
	b = be.AppendUint32(b, uint32(len(c)))
	return append(b, c...)
}

func TestSFlow(t *testing.T) {
	sink := newFakeSink()
	h, err := NewHandler(HandlerConfig{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	agent := netip.MustParseAddr("198.18.0.77")
	h.HandlePacket(exporter1, sflowDatagram(1, 100, 1000, 1000, 64), t0)
	h.HandlePacket(exporter1, sflowDatagram(2, 100, 2000, 1500), t0)
	// Datagrams 3 and 4 are lost.
	h.HandlePacket(exporter1, sflowDatagram(5, 1, 3000, 40), t0)
	// NetFlow still goes its way on the same port.
	for _, m := range encodeV5(t, netflow5.Config{}, testRecords(2, false)) {
		h.HandlePacket(exporter1, m, t0)
	}
	h.HandlePacket(exporter1, sflowDatagram(6, 1, 4000, 40)[:50], t0)
	h.HandlePacket(exporter1, []byte{0, 0, 0, 4, 0, 0, 0, 1}, t0)

	var sflowRecs []flow.Record
	for _, r := range sink.records() {
		if r.Exporter == agent {
			sflowRecs = append(sflowRecs, r)
		}
	}
	want := []struct{ packets, octets uint64 }{{100, 100000}, {100, 6400}, {100, 150000}, {1, 40}}
	if len(sflowRecs) != len(want) || len(sink.records()) != len(want)+2 {
		t.Fatalf("%d sFlow records of %d, want %d of %d: %+v", len(sflowRecs), len(sink.records()), len(want), len(want)+2, sflowRecs)
	}
	for i, w := range want {
		r := sflowRecs[i]
		if r.Packets != w.packets || r.Octets != w.octets || r.ObservationDomain != 4 || r.InIf != 3 || r.OutIf != 0 ||
			r.SrcPort != 5000 || r.DstPort != 53 || !r.Start.Equal(t0) {
			t.Errorf("record %d: %+v, want %d packets %d octets from sub-agent 4", i, r, w.packets, w.octets)
		}
		if rate := uint32(w.packets); r.SamplingInterval != rate && !(rate == 1 && r.SamplingInterval <= 1) {
			t.Errorf("record %d: sampling interval %d, want %d", i, r.SamplingInterval, rate)
		}
	}
	st := h.Stats()
	if len(st.Exporters) != 1 {
		t.Fatalf("%d exporters", len(st.Exporters))
	}
	e := st.Exporters[0]
	s := e.SFlow
	if s == nil {
		t.Fatal("no sFlow statistics")
	}
	if s.Datagrams != 4 || s.FlowSamples != 4 || s.CounterSamples != 3 || e.SequenceGaps != 1 || e.SequenceLost != 2 ||
		e.DecodeErrors[KindLength] != 1 || e.DecodeErrors[KindVersion] != 1 || e.Versions[5] != 1 || e.Records != 6 {
		t.Errorf("stats %+v, sFlow %+v", e, *s)
	}
	if sink.seqFail[agent] != 1 {
		t.Errorf("sequence failures %v", sink.seqFail)
	}
	if len(s.Interfaces) != 1 || s.Interfaces[0].InOctets != 3000 || s.Interfaces[0].Agent != agent || s.Interfaces[0].IfSpeed != 1e9 {
		t.Errorf("interfaces %+v", s.Interfaces)
	}
	if len(s.Sources) != 1 || s.Sources[0].Samples != 4 || s.Sources[0].SamplingRate != 1 || s.Sources[0].SamplePool != 5000 || s.Sources[0].Drops != 2 {
		t.Errorf("sources %+v", s.Sources)
	}

	// Metrics.
	srv := &Server{handlers: []*Handler{h}, cfg: Config{Handler: HandlerConfig{Sink: sink}}}
	got := promtexttest.Scrape(t, NewMetrics(srv))
	ex := ",exporter=198.18.0.1:40000"
	ifc := ",agent=198.18.0.77,direction=in" + ex + ",ifindex=3,sub_agent=4,transport=udp"
	src := ",agent=198.18.0.77" + ex + ",source=0:3,sub_agent=4,transport=udp"
	for name, want := range map[string]float64{
		"kflow_collector_sflow_samples_total" + ex + ",kind=flow,transport=udp":    4,
		"kflow_collector_sflow_samples_total" + ex + ",kind=counter,transport=udp": 3,
		"kflow_collector_sflow_interface_octets" + ifc:                             3000,
		"kflow_collector_sflow_sample_pool" + src:                                  5000,
		"kflow_collector_sflow_agent_drops" + src:                                  2,
		"kflow_collector_sflow_sampling_rate" + src:                                1,
		"kflow_collector_sequence_gaps_total" + ex + ",transport=udp":              1,
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, want)
		}
	}
}

// BenchmarkSFlow decodes datagrams of eight flow samples and a counter
// sample each and stores the records in a real rotator writing flow
// files; it reports flow samples per second.
func BenchmarkSFlow(b *testing.B) {
	sink, err := NewFileSink(FileSinkOptions{Rotator: flowfile.RotatorOptions{Dir: b.TempDir(), Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(HandlerConfig{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	const perDatagram, datagrams = 8, 512
	var dgs [][]byte
	for i := range datagrams {
		sizes := make([]int, perDatagram)
		for j := range sizes {
			sizes[j] = 40 + (i*perDatagram+j)*7%1460
		}
		dgs = append(dgs, sflowDatagram(uint32(i+1), 1000, uint64(i), sizes...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, dg := range dgs {
			h.HandlePacket(exporter1, dg, t0)
		}
	}
	if err := sink.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)*perDatagram*datagrams/b.Elapsed().Seconds(), "samples/s")
}
