// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func TestPacking(t *testing.T) {
	// IPv4 records are 57 octets. 1400-20 (header) = 1380 octets for
	// flowsets: 4 + 24*57 = 1372: 24 records. The first packet also
	// carries the template flowset (172), the two options template
	// flowsets (30+2 padding, 18+2) and the statistics flowset (40):
	// 1380-264 = 1116 octets, 4 + 19*57 = 1087: 19 records.
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{SourceID: 1}, clk)
	recs := numbered(1000, false)
	var s wiretest.Sink
	n, err := e.Encode(recs, s.Emit)
	if err != nil || n != 1000 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	wantPer := []int{19}
	for left := 1000 - 19; left > 0; left -= 24 {
		wantPer = append(wantPer, min(left, 24))
	}
	if len(s.Pkts) != len(wantPer) {
		t.Fatalf("%d packets, want %d", len(s.Pkts), len(wantPer))
	}
	for i, p := range s.Pkts {
		if p.Records != wantPer[i] {
			t.Errorf("packet %d: %d records, want %d", i, p.Records, wantPer[i])
		}
		if len(p.Bytes) > DefaultMTU || len(p.Bytes)%4 != 0 {
			t.Errorf("packet %d: %d octets", i, len(p.Bytes))
		}
		if p.Sequence != uint32(i) {
			t.Errorf("packet %d: sequence %d", i, p.Sequence)
		}
		if p.Templates != (i == 0) {
			t.Errorf("packet %d: templates %v", i, p.Templates)
		}
	}
	if len(s.Pkts[1].Bytes) != 20+1372 {
		t.Errorf("full packet has %d octets, want %d", len(s.Pkts[1].Bytes), 20+1372)
	}
	got, hdrs := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	for i, h := range hdrs {
		want := s.Pkts[i].Records
		if i == 0 {
			want += 2 + 2 + 1 // templates, options templates, statistics record
		}
		if int(h.Count) != want {
			t.Errorf("packet %d: count %d, want %d", i, h.Count, want)
		}
	}
	if len(got.Records) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got.Records), len(recs))
	}
	for i := range recs {
		if want := carried(recs[i], 1); got.Records[i] != want {
			t.Fatalf("record %d: got %+v, want %+v", i, got.Records[i], want)
		}
	}
	if p, r := e.Counters(); p != uint64(len(s.Pkts)) || r != 1000 {
		t.Errorf("Counters = %d, %d", p, r)
	}
}

func TestPackingMixed(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{SourceID: 1, MTU: 600}, clk)
	var s wiretest.Sink
	if _, err := e.Encode(nil, s.Emit); err != nil || len(s.Pkts) != 1 {
		t.Fatal(err)
	}
	recs := numbered(60, true)
	if n, err := e.Encode(recs, s.Emit); err != nil || n != 60 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	pad := func(n int) int { return (n + 3) &^ 3 }
	type pkt struct{ recs, size int }
	var want []pkt
	cur, last, setLen := pkt{size: HeaderLen}, -1, 0
	for i := range recs {
		kind, size := 4, 57
		if recs[i].Src.Is6() {
			kind, size = 6, 81
		}
		var next int // packet size with this record, its flowset padded
		if kind == last {
			next = cur.size - pad(setLen) + pad(setLen+size)
		} else {
			next = cur.size + pad(4+size)
		}
		if next > 600 {
			want = append(want, cur)
			cur, last = pkt{size: HeaderLen}, -1
			next = cur.size + pad(4+size)
		}
		if kind == last {
			setLen += size
		} else {
			setLen = 4 + size
		}
		cur.recs++
		cur.size = next
		last = kind
	}
	want = append(want, cur)
	if len(s.Pkts)-1 != len(want) {
		t.Fatalf("%d packets, want %d", len(s.Pkts)-1, len(want))
	}
	for i, p := range s.Pkts[1:] {
		if p.Records != want[i].recs || len(p.Bytes) != want[i].size {
			t.Errorf("packet %d: %d records, %d octets; want %d, %d", i+1, p.Records, len(p.Bytes), want[i].recs, want[i].size)
		}
	}
	got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if len(got.Records) != 60 {
		t.Fatalf("%d records", len(got.Records))
	}
	for i := range recs {
		if got.Records[i] != carried(recs[i], 1) {
			t.Fatalf("record %d changed", i)
		}
	}
}
