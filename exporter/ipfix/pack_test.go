// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func TestPacking(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequence-all-records=%v", all), func(t *testing.T) { testPacking(t, all) })
	}
}

// testPacking packs 1000 records. With all set the sequence number counts
// options data records too (RFC 7011's wording); by default flow records
// only (what nfdump checks).
func testPacking(t *testing.T, all bool) {
	// Record sizes: IPv4 67 octets, IPv6 91 octets. A 1400-octet message
	// has 1400-16 (header) -4 (set header) = 1380 octets for records:
	// 20 IPv4 records (1340). The first message also carries templates
	// (180), options templates (34+18) and the statistics record (48):
	// 1400-16-280-4 = 1100 octets, 16 IPv4 records.
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{ObservationDomain: 1, SequenceAllRecords: all}, clk)
	recs := numbered(1000, false)
	var s wiretest.Sink
	n, err := e.Encode(recs, s.Emit)
	if err != nil || n != 1000 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	wantPer := []int{16}
	for left := 1000 - 16; left > 0; left -= 20 {
		wantPer = append(wantPer, min(left, 20))
	}
	if len(s.Pkts) != len(wantPer) {
		t.Fatalf("%d messages, want %d", len(s.Pkts), len(wantPer))
	}
	seq := uint32(0)
	for i, p := range s.Pkts {
		if p.Records != wantPer[i] {
			t.Errorf("message %d: %d records, want %d", i, p.Records, wantPer[i])
		}
		if len(p.Bytes) > DefaultMTU {
			t.Errorf("message %d: %d octets > MTU", i, len(p.Bytes))
		}
		if i < len(s.Pkts)-1 && len(p.Bytes)+67 <= DefaultMTU {
			t.Errorf("message %d: %d octets, another record would fit", i, len(p.Bytes))
		}
		if p.Sequence != seq {
			t.Errorf("message %d: sequence %d, want %d", i, p.Sequence, seq)
		}
		seq += uint32(p.Records)
		if i == 0 && all {
			seq++ // the statistics options record is a data record too
		}
		if p.Templates != (i == 0) {
			t.Errorf("message %d: templates %v", i, p.Templates)
		}
	}
	got, hdrs := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	for i, h := range hdrs {
		if h.Sequence != s.Pkts[i].Sequence {
			t.Errorf("decoded sequence %d, want %d", h.Sequence, s.Pkts[i].Sequence)
		}
	}
	if len(got.Records) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got.Records), len(recs))
	}
	for i := range recs {
		want := recs[i]
		want.ObservationDomain = 1
		if got.Records[i] != want {
			t.Fatalf("record %d: got %+v, want %+v", i, got.Records[i], want)
		}
	}
	if m, r := e.Counters(); m != uint64(len(s.Pkts)) || r != 1000 {
		t.Errorf("Counters = %d, %d", m, r)
	}
}

func TestPackingMixed(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{ObservationDomain: 1, MTU: 600}, clk)
	var s wiretest.Sink
	if _, err := e.Encode(nil, s.Emit); err != nil { // templates go first
		t.Fatal(err)
	}
	if len(s.Pkts) != 1 || s.Pkts[0].Records != 0 || !s.Pkts[0].Templates {
		t.Fatalf("template message: %+v", s.Pkts)
	}
	// v4 v4 v6 alternate, so sets open and close: a model of the packing
	// (a set header whenever the template changes) gives the expected
	// records and octets of every message.
	recs := numbered(60, true)
	n, err := e.Encode(recs, s.Emit)
	if err != nil || n != 60 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	type msg struct{ recs, size int }
	var want []msg
	cur, last := msg{size: HeaderLen}, -1
	for i := range recs {
		kind, size := 4, 67
		if recs[i].Src.Is6() {
			kind, size = 6, 91
		}
		cost := size
		if kind != last {
			cost += 4
		}
		if cur.size+cost > 600 {
			want = append(want, cur)
			cur, cost = msg{size: HeaderLen}, size+4
		}
		cur.recs++
		cur.size += cost
		last = kind
	}
	want = append(want, cur)
	if len(s.Pkts)-1 != len(want) {
		t.Fatalf("%d messages, want %d", len(s.Pkts)-1, len(want))
	}
	for i, p := range s.Pkts[1:] {
		if p.Records != want[i].recs || len(p.Bytes) != want[i].size {
			t.Errorf("message %d: %d records, %d octets; want %d, %d", i+1, p.Records, len(p.Bytes), want[i].recs, want[i].size)
		}
	}
	if want[0].recs != 7 || want[0].size != 553 {
		t.Errorf("model: first message %+v, want 7 records in 553 octets", want[0])
	}
	got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if len(got.Records) != 60 {
		t.Fatalf("%d records", len(got.Records))
	}
	for i := range recs {
		if got.Records[i].Packets != recs[i].Packets || got.Records[i].Src != recs[i].Src {
			t.Fatalf("record %d out of order or changed", i)
		}
	}
}

func TestInvalidAddressUsesIPv4Template(t *testing.T) {
	e := newEncoder(t, Config{}, &wiretest.Clock{T: t0})
	var s wiretest.Sink
	r := flow.Record{Packets: 1, Octets: 40}
	if n, err := e.Encode([]flow.Record{r}, s.Emit); n != 1 || err != nil {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if len(got.Records) != 1 || got.Records[0].Src != netip.IPv4Unspecified() || got.Records[0].Packets != 1 {
		t.Fatalf("got %+v", got.Records)
	}
}
