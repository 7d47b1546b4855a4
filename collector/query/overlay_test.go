// SPDX-License-Identifier: Apache-2.0

package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// turned returns r seen from the other side.
func turned(r flow.Record) flow.Record {
	r.Src, r.Dst = r.Dst, r.Src
	r.SrcPort, r.DstPort = r.DstPort, r.SrcPort
	r.InIf, r.OutIf = r.OutIf, r.InIf
	r.Direction = 1 - r.Direction
	return r
}

// TestSeriesOverlays: the reverse line of each key holds exactly the
// records that, turned around, pass the filter with that key; the
// previous period is the series of the shifted window.
func TestSeriesOverlays(t *testing.T) {
	b, all := engineFixture(t, 6000, false)
	w := windowOf(all)
	flt := filter.MustParse("src net 198.18.0.0/16 and proto tcp")
	dims := []Dim{{Element: ElemSrcIP, Bits4: 24, Bits6: 64}, {Element: ElemDstPort}}
	spec := &SeriesSpec{Dims: dims, Top: 5, Unit: UnitPackets, Reverse: true}
	res := query(t, b, &Request{Window: w, Filter: flt, Series: spec})
	s := res.Series
	if len(s.Lines) != 6 || len(s.Reverse) != 6 || !s.Reverse[5].Other {
		t.Fatalf("%d lines, %d reverse lines: want 5 keys and Other each", len(s.Lines), len(s.Reverse))
	}
	for i, l := range s.Lines[:5] {
		want := newLine(s.Points)
		want.Key = l.Key
		for k := range all {
			tr := turned(all[k])
			if !flt.Match(&tr) || !w.Contains(tr.Start, tr.End) || dims[0].value(&tr) != l.Key[0] || dims[1].value(&tr) != l.Key[1] {
				continue
			}
			bk := int(tr.Start.Sub(s.Start) / s.Step)
			want.Flows[bk]++
			want.Packets[bk] += tr.Packets
			want.Bytes[bk] += tr.Octets
		}
		if !reflect.DeepEqual(s.Reverse[i], want) {
			t.Errorf("reverse of line %s differs from the turned records", s.LineName(&l))
		}
		if sumOf(want.Flows) == 0 {
			t.Errorf("reverse of line %s is empty: the test proves nothing", s.LineName(&l))
		}
	}
	// The reverse lines and Other add up to what the reversed filter passes.
	rev := query(t, b, &Request{Window: w, Filter: flt.Reverse(), Summary: true})
	var flows uint64
	for _, l := range s.Reverse {
		flows += sumOf(l.Flows)
	}
	if flows != rev.Total.Flows || rev.Total.Flows == 0 {
		t.Errorf("reverse lines sum to %d flows, the reversed filter passes %d", flows, rev.Total.Flows)
	}

	// Previous period: the total of the window two steps back.
	shift := 2 * s.Step
	spec = &SeriesSpec{Dims: dims, Top: 5, Previous: shift}
	res = query(t, b, &Request{Window: w, Series: spec})
	want := query(t, b, &Request{Window: Window{From: w.From.Add(-shift), To: w.To.Add(-shift)}, Series: &SeriesSpec{Step: s.Step}})
	if res.Series.Previous == nil || !reflect.DeepEqual(*res.Series.Previous, want.Series.Total) || want.Total.Flows == 0 {
		t.Errorf("previous period differs from the shifted window's series")
	}
	if res.Series.Reverse != nil {
		t.Error("reverse lines without asking")
	}
	err := (&Request{Window: w, Series: &SeriesSpec{Step: time.Minute, Previous: 90 * time.Second}}).Validate()
	if !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), "multiple of the step") {
		t.Errorf("previous period not a multiple of the step: %v", err)
	}
}

func sumOf(v []uint64) uint64 {
	var n uint64
	for _, x := range v {
		n += x
	}
	return n
}

func TestReverseRequest(t *testing.T) {
	q := &Request{Filter: filter.MustParse("src port 53 and flowdir egress"), Series: &SeriesSpec{
		Dims: []Dim{{Element: ElemSrcIP, Bits4: 24}, {Element: ElemInIf}, {Element: ElemDir}},
		Keys: [][]Value{{{}, {Num: 3}, {Num: uint32(flow.Ingress)}}},
	}}
	r := q.Reverse()
	if r.Filter.String() != "dst port 53 and flowdir ingress" {
		t.Errorf("reversed filter %q", r.Filter)
	}
	var names []string
	for _, d := range r.Series.Dims {
		names = append(names, d.String())
	}
	if got := strings.Join(names, ","); got != "dstip/24,outif,dir" {
		t.Errorf("reversed dims %s", got)
	}
	if r.Series.Keys[0][2].Num != uint32(flow.Egress) || q.Series.Keys[0][2].Num != uint32(flow.Ingress) || q.Series.Dims[0].Element != ElemSrcIP {
		t.Errorf("reversed keys %+v (the request itself must not change: %+v)", r.Series.Keys, q.Series.Keys)
	}
}
