// SPDX-License-Identifier: Apache-2.0

package query

import (
	"testing"
	"time"
)

// TestSankeyJSON: every dimension's links carry the whole traffic, and
// each link is the sum of the lines through it.
func TestSankeyJSON(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	day := all[0].Start.Truncate(24 * time.Hour)
	w := Window{From: day, To: day.Add(24 * time.Hour)}
	dims := []Dim{{Element: ElemProto}, {Element: ElemDstPort}, {Element: ElemSrcIP, Bits4: 24, Bits6: 64}}
	res := query(t, b, &Request{Window: w, Series: &SeriesSpec{Step: 24 * time.Hour, Dims: dims, Top: 8, Unit: UnitFlows}})
	if res.Series.Points != 1 {
		t.Fatalf("%d points", res.Series.Points)
	}
	js := NewSankeyJSON(res)
	per := map[int]uint64{}
	dimOf := map[string]int{}
	for _, n := range js.Nodes {
		dimOf[n.ID] = n.Dim
	}
	for _, l := range js.Links {
		per[dimOf[l.Source]] += l.Count
		if dimOf[l.Target] != dimOf[l.Source]+1 {
			t.Errorf("link %s → %s skips a dimension", l.Source, l.Target)
		}
	}
	if per[0] != res.Total.Flows || per[1] != res.Total.Flows || res.Total.Flows != uint64(len(all)) {
		t.Errorf("links carry %d and %d flows, total %d", per[0], per[1], res.Total.Flows)
	}
	var seen bool
	for _, n := range js.Nodes {
		seen = seen || n.Value == "Other"
	}
	if !seen {
		t.Error("no Other node though keys were folded")
	}
}
