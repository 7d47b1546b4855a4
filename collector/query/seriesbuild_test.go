// SPDX-License-Identifier: Apache-2.0

package query

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestSeriesBuilderEqualsScan: a series built from counts per bucket and
// key, the top keys added one by one and the others as a rest (as a
// database backend adds them), equals the scanned series, for every rank,
// with keys, and without dimensions.
func TestSeriesBuilderEqualsScan(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	w := windowOf(all)
	for _, spec := range []SeriesSpec{
		{Dims: []Dim{{Element: ElemProto}, {Element: ElemDstIP, Bits4: 24, Bits6: 64}}, Top: 4, Rank: RankAvg, Unit: UnitL2Bits},
		{Dims: []Dim{{Element: ElemSrcIP}}, Top: 3, Rank: RankPeak, Unit: UnitPackets, Step: time.Second},
		{Dims: []Dim{{Element: ElemDstPort}}, Top: 5, Rank: RankLast, Unit: UnitFlows},
		{Dims: []Dim{{Element: ElemProto}}, Keys: [][]Value{{{Num: 17}}, {{Num: 250}}}},
		{},
	} {
		want := query(t, b, &Request{Window: w, Series: &spec}).Series
		// The keys of the lines, and every record's bucket and key.
		top := map[seriesKey]bool{}
		for _, l := range want.Lines {
			if !l.Other {
				var k seriesKey
				copy(k[:], l.Key)
				top[k] = true
			}
		}
		_, start, n := spec.Layout(w)
		step, _, _ := spec.Layout(w)
		sb := NewSeriesBuilder(&spec, w)
		for i := range all {
			r := &all[i]
			if !w.Contains(r.Start, r.End) {
				continue
			}
			bucket := min(int(r.Start.Sub(start)/step), n-1)
			var k seriesKey
			for d, dim := range spec.Dims {
				k[d] = dim.value(r)
			}
			if top[k] || len(spec.Dims) == 0 {
				sb.Add(bucket, k[:len(spec.Dims)], 1, r.Packets, r.Octets)
			} else {
				sb.AddRest(bucket, 1, r.Packets, r.Octets)
			}
		}
		if got := sb.Series(want.Distinct); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: built series differs from the scan:\n%+v\nwant\n%+v", spec, got, want)
		}
	}
}

// TestAggregatorAddCounts: pairing the groups of a five-tuple (their
// counts added in the order the groups were first seen) equals pairing
// the records.
func TestAggregatorAddCounts(t *testing.T) {
	_, all := engineFixture(t, 3000, false)
	for _, bidir := range []Bidir{Unidirectional, Paired, PairedGuess} {
		byRecord := NewAggregator(FiveTuple(), bidir)
		type group struct {
			r flow.Record
			c Counter
		}
		var order []Key
		groups := map[Key]*group{}
		spec := FiveTuple()
		for i := range all {
			r := &all[i]
			byRecord.Add(r)
			k := spec.key(r)
			g := groups[k]
			if g == nil {
				g = &group{r: *r} // the first record's fields
				groups[k] = g
				order = append(order, k)
			}
			g.r.TCPFlags |= r.TCPFlags
			g.c.Add(r)
		}
		byGroup := NewAggregator(FiveTuple(), bidir)
		for _, k := range order {
			byGroup.AddCounts(&groups[k].r, groups[k].c)
		}
		if got, want := byGroup.Records(), byRecord.Records(); !reflect.DeepEqual(got, want) || len(got) == 0 {
			t.Errorf("bidir %d: %d pairs from groups, %d from records, or they differ", bidir, len(got), len(want))
		}
	}
}

// TestAggregatorTable: the aggregator's own table groups as a map does,
// in the order of first appearance, past several growths and chunks,
// for IPv4, IPv6 and zoned addresses.
func TestAggregatorTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	addrs := []netip.Addr{netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::1%eth1"), netip.MustParseAddr("fe80::1")}
	for i := range 300 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}),
			netip.AddrFrom16([16]byte{0xfd, 14: byte(i >> 8), 15: byte(i)}))
	}
	a := NewAggregator(FiveTuple(), Unidirectional)
	spec := FiveTuple()
	flows := map[Key]uint64{}
	var order []Key
	for range 3 * aggChunk {
		r := flow.Record{Src: addrs[rng.IntN(len(addrs))], Dst: addrs[rng.IntN(len(addrs))],
			SrcPort: uint16(rng.IntN(4)), DstPort: 53, Proto: flow.ProtoUDP, Packets: 1, Octets: 60}
		a.Add(&r)
		k := spec.key(&r)
		if flows[k] == 0 {
			order = append(order, k)
		}
		flows[k]++
	}
	rows := a.Records()
	if len(rows) != len(order) || a.Len() != len(order) || len(order) <= aggChunk {
		t.Fatalf("%d rows, Len %d, want %d (more than a chunk)", len(rows), a.Len(), len(order))
	}
	for i, w := range rows {
		k := Key{Src: w.Src, Dst: w.Dst, SrcPort: w.SrcPort, DstPort: w.DstPort, Proto: w.Proto}
		if k != order[i] || w.Flows != flows[k] {
			t.Fatalf("row %d: %v with %d flows, want %v with %d", i, k, w.Flows, order[i], flows[order[i]])
		}
	}
}
