// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Overlays: lines drawn next to a series, each the answer to a request
// derived from the series' own (the web page's bidirectional mode and
// "previous period").
//
//   - Reverse: for each line, the traffic of the opposite direction. The
//     request is reversed (Request.Reverse: the filter with src and dst
//     swapped, the dimensions swapped) and asked for exactly the keys of
//     the lines (SeriesSpec.Keys), so line i of Series.Reverse is the
//     reverse of line i; what else passes the reversed filter is Other.
//   - Previous: the total of the same window shifted back (Request.Shift),
//     on buckets of the same step.

// Reverse returns the dimension of the opposite direction: source and
// destination address or port, input and output interface swapped; the
// others are their own reverse.
func (d Dim) Reverse() Dim {
	switch d.Element {
	case ElemSrcIP:
		d.Element = ElemDstIP
	case ElemDstIP:
		d.Element = ElemSrcIP
	case ElemSrcPort:
		d.Element = ElemDstPort
	case ElemDstPort:
		d.Element = ElemSrcPort
	case ElemInIf:
		d.Element = ElemOutIf
	case ElemOutIf:
		d.Element = ElemInIf
	}
	return d
}

// reverseValue returns the value a key of d takes in the opposite
// direction: a direction turns (ingress ↔ egress); others are unchanged.
func (d Dim) reverseValue(v Value) Value {
	if d.Element == ElemDir {
		switch flow.Direction(v.Num) {
		case flow.Ingress:
			v.Num = uint32(flow.Egress)
		case flow.Egress:
			v.Num = uint32(flow.Ingress)
		}
	}
	return v
}

// Reverse returns the request for the opposite direction: its filter
// reversed (filter.Filter.Reverse), and for a series its dimensions and
// keys reversed. A record passes it when the record turned around (source
// and destination, ports, interfaces and direction swapped) passes q.
func (q *Request) Reverse() *Request {
	r := *q
	if q.Filter != nil {
		r.Filter = q.Filter.Reverse()
	}
	if q.Series != nil {
		s := *q.Series
		s.Dims = make([]Dim, len(q.Series.Dims))
		for i, d := range q.Series.Dims {
			s.Dims[i] = d.Reverse()
		}
		s.Keys = nil
		for _, k := range q.Series.Keys {
			rk := make([]Value, len(k))
			for i, v := range k {
				rk[i] = q.Series.Dims[i].reverseValue(v)
			}
			s.Keys = append(s.Keys, rk)
		}
		r.Series = &s
	}
	return &r
}

// Shift returns the request over its window moved by d (negative: back).
func (q *Request) Shift(d time.Duration) *Request {
	r := *q
	if !q.Window.From.IsZero() {
		r.Window.From = q.Window.From.Add(d)
	}
	if !q.Window.To.IsZero() {
		r.Window.To = q.Window.To.Add(d)
	}
	return &r
}

// Overlays adds to res, the answer to the series request req, the
// overlays req.Series asks for (Reverse, Previous), each asked of b as a
// request of its own. Backends call it at the end of a series query.
func Overlays(ctx context.Context, b Backend, req *Request, res *Result) error {
	spec := req.Series
	if spec == nil || res.Series == nil || !spec.Reverse && spec.Previous == 0 {
		return nil
	}
	s := res.Series
	// The plain series of the same buckets: no overlays of its own.
	base := *req
	bs := *spec
	bs.Step, bs.Reverse, bs.Previous = s.Step, false, 0
	base.Series = &bs
	if spec.Reverse {
		bs.Keys = [][]Value{}
		for _, l := range s.Lines {
			if !l.Other {
				bs.Keys = append(bs.Keys, l.Key)
			}
		}
		rev, err := b.Query(ctx, base.Reverse())
		if err != nil {
			return fmt.Errorf("reverse direction: %w", err)
		}
		s.Reverse = rev.Series.Lines
		// Name the reverse lines by the keys they answer.
		for i := range s.Reverse {
			if i < len(bs.Keys) {
				s.Reverse[i].Key = slices.Clone(bs.Keys[i])
			}
		}
		bs.Keys = nil
	}
	if spec.Previous > 0 {
		prev := base.Shift(-spec.Previous)
		ps := *prev.Series
		ps.Dims, ps.Keys, ps.Top = nil, nil, 1
		prev.Series = &ps
		pres, err := b.Query(ctx, prev)
		if err != nil {
			return fmt.Errorf("previous period: %w", err)
		}
		p := pres.Series.Total
		s.Previous = &p
	}
	return nil
}

// keyed builds the series of spec.Keys: their lines in order, and Other.
func (a *seriesAcc) keyed(start time.Time) *Series {
	spec := a.spec
	s := &Series{Start: start, Step: time.Duration(a.step), Points: a.points, Dims: spec.Dims, Unit: spec.Unit,
		Rank: spec.Rank, Total: newLine(a.points), Distinct: len(a.lines)}
	at := make(map[seriesKey]int, len(spec.Keys))
	for i, k := range spec.Keys {
		var sk seriesKey
		copy(sk[:], k)
		at[sk] = i
		line := newLine(a.points)
		line.Key = slices.Clone(k)
		s.Lines = append(s.Lines, line)
	}
	other := newLine(a.points)
	folded := false
	for i := range a.lines {
		l := &a.lines[i]
		a.dense(l, &s.Total)
		if k, ok := at[l.key]; ok {
			a.dense(l, &s.Lines[k])
			continue
		}
		a.dense(l, &other)
		folded = true
	}
	if folded {
		other.Other = true
		s.Lines = append(s.Lines, other)
	}
	return s
}
