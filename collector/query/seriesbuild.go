// SPDX-License-Identifier: Apache-2.0

package query

import "time"

// Layout returns the series' buckets over window w: the step (AutoStep
// when Step is 0), the first bucket's start (w.From rounded down to the
// step) and the number of buckets. A record counts in the bucket of its
// start (its end when it has none), clamped to the first and last.
func (s *SeriesSpec) Layout(w Window) (step time.Duration, start time.Time, n int) {
	return s.layout(w)
}

// SeriesBuilder assembles a series from counts per bucket and key (a
// database's GROUP BY) with the file engine's ranking, top N, Other and
// keyed lines, so that backends cannot differ in how lines are chosen.
type SeriesBuilder struct {
	acc   *seriesAcc
	start time.Time
	rest  Line
}

// NewSeriesBuilder returns an empty builder of spec over w.
func NewSeriesBuilder(spec *SeriesSpec, w Window) *SeriesBuilder {
	_, start, _ := spec.layout(w)
	acc := newSeriesAcc(spec, w)
	return &SeriesBuilder{acc: acc, start: start, rest: newLine(acc.points)}
}

// Add adds counts of the line of key (one value per dimension, masked
// as the dimensions say) in bucket i.
func (b *SeriesBuilder) Add(i int, key []Value, flows, packets, bytes uint64) {
	var k seriesKey
	copy(k[:], key)
	b.acc.addCounts(b.acc.start+int64(i)*b.acc.step, &k, flows, packets, bytes)
}

// AddRest adds counts of keys not known one by one (they go to Other)
// in bucket i.
func (b *SeriesBuilder) AddRest(i int, flows, packets, bytes uint64) {
	i = min(max(i, 0), b.acc.points-1)
	b.rest.Flows[i] += flows
	b.rest.Packets[i] += packets
	b.rest.Bytes[i] += bytes
}

// Series returns the series: the top lines of those added (or the keyed
// lines when the spec names Keys), then Other with the rest. distinct is
// the number of distinct keys the records had.
func (b *SeriesBuilder) Series(distinct int) *Series {
	a := b.acc
	var s *Series
	if a.spec.Keys == nil {
		s = a.result(b.start, a.rank(), &b.rest)
	} else {
		s = a.keyed(b.start)
		if !b.rest.zero() {
			if n := len(s.Lines); n == 0 || !s.Lines[n-1].Other {
				other := newLine(a.points)
				other.Other = true
				s.Lines = append(s.Lines, other)
			}
			addLine(&s.Lines[len(s.Lines)-1], &b.rest)
			addLine(&s.Total, &b.rest)
		}
	}
	s.Distinct = distinct
	return s
}
