// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func TestRoundTrip(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 100}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 3, Name: "eth0"}, {Index: 70000, Name: "veth-kflow-long0"}})
	e.SetIgnored(11, 2222)
	recs := []flow.Record{recordV4(), recordV6()}
	var s wiretest.Sink
	n, err := e.Encode(recs, s.Emit)
	if err != nil || n != 2 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	if len(s.Pkts) != 1 || !s.Pkts[0].Templates || s.Pkts[0].Records != 2 {
		t.Fatalf("packets: %+v", s.Pkts)
	}
	got, hdrs := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if hdrs[0].Domain != 7 || hdrs[0].Sequence != 0 || !hdrs[0].ExportTime.Equal(t0) {
		t.Errorf("header %+v", hdrs[0])
	}
	if len(got.Records) != len(recs) {
		t.Fatalf("%d records, want %d", len(got.Records), len(recs))
	}
	for i := range recs {
		want := recs[i]
		want.ObservationDomain = 7
		want.SamplingInterval = 100
		if got.Records[i] != want {
			t.Errorf("record %d:\ngot  %+v\nwant %+v", i, got.Records[i], want)
		}
	}
	wantStats := wire.ExporterStats{Domain: 7, IgnoredPackets: 11, IgnoredOctets: 2222, SystemInit: t0.Add(-time.Hour)}
	if len(got.Stats) != 1 || got.Stats[0] != wantStats {
		t.Errorf("stats %+v, want %+v", got.Stats, wantStats)
	}
	wantIf := []wire.Interface{{Domain: 7, Index: 3, Name: "eth0"}, {Domain: 7, Index: 70000, Name: "veth-kflow-long0"}}
	if len(got.Interfaces) != 2 || got.Interfaces[0] != wantIf[0] || got.Interfaces[1] != wantIf[1] {
		t.Errorf("interfaces %+v, want %+v", got.Interfaces, wantIf)
	}
	// The sampling record and the PSAMP selector report (scope
	// selectorId 1).
	wantSamp := wire.Sampling{Domain: 7, Interval: 100, Algorithm: 1}
	wantSel := wantSamp
	wantSel.SamplerID, wantSel.HasSamplerID = 1, true
	if len(got.Sampling) != 2 || got.Sampling[0] != wantSamp || got.Sampling[1] != wantSel {
		t.Errorf("sampling %+v", got.Sampling)
	}
	if got.Templates != 6 {
		t.Errorf("%d templates, want 6", got.Templates)
	}
}

// TestFilteredRoundTrip: the capture filter counts go out in their own
// options records, per interface and direction, and decode back.
func TestFilteredRoundTrip(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, CaptureFilter: true}, &wiretest.Clock{T: t0})
	wiretest.FilteredRoundTrip(t, e, newSession(wire.Limits{}), 7)
}
