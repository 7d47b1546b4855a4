// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// FileBackend answers requests from flow files.
type FileBackend struct {
	// Paths are flow files and directory trees; Prefix and Slack as in
	// Select.
	Paths  []string
	Prefix string
	Slack  time.Duration
	// Workers decode blocks in parallel (default GOMAXPROCS).
	Workers int
}

// Query runs req over the files.
func (b *FileBackend) Query(ctx context.Context, req *Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	files, err := Files(Select{Paths: b.Paths, Prefix: b.Prefix, Window: req.Window, Slack: b.Slack})
	if err != nil {
		return nil, err
	}
	e := &engine{req: req, sc: &Scanner{Filter: req.Filter, Window: req.Window, Limit: req.Limit, Workers: b.Workers, Idents: req.usesIdent()}, files: files}
	res, err := e.run(ctx)
	if res != nil && res.Kind == KindStats && res.Reports == nil && req.countsInterfaces() {
		res.Reports = Reports(files) // names for the interface statistics
	}
	if res != nil && res.Series != nil && req.Series.hasInterface() {
		if names := NewIfNames(Reports(files)); names.Len() > 0 {
			res.Series.IfNames = names // names for the lines
		}
	}
	if err == nil {
		err = Overlays(ctx, b, req, res)
	}
	if res != nil {
		res.Elapsed = time.Since(start)
	}
	return res, err
}

// engine runs one request over selected files.
type engine struct {
	req   *Request
	sc    *Scanner
	files []File
	// noRollups makes series scan every file (tests compare the two).
	noRollups bool
}

func (e *engine) run(ctx context.Context) (*Result, error) {
	res := &Result{Kind: e.req.Kind()}
	var err error
	switch res.Kind {
	case KindSummary:
		err = e.summary(ctx, res)
	case KindStats:
		err = e.stats(ctx, res)
	case KindSeries:
		err = e.series(ctx, res)
	case KindAggregates:
		err = e.aggregates(ctx, res)
	default:
		err = e.records(ctx, res)
	}
	return res, err
}

// wholeFiles reports whether the request reads every record of every
// file: stored summaries then hold its answer.
func (e *engine) wholeFiles() bool {
	return (e.req.Filter == nil || e.req.Filter.MatchesAll()) && e.req.Window.IsZero() && e.req.Limit == 0
}

// storedSummaries adds the stored summaries of the files closed cleanly
// to z and returns the others, which must be scanned.
func storedSummaries(files []File, metas []fileMeta, z *flowfile.Summarizer, st *ScanStats) (scan []File) {
	for i, f := range files {
		if !metas[i].hasSummary {
			scan = append(scan, f)
			continue
		}
		s := metas[i].summary
		z.AddSummary(s)
		st.Files++
		st.Read += s.Total.Flows
		st.Passed += s.Total.Flows
		st.Summaries = append(st.Summaries, s)
	}
	return scan
}

func (e *engine) summary(ctx context.Context, res *Result) error {
	// The files' idents, what their exporters said and their stored
	// summaries, in one opening of each file.
	metas := readMetas(e.files)
	res.Reports = mergeReports(metas, &res.Idents)
	slices.Sort(res.Idents)
	if !e.wholeFiles() {
		return e.scanSummary(ctx, res, e.files, flowfile.NewSummarizer(), ScanStats{})
	}
	// Whole files: what the files closed cleanly stored, and a scan of
	// the others (the file being written, a crashed one).
	z := flowfile.NewSummarizer()
	var st ScanStats
	scan := storedSummaries(e.files, metas, z, &st)
	return e.scanSummary(ctx, res, scan, z, st)
}

// scanSummary adds a summary of the records of files to z (and st) and
// sets res.
func (e *engine) scanSummary(ctx context.Context, res *Result, files []File, z *flowfile.Summarizer, st ScanStats) error {
	var scanned ScanStats
	var per []*flowfile.Summarizer
	if len(files) > 0 {
		e.sc.Fields = SummaryFields
		per = make([]*flowfile.Summarizer, e.sc.NumWorkers())
		for i := range per {
			per[i] = flowfile.NewSummarizer()
		}
		var err error
		scanned, err = e.sc.ScanEach(ctx, files, func(w int, r *flow.Record) { per[w].Add(r) })
		if err != nil {
			return err
		}
	}
	stored := z.Summary().Blocks
	for _, o := range per {
		z.Merge(o)
	}
	s := z.Summary()
	s.Blocks = stored + uint64(scanned.Blocks-scanned.CorruptBlocks)
	if e.wholeFiles() {
		// Sequence failures are counted by the collector, not in records:
		// the scanned files closed cleanly carry theirs.
		for _, fs := range scanned.Summaries {
			s.SequenceFailures += fs.SequenceFailures
			addSequenceFailures(&s, fs.Exporters)
		}
	}
	st.Files += scanned.Files
	st.Blocks += scanned.Blocks
	st.CorruptBlocks += scanned.CorruptBlocks
	st.Truncated += scanned.Truncated
	st.Read += scanned.Read
	st.Passed += scanned.Passed
	st.Summaries = append(st.Summaries, scanned.Summaries...)
	st.SkippedRecords += scanned.SkippedRecords
	st.SkippedElements += scanned.SkippedElements
	st.Damaged = append(st.Damaged, scanned.Damaged...)
	res.Summary, res.Scan, res.Total = &s, st, totalOf(&s)
	return nil
}

func addSequenceFailures(s *flowfile.Summary, from []flowfile.ExporterStats) {
	for _, f := range from {
		for i := range s.Exporters {
			x := &s.Exporters[i]
			if x.Addr == f.Addr && x.ObservationDomain == f.ObservationDomain {
				x.SequenceFailures += f.SequenceFailures
			}
		}
	}
}

// totalOf is a summary's total as a Counter.
func totalOf(s *flowfile.Summary) Counter {
	c := Counter{Flows: s.Total.Flows, Packets: s.Total.Packets, Bytes: s.Total.Octets}
	if !s.FirstSeen.IsZero() {
		c.First = s.FirstSeen.UnixNano()
	}
	if !s.LastSeen.IsZero() {
		c.Last = s.LastSeen.UnixNano()
	}
	return c
}

// stats counts the statistics. Without the "record" statistic they do not
// depend on the order: each worker counts on its own, reading only the
// fields needed, and the counts are merged.
func (e *engine) stats(ctx context.Context, res *Result) error {
	req := e.req
	agg := req.aggregator()
	var stats []*Stat
	for _, s := range req.Stats {
		if s.Element != ElemRecord {
			stats = append(stats, NewStat(s))
		}
	}
	var st ScanStats
	var err error
	if agg == nil {
		st, err = e.statsEach(ctx, stats, &res.Total)
	} else {
		st, err = e.sc.Scan(ctx, e.files, func(r *flow.Record) error {
			res.Total.Add(r)
			for _, s := range stats {
				s.Add(r)
			}
			agg.Add(r)
			return nil
		})
	}
	res.Scan = st
	if err != nil {
		return err
	}
	si := 0
	for _, spec := range req.Stats {
		var s *Stat
		if spec.Element != ElemRecord {
			s = stats[si]
			si++
		}
		for _, o := range spec.Orders {
			t := StatTable{Element: spec.Element, Order: o}
			if s == nil {
				t.Distinct = agg.Len()
				t.Rows = agg.Top(o, req.Top)
			} else {
				t.Distinct = s.Len()
				t.Entries = s.Top(o, req.Top)
			}
			res.Stats = append(res.Stats, t)
		}
	}
	return nil
}

func (e *engine) statsEach(ctx context.Context, stats []*Stat, total *Counter) (ScanStats, error) {
	type counts struct {
		total Counter
		stats []*Stat
		spans []recSpan
	}
	e.sc.Fields = CounterFields
	for _, s := range stats {
		e.sc.Fields |= s.Spec.Element.Fields()
	}
	indexes := false
	for _, s := range stats {
		indexes = indexes || s.Spec.Element.IsAddr() && s.Spec.Element != ElemExporter
	}
	columns := true
	for _, s := range stats {
		columns = columns && s.Spec.Element.counted()
	}
	// A statistic that counts each record once under one value sums to
	// the total: with one, records are not counted into the total too.
	once := -1
	for i, s := range stats {
		switch s.Spec.Element {
		case ElemSrcIP, ElemDstIP, ElemSrcPort, ElemDstPort, ElemProto:
			if once < 0 {
				once = i
			}
		}
	}
	per := make([]*counts, e.sc.NumWorkers())
	st, err := e.sc.scanBlocks(ctx, e.files, indexes, columns, func(w int, b *flowfile.Block, sel []int32) {
		c := per[w]
		if c == nil {
			c = &counts{}
			for _, s := range stats {
				c.stats = append(c.stats, NewStat(s.Spec))
			}
			per[w] = c
		}
		recs := b.Records
		spans := c.spans[:0]
		switch {
		case recs != nil:
			for _, k := range sel {
				sp := spanOf(&recs[k])
				if once < 0 {
					c.total.addSpan(&recs[k], &sp)
				}
				spans = append(spans, sp)
			}
		case once < 0: // columns
			cv, total := colValuesOf(b), c.total
			for _, k := range sel {
				cv.add(&total, k)
			}
			c.total = total
		}
		c.spans = spans
		for _, s := range c.stats {
			s.addBlock(b, sel, spans)
		}
	})
	first := true
	for _, c := range per {
		if c == nil {
			continue
		}
		total.Merge(c.total)
		for i, s := range c.stats {
			if first && stats[i].Len() == 0 {
				stats[i] = s // the first worker's counts, merged into
				continue
			}
			stats[i].Merge(s)
		}
		first = false
	}
	if once >= 0 {
		cs := &stats[once].cs
		for i := range cs.len() {
			total.Merge(*cs.at(int32(i)))
		}
	}
	// Every statistic counted every record that passed.
	for _, s := range stats {
		s.Total = *total
	}
	return st, err
}

func (e *engine) aggregates(ctx context.Context, res *Result) error {
	req := e.req
	agg := req.aggregator()
	st, err := e.sc.Scan(ctx, e.files, func(r *flow.Record) error {
		res.Total.Add(r)
		agg.Add(r)
		return nil
	})
	res.Scan = st
	if err != nil {
		return err
	}
	res.Matched = agg.Len()
	if req.Stream != nil {
		return streamPage(agg, req)
	}
	rows := agg.Records()
	if req.Ordered {
		sortRows(rows, req.Order)
	}
	res.Rows = Page(rows, req.Offset, req.Top)
	return nil
}

// errPageDone ends streaming a page.
var errPageDone = errors.New("page done")

// streamPage hands the page Offset, Top of the aggregated records to
// req.Stream, one at a time (a listing of a million aggregated records
// is a quarter of a gigabyte of rows otherwise).
func streamPage(agg *Aggregator, req *Request) error {
	n := 0
	err := agg.Each(func(w *Row) error {
		n++
		switch {
		case n <= req.Offset:
			return nil
		case req.Top > 0 && n > req.Offset+req.Top:
			return errPageDone
		}
		return req.Stream(w)
	})
	if errors.Is(err, errPageDone) {
		return nil
	}
	return err
}

func (e *engine) records(ctx context.Context, res *Result) error {
	req := e.req
	var (
		top  *topRows
		keep func(w *Row) error
		n    int
	)
	want := 0
	if req.Top > 0 {
		want = req.Offset + req.Top
	}
	switch {
	case req.Stream != nil:
		keep = req.Stream
	case req.Ordered && want > 0:
		top = newTopRows(req.Order, want)
		keep = func(w *Row) error { top.add(w); return nil }
	case req.Ordered:
		keep = func(w *Row) error { res.Rows = append(res.Rows, *w); return nil }
	default:
		keep = func(w *Row) error {
			if want == 0 || n < want {
				res.Rows = append(res.Rows, *w)
			}
			return nil
		}
	}
	row := Row{Flows: 1}
	st, err := e.sc.Scan(ctx, e.files, func(r *flow.Record) error {
		res.Total.Add(r)
		row.Record = *r
		err := keep(&row)
		n++
		return err
	})
	res.Scan = st
	res.Matched = n
	if err != nil {
		return err
	}
	switch {
	case req.Stream != nil:
		res.Rows = nil
	case top != nil:
		res.Rows = Page(top.sorted(), req.Offset, 0)
	case req.Ordered:
		sortRows(res.Rows, req.Order)
		res.Rows = Page(res.Rows, req.Offset, req.Top)
	default:
		res.Rows = Page(res.Rows, req.Offset, req.Top)
	}
	return nil
}
