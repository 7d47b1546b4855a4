// SPDX-License-Identifier: Apache-2.0

package query

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
)

// TestLineFilter: the filter of each line (and of Other) selects exactly
// the line's records.
func TestLineFilter(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	day := all[0].Start.Truncate(24 * time.Hour)
	w := Window{From: day, To: day.Add(24 * time.Hour)}
	base := "proto tcp or proto udp"
	for _, dims := range [][]Dim{
		{{Element: ElemSrcIP, Bits4: 24, Bits6: 64}, {Element: ElemDstPort}},
		{{Element: ElemFlags}, {Element: ElemDir}, {Element: ElemProto}},
		{{Element: ElemDstIP}, {Element: ElemTOS}, {Element: ElemExporter}},
		{{Element: ElemInIf}, {Element: ElemOutIf}, {Element: ElemVLAN}},
		nil,
	} {
		res := query(t, b, &Request{Window: w, Filter: filter.MustParse(base), Series: &SeriesSpec{Dims: dims, Top: 6}})
		s := res.Series
		for _, l := range append(s.Lines, s.Total) {
			f, ok := s.LineFilter(&l)
			if !ok {
				t.Errorf("%v: line %s has no filter", dims, s.LineName(&l))
				continue
			}
			got := query(t, b, &Request{Window: w, Filter: filter.MustParse("(" + base + ") and (" + f + ")"), Summary: true})
			if got.Total.Flows != sumOf(l.Flows) || got.Total.Bytes != sumOf(l.Bytes) || got.Total.Flows == 0 {
				t.Errorf("%v: line %s: filter %q selects %d flows, the line has %d", dims, s.LineName(&l), f, got.Total.Flows, sumOf(l.Flows))
			}
		}
	}
}
