// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// engineFixture writes a synthetic mix into a few files (one left as a
// crash leaves it when crashed is set) and returns the backend and every
// record written, in file order.
func engineFixture(t *testing.T, n int, crashed bool) (*FileBackend, []flow.Record) {
	t.Helper()
	dir := t.TempDir()
	m := synthflow.NewMix(synthflow.Options{Seed: 7, Exporter: netip.MustParseAddr("198.18.255.1")})
	var all []flow.Record
	for i := 0; i < 3; i++ {
		recs := m.Records(n / 3)
		if i == 1 {
			for k := range recs[:len(recs)/2] {
				recs[k].Exporter = netip.MustParseAddr("198.18.255.2")
			}
		}
		name := fmt.Sprintf("kflow.2025031409%02d", 25+5*i)
		path := filepath.Join(dir, name)
		if crashed && i == 2 {
			writeCrashed(t, filepath.Join(dir, "kflow.current.202503140935"), recs)
		} else {
			writeFile(t, path, recs)
		}
		all = append(all, recs...)
	}
	return &FileBackend{Paths: []string{dir}}, all
}

// writeCrashed writes records in blocks and no summary, as a crash
// leaves a file.
func writeCrashed(t *testing.T, path string, recs []flow.Record) {
	t.Helper()
	w, err := flowfile.Create(path, flowfile.WriterOptions{Ident: "test", BlockRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// No Close: the writer's file is left without its summary; the test's
	// temporary directory removes it.
}

func query(t *testing.T, b *FileBackend, req *Request) *Result {
	t.Helper()
	res, err := b.Query(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestStoredSummaryEqualsScan: -I over whole files reads the files'
// stored summaries; scanning the records gives the same answer.
func TestStoredSummaryEqualsScan(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	stored := query(t, b, &Request{Summary: true})
	if len(stored.Scan.Summaries) != 3 || stored.Scan.Blocks != 0 {
		t.Fatalf("the summary was not taken from the stored summaries: %+v", stored.Scan)
	}
	files, err := Files(Select{Paths: b.Paths})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{req: &Request{Summary: true}, sc: &Scanner{}, files: files}
	scanned := &Result{}
	// Force the scan the shortcut saves.
	if err := e.scanSummary(context.Background(), scanned, files, flowfile.NewSummarizer(), ScanStats{}); err != nil {
		t.Fatal(err)
	}
	if scanned.Scan.Read != uint64(len(all)) || scanned.Scan.Blocks == 0 {
		t.Fatalf("the scan did not read the records: %+v", scanned.Scan)
	}
	if !reflect.DeepEqual(*stored.Summary, *scanned.Summary) {
		t.Errorf("stored summaries and a scan differ:\nstored  %+v\nscanned %+v", *stored.Summary, *scanned.Summary)
	}
	if stored.Total != scanned.Total {
		t.Errorf("totals differ: %+v %+v", stored.Total, scanned.Total)
	}
	// The reference: the summary of every record.
	z := flowfile.NewSummarizer()
	for i := range all {
		z.Add(&all[i])
	}
	want := z.Summary()
	want.Blocks = stored.Summary.Blocks
	if !reflect.DeepEqual(want, *stored.Summary) {
		t.Errorf("summary differs from the records':\ngot  %+v\nwant %+v", *stored.Summary, want)
	}
	// A file without a stored summary is scanned, and counted the same.
	b2, all2 := engineFixture(t, 3000, true)
	got := query(t, b2, &Request{Summary: true})
	if got.Summary.Total.Flows != uint64(len(all2)) || got.Scan.Truncated != 1 || len(got.Scan.Summaries) != 2 || got.Scan.Blocks == 0 {
		t.Errorf("with a crashed file: %d flows, scan %+v", got.Summary.Total.Flows, got.Scan)
	}
}

// naiveStat counts an element the slow, obvious way.
func naiveStat(recs []flow.Record, e Element) map[Value]Counter {
	m := map[Value]Counter{}
	add := func(v Value, r *flow.Record) {
		c := m[v]
		c.Add(r)
		m[v] = c
	}
	for i := range recs {
		r := &recs[i]
		switch e {
		case ElemIP:
			add(Value{Addr: r.Src}, r)
			if r.Dst != r.Src {
				add(Value{Addr: r.Dst}, r)
			}
		case ElemPort:
			add(Value{Num: uint32(r.SrcPort)}, r)
			if r.NfDstPort() != r.SrcPort {
				add(Value{Num: uint32(r.NfDstPort())}, r)
			}
		default:
			add(Dim{Element: e}.value(r), r)
		}
	}
	return m
}

func TestStatsEqualNaive(t *testing.T) {
	b, all := engineFixture(t, 6000, true)
	flt := filter.MustParse("proto tcp or proto udp")
	var passed []flow.Record
	for i := range all {
		if flt.Match(&all[i]) {
			passed = append(passed, all[i])
		}
	}
	elems := []Element{ElemSrcIP, ElemDstIP, ElemIP, ElemSrcPort, ElemDstPort, ElemPort, ElemProto, ElemFlags, ElemExporter, ElemDir}
	// Every entry, not only the top ones: IPv4 and IPv6 addresses, in
	// blocks of their own dictionaries (and the crashed file's blocks
	// read record by record).
	req := &Request{Filter: flt}
	for _, e := range elems {
		req.Stats = append(req.Stats, StatSpec{Element: e, Orders: []Order{ByBytes, ByFlows}})
	}
	res := query(t, b, req)
	if res.Scan.Passed != uint64(len(passed)) || res.Total.Flows != uint64(len(passed)) {
		t.Fatalf("passed %d, total %+v; want %d", res.Scan.Passed, res.Total, len(passed))
	}
	for _, st := range res.Stats {
		want := naiveStat(passed, st.Element)
		if st.Distinct != len(want) {
			t.Errorf("%s: %d distinct, want %d", st.Element.Name(), st.Distinct, len(want))
		}
		var es []Entry
		for v, c := range want {
			es = append(es, Entry{v, c})
		}
		sortEntries(es, st.Order)
		if !reflect.DeepEqual(st.Entries, es) {
			t.Errorf("%s/%s:\ngot  %+v\nwant %+v", st.Element.Name(), st.Order, st.Entries, es)
		}
	}
}

// TestOrderedListing: -O with -n keeps the top rows in a bounded heap;
// it must equal a stable sort of every record, page by page.
func TestOrderedListing(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	for _, o := range []Order{ByBytes, ByPackets, ByFlows, ByStart, ByEnd, ByPPS, ByBPS, ByBPP, ByDuration} {
		rows := make([]Row, len(all))
		for i := range all {
			rows[i] = Row{Record: all[i], Flows: 1}
		}
		sortRows(rows, o)
		for _, pg := range []struct{ off, top int }{{0, 10}, {10, 10}, {2990, 20}, {0, 0}} {
			res := query(t, b, &Request{Ordered: true, Order: o, Offset: pg.off, Top: pg.top})
			want := Page(rows, pg.off, pg.top)
			if res.Matched != len(all) || !reflect.DeepEqual(res.Rows, want) {
				t.Errorf("-O %s offset %d top %d: %d rows (matched %d), want %d", o, pg.off, pg.top, len(res.Rows), res.Matched, len(want))
			}
		}
	}
	// Unordered pages are file order.
	res := query(t, b, &Request{Offset: 5, Top: 3})
	if len(res.Rows) != 3 || res.Rows[0].Record != all[5] || res.Matched != len(all) {
		t.Errorf("unordered page: %+v", res.Rows)
	}
}

func TestAggregatedListing(t *testing.T) {
	b, all := engineFixture(t, 3000, false)
	spec := AggSpec{Proto: true, DstPort: true, SrcBits4: -1, SrcBits6: -1, DstBits4: -1, DstBits6: -1}
	res := query(t, b, &Request{Aggregate: &spec, Ordered: true, Order: ByBytes, Top: 5})
	agg := NewAggregator(spec, Unidirectional)
	for i := range all {
		agg.Add(&all[i])
	}
	if want := agg.Top(ByBytes, 5); !reflect.DeepEqual(res.Rows, want) || res.Matched != agg.Len() {
		t.Errorf("-A proto,dstport -O bytes -n 5:\ngot  %+v\nwant %+v", res.Rows, want)
	}
	var sum uint64
	for _, w := range agg.Records() {
		sum += w.Octets + w.OutBytes
	}
	if sum != res.Total.Bytes {
		t.Errorf("aggregated bytes %d, total %d", sum, res.Total.Bytes)
	}
}

// TestSeries: the buckets of every line sum to the query's totals, and
// each line equals a naive count of its key's records per bucket.
// windowOf is a window of whole seconds holding every record.
func windowOf(all []flow.Record) Window {
	first, last := all[0].Start, all[0].End
	for _, r := range all {
		if r.Start.Before(first) {
			first = r.Start
		}
		if r.End.After(last) {
			last = r.End
		}
	}
	return Window{From: first.Truncate(time.Second), To: last.Add(time.Second)}
}

func TestSeries(t *testing.T) {
	b, all := engineFixture(t, 6000, true)
	w := windowOf(all)
	dims := []Dim{{Element: ElemProto}, {Element: ElemDstIP, Bits4: 24, Bits6: 64}}
	for _, rank := range []Rank{RankAvg, RankPeak, RankLast} {
		spec := &SeriesSpec{Dims: dims, Top: 4, Rank: rank, Unit: UnitL2Bits}
		res := query(t, b, &Request{Window: w, Series: spec})
		s := res.Series
		if s.Step != AutoStep(w.To.Sub(w.From)) || s.Points < 1 || s.Points > 500 {
			t.Fatalf("step %v points %d", s.Step, s.Points)
		}
		var flows, packets, bytes uint64
		for _, l := range s.Lines {
			for i := 0; i < s.Points; i++ {
				flows += l.Flows[i]
				packets += l.Packets[i]
				bytes += l.Bytes[i]
			}
		}
		if flows != uint64(len(all)) || flows != res.Total.Flows || packets != res.Total.Packets || bytes != res.Total.Bytes {
			t.Errorf("lines sum to %d/%d/%d, total %+v, records %d", flows, packets, bytes, res.Total, len(all))
		}
		if len(s.Lines) != 5 || !s.Lines[4].Other {
			t.Fatalf("%d lines, want the top 4 and Other", len(s.Lines))
		}
		// Each top line against the records of its key.
		for _, l := range s.Lines[:4] {
			want := newLine(s.Points)
			for i := range all {
				r := &all[i]
				if dims[0].value(r) != l.Key[0] || dims[1].value(r) != l.Key[1] {
					continue
				}
				k := int(r.Start.Sub(s.Start) / s.Step)
				want.Flows[k]++
				want.Packets[k] += r.Packets
				want.Bytes[k] += r.Octets
			}
			want.Key = l.Key
			if !reflect.DeepEqual(l, want) {
				t.Errorf("rank %s: line %s differs from its records", rank, s.LineName(&l))
			}
		}
		// The ranking holds: no folded key outranks a kept one.
		ranks := map[seriesKey]uint64{}
		per := map[seriesKey][]uint64{}
		for i := range all {
			r := &all[i]
			var k seriesKey
			k[0], k[1] = dims[0].value(r), dims[1].value(r)
			if per[k] == nil {
				per[k] = make([]uint64, s.Points)
			}
			per[k][int(r.Start.Sub(s.Start)/s.Step)] += UnitL2Bits.Of(1, r.Packets, r.Octets)
		}
		for k, v := range per {
			switch rank {
			case RankAvg:
				for _, x := range v {
					ranks[k] += x
				}
			case RankPeak:
				ranks[k] = slices.Max(v)
			case RankLast:
				ranks[k] = v[len(v)-1]
			}
		}
		var vals []uint64
		for _, v := range ranks {
			vals = append(vals, v)
		}
		slices.SortFunc(vals, func(a, b uint64) int { return cmp.Compare(b, a) })
		for i, l := range s.Lines[:4] {
			var k seriesKey
			copy(k[:], l.Key)
			if ranks[k] != vals[i] {
				t.Errorf("rank %s: line %d has rank value %d, want %d", rank, i, ranks[k], vals[i])
			}
		}
	}
	// One bucket over the window: a group-by (a sankey's links).
	res := query(t, b, &Request{Window: w, Series: &SeriesSpec{Step: w.To.Sub(w.From.Truncate(time.Hour)) + time.Hour, Dims: dims, Top: 3}})
	if res.Series.Points != 1 || len(res.Series.Lines) != 4 {
		t.Errorf("one bucket: %d points, %d lines", res.Series.Points, len(res.Series.Lines))
	}
}

func TestSeriesValidate(t *testing.T) {
	w := Window{From: time.Unix(0, 0), To: time.Unix(3600, 0)}
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Series: &SeriesSpec{}}, "needs a window"},
		{Request{Window: w, Series: &SeriesSpec{Step: time.Millisecond}}, "at least a second"},
		{Request{Window: Window{From: w.From, To: w.To.Add(time.Hour)}, Series: &SeriesSpec{Step: time.Second}}, "at most 5000"},
		{Request{Window: w, Series: &SeriesSpec{Dims: make([]Dim, 4)}}, "3 dimensions"},
		{Request{Aggregate: &AggSpec{}, Bidir: Paired}, "cannot be combined"},
		{Request{Ordered: true, Stream: func(*Row) error { return nil }}, "cannot be streamed"},
	} {
		err := tt.req.Validate()
		if !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.req, err, tt.want)
		}
	}
	for _, bad := range []string{"srcip/40", "proto/8", "ip", "bogus", "srcip/24/200"} {
		if _, err := ParseDim(bad); err == nil {
			t.Errorf("ParseDim(%q) succeeded", bad)
		}
	}
	if d, err := ParseDim("dstip/24/64"); err != nil || d.Bits4 != 24 || d.Bits6 != 64 || d.String() != "dstip/24/64" {
		t.Errorf("ParseDim: %+v %v", d, err)
	}
	if AutoStep(15*time.Minute) != 2*time.Second || AutoStep(24*time.Hour) != 5*time.Minute || AutoStep(30*24*time.Hour) != 2*time.Hour {
		t.Error("AutoStep")
	}
}

// TestCancel: a cancelled context ends a query with its error.
func TestCancel(t *testing.T) {
	b, _ := engineFixture(t, 3000, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, req := range []*Request{{}, {Stats: []StatSpec{{Element: ElemSrcIP, Orders: []Order{ByFlows}}}}, {Summary: true, Filter: filter.MustParse("proto tcp")}} {
		if _, err := b.Query(ctx, req); !errors.Is(err, context.Canceled) {
			t.Errorf("%+v: %v, want context.Canceled", req, err)
		}
	}
	// A stream's error ends the scan.
	stop := errors.New("enough")
	n := 0
	_, err := b.Query(context.Background(), &Request{Stream: func(*Row) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || n != 10 {
		t.Errorf("stream error: %v after %d rows", err, n)
	}
}

// slotFiles writes files of five-minute slots from 09:00, the records of
// recs[i] spread over slot i (a crashed file, without rollup, for the
// slot crashed), and returns the directory.
func slotFiles(t *testing.T, slots [][]flow.Record, crashed int) string {
	t.Helper()
	dir := t.TempDir()
	t0 := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	for i, recs := range slots {
		slot := t0.Add(time.Duration(i) * 5 * time.Minute)
		for k := range recs {
			d := recs[k].End.Sub(recs[k].Start)
			recs[k].End = slot.Add(time.Duration(int64(k+1) * int64(5*time.Minute) / int64(len(recs)+1)))
			recs[k].Start = recs[k].End.Add(-d)
		}
		if i == crashed {
			writeCrashed(t, filepath.Join(dir, "kflow.current."+slot.Format("200601021504")), recs)
			continue
		}
		writeFile(t, filepath.Join(dir, "kflow."+slot.Format("200601021504")), recs)
	}
	return dir
}

// sameSeries compares a series from rollups with the scanned one: all but
// Distinct, which rollups may not know.
func sameSeries(t *testing.T, what string, got, want *Result) {
	t.Helper()
	g, w := *got.Series, *want.Series
	if g.Distinct != -1 && g.Distinct != w.Distinct {
		t.Errorf("%s: %d distinct keys, scanned %d", what, g.Distinct, w.Distinct)
	}
	g.Distinct, w.Distinct = 0, 0
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: series from rollups differs from the scan", what)
	}
	if got.Total.Flows != want.Total.Flows || got.Total.Packets != want.Total.Packets || got.Total.Bytes != want.Total.Bytes ||
		got.Scan.Passed != want.Scan.Passed || got.Total.Flows == 0 {
		t.Errorf("%s: totals %+v (passed %d), scanned %+v (passed %d)", what, got.Total, got.Scan.Passed, want.Total, want.Scan.Passed)
	}
}

func runSeries(t *testing.T, b *FileBackend, req *Request, noRollups bool) *Result {
	t.Helper()
	files, err := Files(Select{Paths: b.Paths, Window: req.Window})
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Kind: KindSeries}
	if err := (&engine{req: req, sc: &Scanner{Window: req.Window}, files: files, noRollups: noRollups}).series(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSeriesRollups: a series answered from the files' rollups equals the
// same series scanned, for every rolled-up dimension, unit and step, with
// the window's edge files and a crashed file (no rollup) scanned.
func TestSeriesRollups(t *testing.T) {
	m := synthflow.NewMix(synthflow.Options{Seed: 11, Exporter: netip.MustParseAddr("198.18.255.1")})
	var slots [][]flow.Record
	for i := 0; i < 7; i++ {
		recs := m.Records(4000)
		if i%2 == 1 {
			for k := range recs[:1000] {
				recs[k].Exporter = netip.MustParseAddr("198.18.255.2")
			}
		}
		slots = append(slots, recs)
	}
	b := &FileBackend{Paths: []string{slotFiles(t, slots, 4)}}
	// From 09:05 to 09:30: slot 0 is outside; slot 1's first records
	// start before 09:05 (an edge, scanned); slots 2, 3 and 5 are inside
	// (rollups); slot 4 crashed (scanned); slot 6 ends after 09:30 (an
	// edge).
	from := time.Date(2025, 3, 14, 9, 5, 0, 0, time.UTC)
	w := Window{From: from, To: from.Add(25*time.Minute - time.Nanosecond)}
	always := map[Element]bool{ElemProto: true, ElemDir: true, ElemExporter: true}
	used := 0
	for _, d := range [][]Dim{nil, {{Element: ElemSrcIP}}, {{Element: ElemDstIP}}, {{Element: ElemDstPort}}, {{Element: ElemSrcPort}},
		{{Element: ElemExporter}}, {{Element: ElemProto}}, {{Element: ElemDir}}, {{Element: ElemInIf}}} {
		for _, u := range []Unit{UnitL3Bits, UnitPackets, UnitFlows, UnitL2Bits} {
			for _, step := range []time.Duration{time.Minute, 5 * time.Minute} {
				req := &Request{Window: w, Series: &SeriesSpec{Step: step, Dims: d, Top: 5, Unit: u}}
				got, want := runSeries(t, b, req, false), runSeries(t, b, req, true)
				what := fmt.Sprintf("%v %s step %v", d, u, step)
				sameSeries(t, what, got, want)
				if got.Scan.Rollups != 0 && got.Scan.Rollups != 3 {
					t.Errorf("%s: %d files from rollups, want 3 or none", what, got.Scan.Rollups)
				}
				if (len(d) == 0 || always[d[0].Element]) && got.Scan.Rollups != 3 {
					t.Errorf("%s: %d files from rollups, want 3 (every value kept)", what, got.Scan.Rollups)
				}
				if got.Scan.Rollups > 0 {
					used++
				}
			}
		}
	}
	t.Logf("%d of 72 series answered from rollups", used)
	// The series' total is what a query of the window counts.
	res := query(t, b, &Request{Window: w, Summary: true})
	ser := query(t, b, &Request{Window: w, Series: &SeriesSpec{Step: time.Minute}})
	if ser.Total.Flows != res.Summary.Total.Flows || ser.Total.Bytes != res.Summary.Total.Octets || ser.Scan.Rollups != 3 {
		t.Errorf("series total %+v (rollups %d), -I %+v", ser.Total, ser.Scan.Rollups, res.Summary.Total)
	}
	// Filters, prefixes, peaks, steps under a minute: scanned.
	for _, req := range []*Request{
		{Window: w, Series: &SeriesSpec{Step: time.Minute}, Filter: filter.MustParse("proto udp")},
		{Window: w, Series: &SeriesSpec{Step: time.Minute, Dims: []Dim{{Element: ElemSrcIP, Bits4: 24}}}},
		{Window: w, Series: &SeriesSpec{Step: time.Minute, Rank: RankPeak}},
		{Window: w, Series: &SeriesSpec{Step: 30 * time.Second}},
	} {
		if res := query(t, b, req); res.Scan.Rollups != 0 {
			t.Errorf("%+v: answered from rollups", req.Series)
		}
	}
}

// TestRollupsRefuse: when a top value was not kept in a file, the rollups
// cannot know its traffic there: the engine scans.
func TestRollupsRefuse(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	mk := func(port uint16, bytes uint64) flow.Record {
		return rec("198.18.0.1", "198.18.0.2", port, 53, flow.ProtoUDP, 1, bytes, t0, time.Second)
	}
	var a, c []flow.Record
	// Slot 0: port 1 is the largest. Slot 1: 20 larger ports; port 1
	// small, below the 16 kept.
	a = append(a, mk(1, 1_000_000))
	for p := uint16(100); p < 120; p++ {
		a = append(a, mk(p, 10))
		c = append(c, mk(p, 100_000))
	}
	c = append(c, mk(1, 5))
	// Slot 2 is the edge that makes slots 0 and 1 inside the window.
	b := &FileBackend{Paths: []string{slotFiles(t, [][]flow.Record{a, c, {mk(7, 1)}}, -1)}}
	w := Window{From: t0, To: t0.Add(10*time.Minute - time.Nanosecond)}
	req := &Request{Window: w, Series: &SeriesSpec{Step: 5 * time.Minute, Dims: []Dim{{Element: ElemSrcPort}}, Top: 3}}
	got, want := runSeries(t, b, req, false), runSeries(t, b, req, true)
	sameSeries(t, "refused", got, want)
	if got.Scan.Rollups != 0 {
		t.Errorf("answered from %d rollups: port 1's traffic in slot 1 is unknown to them", got.Scan.Rollups)
	}
	// Top 1 only needs port 1, kept... not in slot 1 either: still refused;
	// by protocol every value is kept: accepted.
	req.Series.Dims = []Dim{{Element: ElemProto}}
	if got := runSeries(t, b, req, false); got.Scan.Rollups != 2 {
		t.Errorf("by protocol: %d rollups, want 2", got.Scan.Rollups)
	}
}
