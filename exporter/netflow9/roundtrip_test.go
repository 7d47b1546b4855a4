// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func TestRoundTrip(t *testing.T) {
	// The export time has a sub-second part: the encoder must still make
	// unix_secs and sysUptime agree so FIRST/LAST_SWITCHED decode to the ms.
	clk := &wiretest.Clock{T: t0.Add(789 * time.Millisecond)}
	e := newEncoder(t, Config{SourceID: 7, SamplingInterval: 100}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 3, Name: "eth0"}, {Index: 70000, Name: "veth-kflow-long0-cut"}})
	e.SetIgnored(11, 2222)
	// The statistics' counters began two days before the process (an
	// adopted datapath): IE 160 says so, sysUptime still counts from the
	// process.
	metering := t0.Add(-48*time.Hour + 250*time.Millisecond)
	e.SetMeteringInit(metering)
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
	if h := hdrs[0]; h.SourceID != 7 || h.Sequence != 0 || !h.ExportTime.Equal(t0) || h.SysUptime != 3600_000 || h.Count != 5+4+2 {
		t.Errorf("header %+v", h)
	}
	if len(got.Records) != len(recs) {
		t.Fatalf("%d records, want %d", len(got.Records), len(recs))
	}
	for i := range recs {
		want := carried(recs[i], 7)
		want.SamplingInterval = 100
		if got.Records[i] != want {
			t.Errorf("record %d:\ngot  %+v\nwant %+v", i, got.Records[i], want)
		}
	}
	wantStats := wire.ExporterStats{Domain: 7, IgnoredPackets: 11, IgnoredOctets: 2222, SystemInit: metering.UTC()}
	if len(got.Stats) != 1 || got.Stats[0] != wantStats {
		t.Errorf("stats %+v, want %+v", got.Stats, wantStats)
	}
	wantIf := []wire.Interface{{Domain: 7, Index: 3, Name: "eth0"}, {Domain: 7, Index: 70000, Name: "veth-kflow-long0"}}
	if len(got.Interfaces) != 2 || got.Interfaces[0] != wantIf[0] || got.Interfaces[1] != wantIf[1] {
		t.Errorf("interfaces %+v, want %+v", got.Interfaces, wantIf)
	}
	if len(got.Sampling) != 1 || got.Sampling[0] != (wire.Sampling{Domain: 7, Interval: 100, Algorithm: 1}) {
		t.Errorf("sampling %+v", got.Sampling)
	}
	if got.Templates != 5 {
		t.Errorf("%d templates, want 5", got.Templates)
	}
}

// TestUptimeWrap: sysUptime wraps after 49.7 days; FIRST_SWITCHED taken
// before the wrap still decodes to the right time.
func TestUptimeWrap(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	init := t0.Add(-(1<<32 + 500) * time.Millisecond) // uptime wrapped 500 ms ago
	e := newEncoder(t, Config{SourceID: 1, SystemInit: init}, clk)
	r := recordV4()
	r.Start = t0.Add(-2 * time.Second) // before the wrap
	r.End = t0.Add(-100 * time.Millisecond)
	var s wiretest.Sink
	if _, err := e.Encode([]flow.Record{r}, s.Emit); err != nil {
		t.Fatal(err)
	}
	got, hdrs := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if hdrs[0].SysUptime != 500 {
		t.Fatalf("sysUptime %d, want 500", hdrs[0].SysUptime)
	}
	if !got.Records[0].Start.Equal(r.Start) || !got.Records[0].End.Equal(r.End) {
		t.Errorf("start %v end %v, want %v %v", got.Records[0].Start, got.Records[0].End, r.Start, r.End)
	}
}

// TestFilteredRoundTrip: the capture filter counts go out in their own
// options records, per interface and direction, and decode back.
func TestFilteredRoundTrip(t *testing.T) {
	e := newEncoder(t, Config{SourceID: 7, CaptureFilter: true}, &wiretest.Clock{T: t0})
	wiretest.FilteredRoundTrip(t, e, newSession(wire.Limits{}), 7)
}

// TestSamplingRandom: random sampling is announced as SAMPLING_ALGORITHM
// 2, deterministic as 1.
func TestSamplingRandom(t *testing.T) {
	for _, random := range []bool{true, false} {
		e := newEncoder(t, Config{SourceID: 7, SamplingInterval: 10, SamplingRandom: random}, &wiretest.Clock{T: t0})
		var s wiretest.Sink
		wiretest.Encode(t, e, &s, recordV4())
		got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
		want := wire.Sampling{Domain: 7, Interval: 10, Algorithm: wire.SamplingDeterministic}
		if random {
			want.Algorithm = wire.SamplingRandom
		}
		if len(got.Sampling) != 1 || got.Sampling[0] != want {
			t.Errorf("random %v: sampling %+v, want %+v", random, got.Sampling, want)
		}
	}
}
