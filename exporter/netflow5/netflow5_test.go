// SPDX-License-Identifier: Apache-2.0

package netflow5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func clock() time.Time { return t0 }

// record sets every field v5 carries.
func record() flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.1.2"),
		NextHop: netip.MustParseAddr("198.18.0.254"),
		SrcPort: 43512, DstPort: 443, Proto: flow.ProtoTCP,
		InIf: 3, OutIf: 4, Packets: 10, Octets: 4000,
		Start:    t0.Add(-90*time.Second + 123*time.Millisecond),
		End:      t0.Add(-1*time.Second + 456*time.Millisecond),
		TCPFlags: flow.TCPSyn | flow.TCPAck | flow.TCPEce | flow.TCPCwr,
		TOS:      0xb8, SrcAS: 64512, DstAS: 65000, SrcMask: 24, DstMask: 16,
	}
}

func icmpRecord() flow.Record {
	r := record()
	r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode, r.TCPFlags = flow.ProtoICMP, 0, 0, 3, 4, 0
	r.NextHop = netip.Addr{}
	return r
}

type sink struct{ pkts []Packet }

func (s *sink) emit(p Packet) error {
	p.Bytes = bytes.Clone(p.Bytes)
	s.pkts = append(s.pkts, p)
	return nil
}

func (s *sink) bytes() [][]byte {
	var out [][]byte
	for _, p := range s.pkts {
		out = append(out, p.Bytes)
	}
	return out
}

func newEncoder(t testing.TB, cfg Config) *Encoder {
	t.Helper()
	cfg.Clock = clock
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = t0.Add(-time.Hour - 7*time.Millisecond)
	}
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decodeAll(t testing.TB, msgs [][]byte) ([]flow.Record, []Header) {
	t.Helper()
	d := NewDecoder()
	var m Message
	var recs []flow.Record
	var hdrs []Header
	for i, b := range msgs {
		if err := d.Decode(&m, b); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		recs = append(recs, m.Records...)
		hdrs = append(hdrs, m.Header)
	}
	return recs, hdrs
}

func TestRoundTrip(t *testing.T) {
	e := newEncoder(t, Config{EngineType: 1, EngineID: 2, SamplingInterval: 64})
	recs := []flow.Record{record(), icmpRecord()}
	var s sink
	if n, err := e.Encode(recs, s.emit); n != 2 || err != nil {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	got, hdrs := decodeAll(t, s.bytes())
	h := hdrs[0]
	if h.Count != 2 || h.SysUptime != 3600_007 || !h.ExportTime.Equal(t0) || h.FlowSequence != 0 ||
		h.EngineType != 1 || h.EngineID != 2 || h.SamplingMode != SamplingDeterministic || h.SamplingInterval != 64 {
		t.Errorf("header %+v", h)
	}
	for i := range recs {
		want := recs[i]
		want.ObservationDomain = 1<<8 | 2
		want.SamplingInterval = 64
		if got[i] != want {
			t.Errorf("record %d:\ngot  %+v\nwant %+v", i, got[i], want)
		}
	}
}

func TestClamps(t *testing.T) {
	e := newEncoder(t, Config{})
	r := record()
	r.InIf, r.SrcAS, r.DstAS, r.TCPFlags = 70000, 4200000000, 65535, flow.TCPNs|flow.TCPFin
	var s sink
	if _, err := e.Encode([]flow.Record{r}, s.emit); err != nil {
		t.Fatal(err)
	}
	got, _ := decodeAll(t, s.bytes())
	if got[0].InIf != 65535 || got[0].SrcAS != 23456 || got[0].DstAS != 65535 || got[0].TCPFlags != flow.TCPFin {
		t.Errorf("got InIf %d SrcAS %d DstAS %d flags %#x", got[0].InIf, got[0].SrcAS, got[0].DstAS, got[0].TCPFlags)
	}
}

func TestSplitLargeCounters(t *testing.T) {
	tests := []struct {
		pkts, octets uint64
		pieces       int
	}{
		{math.MaxUint32, math.MaxUint32, 1},
		{math.MaxUint32 + 1, 100, 2},
		{5, 3*math.MaxUint32 + 7, 4},
		{1 << 40, 1 << 50, 262145},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.pkts, tt.octets), func(t *testing.T) {
			e := newEncoder(t, Config{})
			r := record()
			r.Packets, r.Octets = tt.pkts, tt.octets
			var s sink
			n, err := e.Encode([]flow.Record{r}, s.emit)
			if err != nil || n != tt.pieces {
				t.Fatalf("Encode = %d, %v; want %d records", n, err, tt.pieces)
			}
			got, _ := decodeAll(t, s.bytes())
			var p, o uint64
			for _, g := range got {
				p += g.Packets
				o += g.Octets
				if g.Src != r.Src || !g.Start.Equal(r.Start) {
					t.Fatal("split record lost its identity")
				}
			}
			if len(got) != tt.pieces || p != tt.pkts || o != tt.octets {
				t.Errorf("%d records, %d packets, %d octets; want %d, %d, %d", len(got), p, o, tt.pieces, tt.pkts, tt.octets)
			}
		})
	}
}

func TestNotIPv4(t *testing.T) {
	e := newEncoder(t, Config{})
	v6 := record()
	v6.Src, v6.Dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	var s sink
	n, err := e.Encode([]flow.Record{record(), v6, record(), v6, v6}, s.emit)
	var se *SkippedError
	if !errors.Is(err, ErrNotIPv4) || !errors.As(err, &se) || se.Skipped != 3 {
		t.Fatalf("error %v, want 3 skipped", err)
	}
	if n != 2 || len(s.pkts) != 1 || s.pkts[0].Records != 2 {
		t.Errorf("sent %d records in %+v", n, s.pkts)
	}
}

func TestPacking(t *testing.T) {
	for _, tt := range []struct{ mtu, per int }{{0, 28}, {1500, 30}, {MinMTU, 1}, {24 + 10*48, 10}} {
		e := newEncoder(t, Config{MTU: tt.mtu})
		if e.RecordsPerPacket() != tt.per {
			t.Errorf("mtu %d: %d records per packet, want %d", tt.mtu, e.RecordsPerPacket(), tt.per)
		}
		recs := make([]flow.Record, 100)
		for i := range recs {
			recs[i] = record()
			recs[i].Packets = uint64(i)
		}
		var s sink
		if n, err := e.Encode(recs, s.emit); n != 100 || err != nil {
			t.Fatalf("Encode = %d, %v", n, err)
		}
		seq := uint32(0)
		for i, p := range s.pkts {
			want := min(tt.per, 100-i*tt.per)
			if p.Records != want || len(p.Bytes) != HeaderLen+RecordLen*want || p.Sequence != seq {
				t.Errorf("mtu %d packet %d: %d records, %d octets, sequence %d", tt.mtu, i, p.Records, len(p.Bytes), p.Sequence)
			}
			seq += uint32(p.Records)
		}
		got, hdrs := decodeAll(t, s.bytes())
		for i := range got {
			if got[i].Packets != uint64(i) {
				t.Fatalf("record %d lost or reordered", i)
			}
		}
		if hdrs[len(hdrs)-1].FlowSequence != uint32(100-s.pkts[len(s.pkts)-1].Records) {
			t.Errorf("last flow_sequence %d", hdrs[len(hdrs)-1].FlowSequence)
		}
	}
}

func TestMalformed(t *testing.T) {
	e := newEncoder(t, Config{})
	var s sink
	if _, err := e.Encode([]flow.Record{record(), record()}, s.emit); err != nil {
		t.Fatal(err)
	}
	good := s.pkts[0].Bytes
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"truncated header", good[:23], wire.ErrTruncated},
		{"version 9", append([]byte{0, 9}, good[2:]...), wire.ErrVersion},
		{"count past end", good[:len(good)-1], wire.ErrTruncated},
		{"count 0xffff", append([]byte{0, 5, 0xff, 0xff}, good[4:]...), wire.ErrTruncated},
	}
	for _, tt := range tests {
		var m Message
		err := NewDecoder().Decode(&m, tt.b)
		var de *wire.DecodeError
		if !errors.Is(err, tt.want) || !errors.As(err, &de) || de.Format != "netflow5" {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	var m Message
	if err := NewDecoder().Decode(&m, append(bytes.Clone(good), 0, 0, 0)); err != nil || len(m.Records) != 2 {
		t.Errorf("trailing octets: %v, %d records", err, len(m.Records))
	}
}

func annotate(b []byte) []wiretest.Span {
	names := []struct {
		n    int
		note string
	}{{4, "srcaddr"}, {4, "dstaddr"}, {4, "nexthop"}, {2, "input ifIndex"}, {2, "output ifIndex"},
		{4, "dPkts"}, {4, "dOctets"}, {4, "First (sysUptime ms)"}, {4, "Last (sysUptime ms)"},
		{2, "srcport"}, {2, "dstport (ICMP: type*256+code)"}, {1, "pad1"}, {1, "tcp_flags"}, {1, "prot"},
		{1, "tos"}, {2, "src_as"}, {2, "dst_as"}, {1, "src_mask"}, {1, "dst_mask"}, {2, "pad2"}}
	sp := []wiretest.Span{
		{Off: 0, Len: 2, Note: "version 5"},
		{Off: 2, Len: 2, Note: fmt.Sprintf("count %d", binary.BigEndian.Uint16(b[2:]))},
		{Off: 4, Len: 4, Note: "sysUptime ms"},
		{Off: 8, Len: 4, Note: "unix_secs"},
		{Off: 12, Len: 4, Note: "unix_nsecs"},
		{Off: 16, Len: 4, Note: "flow_sequence (flows sent before)"},
		{Off: 20, Len: 1, Note: "engine_type"},
		{Off: 21, Len: 1, Note: "engine_id"},
		{Off: 22, Len: 2, Note: "sampling: mode (2 bits), interval (14 bits)"},
	}
	for r, off := 0, HeaderLen; off < len(b); r++ {
		for _, f := range names {
			sp = append(sp, wiretest.Span{Off: off, Len: f.n, Note: fmt.Sprintf("record %d: %s", r, f.note)})
			off += f.n
		}
	}
	return sp
}

func TestGolden(t *testing.T) {
	e := newEncoder(t, Config{EngineType: 1, EngineID: 2, SamplingInterval: 64})
	var s sink
	if _, err := e.Encode([]flow.Record{record(), icmpRecord()}, s.emit); err != nil {
		t.Fatal(err)
	}
	msgs := s.bytes()
	wiretest.Golden(t, "testdata/netflow5.golden", *update,
		"NetFlow v5 packet of TestGolden: a TCP and an ICMP record, 1-in-64 deterministic sampling",
		msgs, [][]wiretest.Span{annotate(msgs[0])})
}

func TestTshark(t *testing.T) {
	e := newEncoder(t, Config{EngineType: 1, EngineID: 2, SamplingInterval: 64})
	var s sink
	recs := make([]flow.Record, 40)
	for i := range recs {
		recs[i] = record()
	}
	recs[1] = icmpRecord()
	if _, err := e.Encode(recs, s.emit); err != nil {
		t.Fatal(err)
	}
	out := wiretest.Tshark(t, 2055, s.bytes())
	for _, want := range []string{"Version: 5", "Count: 28", "Count: 12", "SrcAddr: 198.18.0.1", "NextHop: 198.18.0.254",
		"Packets: 10", "Octets: 4000", "SrcAS: 64512", "FlowSequence: 28", "SrcMask: 24"} {
		if !strings.Contains(out, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	e := newEncoder(f, Config{SamplingInterval: 10})
	var s sink
	if _, err := e.Encode([]flow.Record{record(), icmpRecord(), record()}, s.emit); err != nil {
		f.Fatal(err)
	}
	f.Add(s.pkts[0].Bytes)
	f.Add([]byte{0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := NewDecoder().Decode(&m, b); err == nil && len(m.Records)*RecordLen > len(b) {
			t.Fatalf("%d records from %d octets", len(m.Records), len(b))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e := newEncoder(b, Config{})
	recs := make([]flow.Record, 1000)
	for i := range recs {
		recs[i] = record()
	}
	emit := func(Packet) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(recs, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecode(b *testing.B) {
	e := newEncoder(b, Config{})
	recs := make([]flow.Record, 28)
	for i := range recs {
		recs[i] = record()
	}
	var s sink
	if _, err := e.Encode(recs, s.emit); err != nil {
		b.Fatal(err)
	}
	d := NewDecoder()
	var m Message
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(&m, s.pkts[0].Bytes); err != nil {
			b.Fatal(err)
		}
		n += len(m.Records)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// TestSamplingRandom: random sampling is announced as mode 2 in the
// header, and the interval still scales the records.
func TestSamplingRandom(t *testing.T) {
	e := newEncoder(t, Config{SamplingInterval: 10, SamplingRandom: true})
	var s sink
	if _, err := e.Encode([]flow.Record{record()}, s.emit); err != nil {
		t.Fatal(err)
	}
	got, hdrs := decodeAll(t, s.bytes())
	if h := hdrs[0]; h.SamplingMode != SamplingRandom || h.SamplingInterval != 10 {
		t.Errorf("header sampling mode %d interval %d, want random (2) 10", h.SamplingMode, h.SamplingInterval)
	}
	if got[0].SamplingInterval != 10 {
		t.Errorf("record sampling interval %d", got[0].SamplingInterval)
	}
}
