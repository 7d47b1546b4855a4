// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// series answers a series request: from the files' rollups when the
// request allows it and the rollups prove the answer exact, else by
// scanning every file.
func (e *engine) series(ctx context.Context, res *Result) error {
	if el, ok := rollupPlan(e.req); ok && !e.noRollups {
		done, err := e.seriesFromRollups(ctx, res, el)
		if err != nil || done {
			return err
		}
		*res = Result{Kind: res.Kind}
	}
	acc, st, err := e.scanSeries(ctx, e.files, &res.Total)
	res.Scan = st
	if err != nil {
		return err
	}
	_, start, _ := e.req.Series.layout(e.req.Window)
	if e.req.Series.Keys != nil {
		res.Series = acc.keyed(start)
		return nil
	}
	res.Series = acc.result(start, acc.rank(), nil)
	return nil
}

// scanSeries scans files into a series accumulator, one per worker,
// merged.
func (e *engine) scanSeries(ctx context.Context, files []File, total *Counter) (*seriesAcc, ScanStats, error) {
	spec, w := e.req.Series, e.req.Window
	per := make([]*seriesAcc, e.sc.NumWorkers())
	totals := make([]Counter, len(per))
	for i := range per {
		per[i] = newSeriesAcc(spec, w)
	}
	e.sc.Fields = per[0].fields()
	st, err := e.sc.ScanEach(ctx, files, func(w int, r *flow.Record) {
		per[w].add(r)
		totals[w].Add(r)
	})
	for i, o := range per {
		if i > 0 {
			per[0].merge(o)
		}
		total.Merge(totals[i])
	}
	return per[0], st, err
}

// fileRollup is the rollup table of a file wholly inside the window.
type fileRollup struct {
	table rollupTable
}

// seriesFromRollups answers from the rollups of the files wholly inside
// the window, scanning the others (the window's edges, files without
// rollups). done is false when the rollups cannot prove the answer exact;
// the caller then scans.
func (e *engine) seriesFromRollups(ctx context.Context, res *Result, el Element) (done bool, err error) {
	req := e.req
	spec, w := req.Series, req.Window
	var rolled []fileRollup
	var scan []File
	for _, f := range e.files {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if fr, ok := readFileRollup(f.Path, el, w); ok {
			rolled = append(rolled, fr)
		} else {
			scan = append(scan, f)
		}
	}
	if len(rolled) == 0 {
		return false, nil
	}
	acc, st, err := e.scanSeries(ctx, scan, &res.Total)
	if err != nil {
		return false, err
	}
	// Add the kept values one by one and the rests together; note for each
	// key the bounds of the files that kept it.
	rest := newLine(acc.points)
	var boundAll uint64
	boundKept := map[seriesKey]uint64{}
	unkept := false
	var k seriesKey
	for _, fr := range rolled {
		t := &fr.table
		b := t.bound.of(spec.Unit)
		boundAll += b
		unkept = unkept || t.unkept > 0
		count := func(m *minuteCounts) {
			res.Total.Flows += m.flows
			res.Total.Packets += m.packets
			res.Total.Bytes += m.bytes
			st.Passed += m.flows
		}
		for i := range t.rest {
			m := &t.rest[i]
			b := acc.bucket(m.minute * int64(RollupStep))
			rest.Flows[b] += m.flows
			rest.Packets[b] += m.packets
			rest.Bytes[b] += m.bytes
			count(m)
		}
		for _, rv := range t.kept {
			if len(spec.Dims) == 1 {
				k[0] = rv.v
			}
			boundKept[k] += b
			for i := range rv.minutes {
				m := &rv.minutes[i]
				acc.addCounts(m.minute*int64(RollupStep), &k, m.flows, m.packets, m.bytes)
				count(m)
			}
		}
		st.Files++
		st.Rollups++
	}
	ranked := acc.rank()
	if !rollupsExact(acc, ranked, spec.top(), boundAll, boundKept, unkept) {
		return false, nil
	}
	_, start, _ := spec.layout(w)
	res.Scan = st
	res.Series = acc.result(start, ranked, &rest)
	if unkept {
		res.Series.Distinct = -1 // values folded into rests are not counted one by one
	}
	// Rollups count by minute: the exact first and last times are not known.
	res.Total.First, res.Total.Last = 0, 0
	return true, nil
}

// rollupsExact reports whether the top lines ranked from rollups are the
// true top: a key's unknown part is at most the bounds of the files that
// did not keep it (boundAll − boundKept), so the top keys must have none,
// and no other key, nor a value seen in no file's kept list, may reach
// the last top key's rank.
func rollupsExact(acc *seriesAcc, ranked []rankedLine, top int, boundAll uint64, boundKept map[seriesKey]uint64, unkept bool) bool {
	unknown := func(r rankedLine) uint64 { return boundAll - boundKept[acc.lines[r.i].key] }
	n := min(top, len(ranked))
	for _, r := range ranked[:n] {
		if unknown(r) > 0 {
			return false
		}
	}
	if n < top {
		// Fewer keys than the top: every value must be known.
		return !unkept
	}
	last := ranked[n-1].rank
	for _, r := range ranked[n:] {
		if u := unknown(r); u > 0 && r.rank+u >= last {
			return false
		}
	}
	return !unkept || boundAll < last
}

// readFileRollup returns the rollup table of element el of a file whose
// records all lie in the window; ok is false for a file that must be
// scanned.
func readFileRollup(path string, el Element, w Window) (fileRollup, bool) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return fileRollup{}, false
	}
	defer r.Close()
	s, ok := r.Summary()
	// Every record starts at or after the file's first start and ends at
	// or before its last end: inside the window when these are.
	if !ok || s.FirstSeen.IsZero() || s.FirstSeen.Before(w.From) || s.LastSeen.After(w.To) {
		return fileRollup{}, false
	}
	p, ok, err := r.Aux(RollupName)
	if !ok || err != nil {
		return fileRollup{}, false
	}
	t, ok, err := readRollupTable(p, el)
	if !ok || err != nil {
		return fileRollup{}, false
	}
	return fileRollup{table: t}, true
}
