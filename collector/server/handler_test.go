// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
)

func newTestHandler(t *testing.T, cfg HandlerConfig) (*Handler, *fakeSink) {
	t.Helper()
	sink := newFakeSink()
	cfg.Sink = sink
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, sink
}

type flowKey struct {
	src, dst netip.Addr
	sport    uint16
}

// checkSame compares stored records with what was sent, scaled by
// sampling.
func checkSame(t *testing.T, got, want []flow.Record, sampling uint64, exporter netip.Addr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records stored, want %d", len(got), len(want))
	}
	idx := map[flowKey]flow.Record{}
	for _, r := range want {
		idx[flowKey{r.Src, r.Dst, r.SrcPort}] = r
	}
	for _, g := range got {
		w, ok := idx[flowKey{g.Src, g.Dst, g.SrcPort}]
		if !ok {
			t.Fatalf("unexpected record %v > %v:%d", g.Src, g.Dst, g.SrcPort)
		}
		if g.Packets != w.Packets*sampling || g.Octets != w.Octets*sampling {
			t.Errorf("%v: %d packets %d octets, want %d, %d", g.Src, g.Packets, g.Octets, w.Packets*sampling, w.Octets*sampling)
		}
		if !g.Start.Equal(w.Start.Truncate(time.Millisecond)) || !g.End.Equal(w.End.Truncate(time.Millisecond)) {
			t.Errorf("%v: times %v..%v, want %v..%v", g.Src, g.Start, g.End, w.Start, w.End)
		}
		if g.Exporter != exporter {
			t.Errorf("exporter %v, want %v", g.Exporter, exporter)
		}
		if sampling > 1 && g.SamplingInterval != uint32(sampling) {
			t.Errorf("sampling interval %d, want %d", g.SamplingInterval, sampling)
		}
	}
}

func TestHandlerFormats(t *testing.T) {
	v4 := testRecords(100, false)
	mixed := testRecords(100, true)
	for _, tt := range []struct {
		name     string
		msgs     [][]byte
		want     []flow.Record
		sampling uint64
	}{
		{"ipfix", encodeIPFIX(t, ipfix.Config{ObservationDomain: 3}, mixed, 30), mixed, 1},
		{"ipfix-sampled", encodeIPFIX(t, ipfix.Config{SamplingInterval: 16}, mixed, 30), mixed, 16},
		{"netflow9", encodeV9(t, netflow9.Config{SourceID: 3}, mixed, 30), mixed, 1},
		{"netflow9-sampled", encodeV9(t, netflow9.Config{SamplingInterval: 8}, mixed, 30), mixed, 8},
		{"netflow5", encodeV5(t, netflow5.Config{EngineID: 1}, v4), v4, 1},
		{"netflow5-sampled", encodeV5(t, netflow5.Config{SamplingInterval: 100}, v4), v4, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, HandlerConfig{})
			for _, m := range tt.msgs {
				h.HandlePacket(exporter1, m, t0)
			}
			checkSame(t, sink.records(), tt.want, tt.sampling, exporter1.Addr.Addr())
			st := h.Stats()
			if len(st.Exporters) != 1 {
				t.Fatalf("%d exporters", len(st.Exporters))
			}
			e := st.Exporters[0]
			if len(e.DecodeErrors) != 0 || e.SequenceGaps != 0 || e.TemplateMisses != 0 {
				t.Errorf("stats %+v", e)
			}
			if e.Packets != uint64(len(tt.msgs)) || e.Records != uint64(len(tt.want)) {
				t.Errorf("packets %d records %d", e.Packets, e.Records)
			}
		})
	}
}

func TestHandlerHeldUntilTemplate(t *testing.T) {
	for _, tt := range []struct {
		name string
		msgs [][]byte
	}{
		{"ipfix", encodeIPFIX(t, ipfix.Config{}, testRecords(60, true), 20)},
		{"netflow9", encodeV9(t, netflow9.Config{}, testRecords(60, true), 20)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, HandlerConfig{})
			// Data-only messages first, the one with the templates last.
			for _, m := range tt.msgs[1:] {
				h.HandlePacket(exporter1, m, t0)
			}
			if n := len(sink.records()); n != 0 {
				t.Fatalf("%d records decoded without template", n)
			}
			h.HandlePacket(exporter1, tt.msgs[0], t0.Add(time.Second))
			checkSame(t, sink.records(), testRecords(60, true), 1, exporter1.Addr.Addr())
			e := h.Stats().Exporters[0]
			if e.TemplateMisses == 0 || e.HeldDecoded != e.TemplateMisses || e.HeldDropped != 0 {
				t.Errorf("misses %d decoded %d dropped %d", e.TemplateMisses, e.HeldDecoded, e.HeldDropped)
			}
		})
	}
}

func TestHandlerHeldExpires(t *testing.T) {
	msgs := encodeIPFIX(t, ipfix.Config{}, testRecords(40, false), 20)
	h, sink := newTestHandler(t, HandlerConfig{HoldTime: 5 * time.Second})
	h.HandlePacket(exporter1, msgs[1], t0)
	h.ExpireHeld(t0.Add(4 * time.Second))
	if e := h.Stats().Exporters[0]; e.HeldDropped != 0 {
		t.Fatalf("dropped before its time: %+v", e)
	}
	h.ExpireHeld(t0.Add(5 * time.Second))
	h.HandlePacket(exporter1, msgs[0], t0.Add(6*time.Second))
	var first ipfix.Message
	if err := ipfix.NewSession(wire.Limits{}).Decode(&first, msgs[0]); err != nil {
		t.Fatal(err)
	}
	e := h.Stats().Exporters[0]
	if e.HeldDropped != 1 || e.HeldDecoded != 0 || len(sink.records()) != len(first.Records) {
		t.Errorf("dropped %d decoded %d records %d; want 1, 0, %d", e.HeldDropped, e.HeldDecoded, len(sink.records()), len(first.Records))
	}
}

func TestHandlerHeldBounded(t *testing.T) {
	h, _ := newTestHandler(t, HandlerConfig{MaxHeldSets: 10})
	for i := range 25 {
		h.HandlePacket(exporter1, ipfixMsg(0, 0, set(300+i, basicRecord(i))), t0)
	}
	e := h.Stats().Exporters[0]
	if e.TemplateMisses != 25 || e.HeldDropped != 15 {
		t.Errorf("misses %d dropped %d; want 25, 15", e.TemplateMisses, e.HeldDropped)
	}
	h.DropHeld()
	if e := h.Stats().Exporters[0]; e.HeldDropped != 25 {
		t.Errorf("after DropHeld: dropped %d, want 25", e.HeldDropped)
	}
}

func TestHandlerSequence(t *testing.T) {
	for _, tt := range []struct {
		name     string
		msgs     [][]byte
		lostUnit func(skipped []byte) uint64
	}{
		{"ipfix", encodeIPFIX(t, ipfix.Config{}, testRecords(100, false), 10), func(m []byte) uint64 { return 10 }},
		{"netflow9", encodeV9(t, netflow9.Config{}, testRecords(100, false), 10), func([]byte) uint64 { return 1 }},
		{"netflow5", encodeV5(t, netflow5.Config{}, testRecords(100, false)), func(m []byte) uint64 { return uint64(m[3]) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, HandlerConfig{})
			if len(tt.msgs) < 3 {
				t.Fatalf("only %d messages", len(tt.msgs))
			}
			for i, m := range tt.msgs {
				if i == 1 {
					continue
				}
				h.HandlePacket(exporter1, m, t0)
			}
			e := h.Stats().Exporters[0]
			if e.SequenceGaps != 1 || e.SequenceLost != tt.lostUnit(tt.msgs[1]) {
				t.Errorf("gaps %d lost %d; want 1, %d", e.SequenceGaps, e.SequenceLost, tt.lostUnit(tt.msgs[1]))
			}
			if sink.seqFail[exporter1.Addr.Addr()] != 1 {
				t.Errorf("sink got %d sequence failures", sink.seqFail[exporter1.Addr.Addr()])
			}
		})
	}
}

func TestHandlerAllow(t *testing.T) {
	h, sink := newTestHandler(t, HandlerConfig{Allow: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}})
	msgs := encodeIPFIX(t, ipfix.Config{}, testRecords(5, false), 5)
	h.HandlePacket(Source{Addr: netip.MustParseAddrPort("198.18.1.1:1")}, msgs[0], t0)
	h.HandlePacket(Source{Addr: netip.MustParseAddrPort("[::ffff:198.18.0.9]:1")}, msgs[0], t0)
	st := h.Stats()
	if st.NotAllowed != 1 || len(sink.records()) != 5 || len(st.Exporters) != 1 {
		t.Errorf("not allowed %d, records %d, exporters %d", st.NotAllowed, len(sink.records()), len(st.Exporters))
	}
	if got := st.Exporters[0].Exporter.Addr(); got != netip.MustParseAddr("198.18.0.9") {
		t.Errorf("exporter %v: 4-in-6 not unmapped", got)
	}
}

func TestHandlerExportersBounded(t *testing.T) {
	h, _ := newTestHandler(t, HandlerConfig{MaxExporters: 3})
	msg := encodeIPFIX(t, ipfix.Config{}, testRecords(1, false), 1)[0]
	for i := range 10 {
		h.HandlePacket(Source{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(1000+i))}, msg, t0.Add(time.Duration(i)))
	}
	st := h.Stats()
	if len(st.Exporters) != 3 || st.Evicted != 7 {
		t.Errorf("%d exporters, %d evicted", len(st.Exporters), st.Evicted)
	}
}

// TestHandlerSequenceConventions: IPFIX exporters that number options data
// records too (RFC 7011's wording) and those that number flow records only
// (what nfdump checks, kflow's default) both give no gap.
func TestHandlerSequenceConventions(t *testing.T) {
	for _, all := range []bool{false, true} {
		h, _ := newTestHandler(t, HandlerConfig{})
		// A short refresh interval puts options records in several messages.
		msgs := encodeIPFIX(t, ipfix.Config{SequenceAllRecords: all, TemplateRefreshMessages: 3}, testRecords(100, false), 10)
		for _, m := range msgs {
			h.HandlePacket(exporter1, m, t0)
		}
		if e := h.Stats().Exporters[0]; e.SequenceGaps != 0 || e.OptionsRecords < 2 {
			t.Errorf("all=%v: %d gaps, %d options records; want 0 gaps and several options records", all, e.SequenceGaps, e.OptionsRecords)
		}
	}
}
