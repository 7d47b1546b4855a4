// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

func fullRecord(v6 bool) flow.Record {
	r := flow.Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.19.255.254"),
		SrcPort: 54321, DstPort: 443, Proto: flow.ProtoTCP,
		ICMPType: 3, ICMPCode: 4, VLAN: 4094, InnerVLAN: 17,
		InIf: 7, OutIf: math.MaxUint32, Direction: flow.Egress,
		Packets: math.MaxUint64, Octets: 1<<63 + 5,
		Start:    time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC),
		End:      time.Date(2025, 1, 2, 3, 9, 5, 987654321, time.FixedZone("x", 3600)),
		TCPFlags: flow.TCPNs | flow.TCPSyn | flow.TCPAck, TOS: 0xb8, MinTTL: 1, MaxTTL: 255,
		EndReason: flow.EndLackOfResources,
		NextHop:   netip.MustParseAddr("198.18.0.254"),
		SrcAS:     64512, DstAS: math.MaxUint32, SrcMask: 24, DstMask: 32,
		SamplingInterval: 1000, Exporter: netip.MustParseAddr("198.18.255.1"), ObservationDomain: math.MaxUint32,
	}
	if v6 {
		r.Src = netip.MustParseAddr("fd00::1")
		r.Dst = netip.MustParseAddr("fd00:ffff::ffff:ffff")
		r.NextHop = netip.MustParseAddr("fe80::1%eth0")
		r.Exporter = netip.MustParseAddr("fd00::ff")
		r.Proto = flow.ProtoICMPv6
		r.SrcMask, r.DstMask = 64, 128
	}
	return r
}

func TestRoundTripEveryField(t *testing.T) {
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	recs := []flow.Record{
		fullRecord(false),
		fullRecord(true),
		{}, // all zero: no addresses, no times
		{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Start: base},              // start only
		{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), End: base.Add(time.Nanosecond)}, // end only, ns
		{Src: netip.MustParseAddr("::ffff:198.18.0.1"), Dst: netip.MustParseAddr("::"), Start: base, End: base},    // 4-in-6, zero duration
		{Start: base.Add(time.Hour), End: base}, // end before start
		{Start: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), End: time.Date(2262, 4, 12, 0, 0, 0, 999999999, time.UTC)}, // outside int64 ns
		{Start: time.Unix(0, 0), End: time.Unix(-1, 999_999_999)},                                                       // around the epoch
		{Src: netip.MustParseAddr("fe80::1%" + string(bytes.Repeat([]byte("z"), 255))), Direction: 200, EndReason: 99},
	}
	for _, block := range []int{1, 3, 4096} {
		b := writeBytes(t, recs, WriterOptions{BlockRecords: block, Ident: "test"})
		got, r := readBytes(t, b, ReaderOptions{})
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		checkRecords(t, got, recs)
		if e := r.End(); e.Kind != EndClean {
			t.Fatalf("block %d: end %v", block, e)
		}
		if h := r.Header(); h.Ident != "test" || h.Version != Version {
			t.Fatalf("header %+v", h)
		}
	}
}

func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	addr := func() netip.Addr {
		switch rng.IntN(4) {
		case 0:
			return netip.Addr{}
		case 1:
			return netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(4)), byte(rng.IntN(256))})
		default:
			var b [16]byte
			b[0], b[1], b[15] = 0xfd, byte(rng.IntN(3)), byte(rng.IntN(256))
			return netip.AddrFrom16(b)
		}
	}
	tm := func() time.Time {
		if rng.IntN(8) == 0 {
			return time.Time{}
		}
		return time.Unix(1.7e9+rng.Int64N(1e6), rng.Int64N(1e9))
	}
	var recs []flow.Record
	for range 5000 {
		recs = append(recs, flow.Record{
			Src: addr(), Dst: addr(), SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32() % 3),
			Proto: uint8(rng.Uint32()), ICMPType: uint8(rng.IntN(2)), ICMPCode: uint8(rng.IntN(2)),
			VLAN: uint16(rng.IntN(2) * rng.IntN(4096)), InnerVLAN: uint16(rng.IntN(2)),
			InIf: rng.Uint32() >> rng.IntN(33), OutIf: rng.Uint32() >> rng.IntN(33),
			Direction: flow.Direction(rng.IntN(2)), Packets: rng.Uint64() >> rng.IntN(64), Octets: rng.Uint64() >> rng.IntN(64),
			Start: tm(), End: tm(), TCPFlags: uint16(rng.IntN(512)), TOS: uint8(rng.IntN(2) * 0x20),
			MinTTL: uint8(rng.IntN(256)), MaxTTL: uint8(rng.IntN(256)), EndReason: flow.EndReason(rng.IntN(6)),
			NextHop: addr(), SrcAS: rng.Uint32() >> rng.IntN(33), DstAS: rng.Uint32() >> rng.IntN(33),
			SrcMask: uint8(rng.IntN(129)), DstMask: uint8(rng.IntN(2)), SamplingInterval: uint32(rng.IntN(3)),
			Exporter: addr(), ObservationDomain: uint32(rng.IntN(3)),
		})
	}
	b := writeBytes(t, recs, WriterOptions{BlockRecords: 777})
	got, r := readBytes(t, b, ReaderOptions{})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, recs)
}

func TestAppendRejectsUnstorable(t *testing.T) {
	w, err := NewWriter(&bytes.Buffer{}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := netip.MustParseAddr("fe80::1").WithZone(string(bytes.Repeat([]byte("z"), 256)))
	for _, r := range []flow.Record{
		{Src: long},
		{Start: time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := w.Append(&r); !errors.Is(err, ErrRejected) || !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Append(%v) = %v, want ErrRejected and ErrInvalidRecord", r, err)
		}
	}
}

func TestSummary(t *testing.T) {
	recs := newSynth(7).Records(10000)
	other := netip.MustParseAddr("fd00::ff")
	for i := 0; i < len(recs); i += 10 {
		recs[i].Exporter, recs[i].ObservationDomain = other, 5
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{BlockRecords: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want Summary
	var first, last time.Time
	exp := map[netip.Addr]*ExporterStats{}
	for i := range recs {
		r := &recs[i]
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
		c := &want.Other
		switch r.Proto {
		case flow.ProtoTCP:
			c = &want.TCP
		case flow.ProtoUDP:
			c = &want.UDP
		case flow.ProtoICMP, flow.ProtoICMPv6:
			c = &want.ICMP
		}
		for _, c := range []*Counters{c, &want.Total} {
			c.Flows++
			c.Packets += r.Packets
			c.Octets += r.Octets
		}
		if first.IsZero() || r.Start.Before(first) {
			first = r.Start
		}
		if r.End.After(last) {
			last = r.End
		}
		e := exp[r.Exporter]
		if e == nil {
			e = &ExporterStats{Addr: r.Exporter, ObservationDomain: r.ObservationDomain}
			exp[r.Exporter] = e
		}
		e.Flows++
		e.Packets += r.Packets
		e.Octets += r.Octets
	}
	w.SequenceFailures(other, 5, 3)
	w.SequenceFailures(other, 5, 4)
	exp[other].SequenceFailures = 7
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want.Blocks = 10
	want.FirstSeen, want.LastSeen = first.UTC(), last.UTC()
	want.SequenceFailures = 7
	want.Exporters = []ExporterStats{*exp[synthExporter], *exp[other]}

	r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := r.Summary()
	if !ok {
		t.Fatal("no summary in a closed file")
	}
	if !summaryEqual(got, want) {
		t.Fatalf("summary\n got %+v\nwant %+v", got, want)
	}
	if ws := w.Summary(); !summaryEqual(ws, want) {
		t.Fatalf("writer summary\n got %+v\nwant %+v", ws, want)
	}
}

func summaryEqual(a, b Summary) bool {
	if !a.FirstSeen.Equal(b.FirstSeen) || !a.LastSeen.Equal(b.LastSeen) || len(a.Exporters) != len(b.Exporters) {
		return false
	}
	for i := range a.Exporters {
		if a.Exporters[i] != b.Exporters[i] {
			return false
		}
	}
	a.FirstSeen, a.LastSeen, a.Exporters = b.FirstSeen, b.LastSeen, b.Exporters
	return a.Blocks == b.Blocks && a.Total == b.Total && a.TCP == b.TCP && a.UDP == b.UDP &&
		a.ICMP == b.ICMP && a.Other == b.Other && a.SequenceFailures == b.SequenceFailures
}

// TestSizePerFlow measures the bytes per flow on disk for the synthetic mix.
func TestSizePerFlow(t *testing.T) {
	const n = 200_000
	for _, tc := range []struct {
		name  string
		subMs bool
		level Level
		limit float64
	}{
		{"ms/default", false, LevelDefault, 20},
		{"ms/fastest", false, LevelFastest, 0},
		{"ms/balanced", false, LevelBalanced, 0},
		{"ms/best", false, LevelBest, 0},
		{"ns/default", true, LevelDefault, 0},
	} {
		s := newSynthNs(42, tc.subMs)
		recs := s.Records(n)
		b := writeBytes(t, recs, WriterOptions{Level: tc.level})
		per := float64(len(b)) / n
		t.Logf("%-12s %d flows: %d bytes, %.2f bytes/flow", tc.name, n, len(b), per)
		if tc.limit > 0 && per > tc.limit {
			t.Errorf("%s: %.2f bytes/flow, want <= %v", tc.name, per, tc.limit)
		}
	}
}

// TestValidTime: validTime's shortcut agrees with splitting a time and
// joining it back, near the ends of the range and across it.
func TestValidTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var times []time.Time
	for _, s := range []int64{0, -1, 1, 8.99e15, -8.99e15, 9e15, -9e15, 9.2e15, -9.2e15, 9223372036854775, -9223372036854775, 9223372036854776, -9223372036854776, 1 << 62, -(1 << 62)} {
		for _, ns := range []int64{0, 1, 999_999, 1_000_000, 999_999_999} {
			times = append(times, time.Unix(s, ns))
		}
	}
	for range 10000 {
		times = append(times, time.Unix(rng.Int64N(2e16)-1e16, rng.Int64N(1e9)))
	}
	for _, tm := range times {
		ms, sub := splitTime(tm)
		if want := joinTime(ms, sub).Equal(tm); validTime(tm) != want {
			t.Fatalf("validTime(%d s %d ns) = %v, want %v", tm.Unix(), tm.Nanosecond(), !want, want)
		}
	}
}
