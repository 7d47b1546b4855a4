// SPDX-License-Identifier: Apache-2.0

package query

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestRollupMinutesInterleaved: records of two minutes arriving
// interleaved, one at a time as the collector feeds them, keep one entry
// per minute and value, and the payload is that of the same records fed
// in order.
func TestRollupMinutesInterleaved(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)
	recs := make([]flow.Record, 10000)
	for i := range recs {
		recs[i] = flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.19.0.1"),
			Proto: flow.ProtoTCP, Packets: 1, Octets: 100, Start: t0.Add(time.Duration(i%2) * time.Minute)}
	}
	one := NewRollupBuilder()
	for i := range recs {
		one.Add(recs[i : i+1])
	}
	for d := range one.dims {
		for _, v := range one.dims[d].vals {
			if len(v.minutes) > 2 {
				t.Fatalf("dimension %v: %d minute entries for 2 minutes", rollupDims[d], len(v.minutes))
			}
		}
	}
	sorted := NewRollupBuilder()
	sorted.Add(evenOdd(recs))
	if a, b := one.Payload(), sorted.Payload(); string(a) != string(b) {
		t.Fatalf("payloads differ: %d and %d bytes", len(a), len(b))
	}
}

// evenOdd returns the even records, then the odd ones.
func evenOdd(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for k := range 2 {
		for i := k; i < len(recs); i += 2 {
			out = append(out, recs[i])
		}
	}
	return out
}

// TestRollupCache: the builder's cache of combinations changes nothing:
// records of many combinations (more than the cache holds, so that it
// evicts), of several exporters and of none, make the payload of the
// dimensions counted record by record.
func TestRollupCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)
	recs := make([]flow.Record, 20000)
	for i := range recs {
		recs[i] = flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.19.0.1"),
			Proto: []uint8{flow.ProtoTCP, flow.ProtoUDP, 1}[rng.IntN(3)], SrcPort: uint16(rng.IntN(65536)),
			Packets: uint64(1 + rng.IntN(100)), Octets: uint64(rng.IntN(100000)),
			Start: t0.Add(time.Duration(rng.IntN(5)) * time.Minute), TCPFlags: []uint16{0, 2, 0x12, 0xffff}[rng.IntN(4)],
			TOS: []uint8{0, 1, 255}[rng.IntN(3)], InIf: []uint32{0, 1, 2, 7, 1<<32 - 1}[rng.IntN(5)],
			OutIf: []uint32{0, 3, 1<<32 - 1}[rng.IntN(3)], VLAN: []uint16{0, 10, 4095}[rng.IntN(3)], Direction: flow.Direction(rng.IntN(2)),
			Exporter: netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(4))})}
		if i%1000 == 7 {
			recs[i].Start = time.Time{} // left out
		}
		if rng.IntN(5) == 0 {
			recs[i].Exporter = netip.Addr{} // none: numbered 0 from the start
		}
		if i%500 == 3 {
			recs[i].Proto = 255
			recs[i].Start = time.Date(1969, 12, 31, 23, 58, 0, 0, time.UTC) // negative minutes
		}
	}
	got := NewRollupBuilder()
	for i := range recs {
		got.Add(recs[i : i+1])
	}
	want := NewRollupBuilder()
	for i := range recs {
		r := &recs[i]
		if r.Start.IsZero() {
			continue
		}
		want.records++
		c := rollupCounts{1, r.Packets, r.Octets}
		for d, e := range rollupDims {
			v := Dim{Element: e}.value(r)
			rd := &want.dims[d]
			j, added := rd.index.value(v)
			if added {
				rd.vals = append(rd.vals, rollupValue{v: v})
			}
			rd.vals[j].add(minuteOf(r.Start), c)
		}
	}
	if a, b := got.Payload(), want.Payload(); string(a) != string(b) {
		t.Fatalf("payloads differ: %d and %d bytes", len(a), len(b))
	}
}
