// SPDX-License-Identifier: Apache-2.0

package query

import (
	"errors"
	"strconv"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// The JSON encodings of results: one schema, printed by every view (the
// command line's -j and the web API). docs/json.md documents it; fields
// are only ever added.

// RowJSON is a listing row: the record, with the flows aggregated into it
// and the output direction of a bidirectional pair.
type RowJSON struct {
	flow.JSON
	Flows      uint64 `json:"flows"`
	OutPackets uint64 `json:"out_packets,omitempty"`
	OutBytes   uint64 `json:"out_bytes,omitempty"`
}

// NewRowJSON encodes a row.
func NewRowJSON(w *Row) RowJSON {
	return RowJSON{JSON: flow.NewJSON(&w.Record), Flows: w.Flows, OutPackets: w.OutPackets, OutBytes: w.OutBytes}
}

// RowsJSON encodes rows (an empty slice, never null).
func RowsJSON(rows []Row) []RowJSON {
	out := make([]RowJSON, len(rows))
	for i := range rows {
		out[i] = NewRowJSON(&rows[i])
	}
	return out
}

// CounterJSON is a total with its span.
type CounterJSON struct {
	Flows   uint64     `json:"flows"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
	First   *time.Time `json:"first,omitempty"`
	Last    *time.Time `json:"last,omitempty"`
}

// NewCounterJSON encodes a counter.
func NewCounterJSON(c *Counter) CounterJSON {
	j := CounterJSON{Flows: c.Flows, Packets: c.Packets, Bytes: c.Bytes}
	if t := c.FirstSeen(); !t.IsZero() {
		j.First = &t
	}
	if t := c.LastSeen(); !t.IsZero() {
		j.Last = &t
	}
	return j
}

// ScanJSON says what a query read.
type ScanJSON struct {
	Files         int    `json:"files"`
	Blocks        int    `json:"blocks"`
	CorruptBlocks int    `json:"corrupt_blocks"`
	TruncatedFile int    `json:"truncated_files"`
	Read          uint64 `json:"records_read"`
	Passed        uint64 `json:"records_passed"`
	// nfdump files: what was skipped, and the files read up to damage.
	SkippedRecords  uint64   `json:"skipped_records,omitempty"`
	SkippedElements uint64   `json:"skipped_elements,omitempty"`
	Damaged         []string `json:"damaged_files,omitempty"`
}

// NewScanJSON encodes what a result read.
func NewScanJSON(res *Result) ScanJSON {
	st := &res.Scan
	j := ScanJSON{Files: st.Files, Blocks: st.Blocks, CorruptBlocks: st.CorruptBlocks, TruncatedFile: st.Truncated,
		Read: st.Read, Passed: st.Passed, SkippedRecords: st.SkippedRecords, SkippedElements: st.SkippedElements}
	for _, d := range st.Damaged {
		j.Damaged = append(j.Damaged, d.Error())
	}
	return j
}

// EntryJSON is one row of a statistic.
type EntryJSON struct {
	Value string `json:"value"`
	// Name is an interface's name, when exporters gave one (IE 82).
	Name string `json:"name,omitempty"`
	CounterJSON
	PPS        uint64  `json:"pps"`
	BPS        uint64  `json:"bps"`
	BPP        uint64  `json:"bpp"`
	FlowsPct   float64 `json:"flows_pct"`
	PacketsPct float64 `json:"packets_pct"`
	BytesPct   float64 `json:"bytes_pct"`
}

// StatJSON is a statistic in one order.
type StatJSON struct {
	Element  string      `json:"element"`
	Order    string      `json:"order"`
	Distinct int         `json:"distinct"`
	Top      []EntryJSON `json:"top"`
	Records  []RowJSON   `json:"records,omitempty"`
}

// StatsJSON is the answer to statistics.
type StatsJSON struct {
	Stats []StatJSON  `json:"stats"`
	Total CounterJSON `json:"total"`
	Scan  ScanJSON    `json:"scan"`
}

// Pct is v as a percentage of total (0 for a total of 0).
func Pct(v, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(v) * 100 / float64(total)
}

// NewStatsJSON encodes a KindStats result.
func NewStatsJSON(res *Result) StatsJSON {
	js := StatsJSON{Stats: []StatJSON{}, Total: NewCounterJSON(&res.Total), Scan: NewScanJSON(res)}
	t := &res.Total
	names := NewIfNames(res.Reports)
	for _, st := range res.Stats {
		sj := StatJSON{Element: st.Element.Name(), Order: st.Order.String(), Distinct: st.Distinct, Top: []EntryJSON{}}
		if st.Element == ElemRecord {
			sj.Records = RowsJSON(st.Rows)
		}
		for _, en := range st.Entries {
			sj.Top = append(sj.Top, EntryJSON{Value: st.Element.Format(en.Value), CounterJSON: NewCounterJSON(&en.Counter),
				PPS: en.PPS(), BPS: en.BPS(), BPP: en.BPP(), FlowsPct: Pct(en.Flows, t.Flows),
				PacketsPct: Pct(en.Packets, t.Packets), BytesPct: Pct(en.Bytes, t.Bytes)})
			if st.Element.IsInterface() {
				sj.Top[len(sj.Top)-1].Name = names.Index(en.Value.Num)
			}
		}
		js.Stats = append(js.Stats, sj)
	}
	return js
}

// CountersJSON are flow, packet and byte totals.
type CountersJSON struct {
	Flows   uint64 `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func newCountersJSON(c flowfile.Counters) CountersJSON {
	return CountersJSON{c.Flows, c.Packets, c.Octets}
}

// ExporterJSON is one exporter's totals.
type ExporterJSON struct {
	Addr   string `json:"addr"` // "local" for records without an exporter
	Domain uint32 `json:"observation_domain"`
	CountersJSON
	SequenceFailures uint64 `json:"sequence_failures"`
}

// SummaryJSON is a summary (-I, file stat): totals per protocol class
// and per exporter.
type SummaryJSON struct {
	Blocks           uint64         `json:"blocks"`
	Total            CountersJSON   `json:"total"`
	TCP              CountersJSON   `json:"tcp"`
	UDP              CountersJSON   `json:"udp"`
	ICMP             CountersJSON   `json:"icmp"`
	Other            CountersJSON   `json:"other"`
	FirstSeen        *time.Time     `json:"first_seen,omitempty"`
	LastSeen         *time.Time     `json:"last_seen,omitempty"`
	SequenceFailures uint64         `json:"sequence_failures"`
	Exporters        []ExporterJSON `json:"exporters"`
}

func utcRef(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewSummaryJSON encodes a summary.
func NewSummaryJSON(s *flowfile.Summary) SummaryJSON {
	out := SummaryJSON{Blocks: s.Blocks, Total: newCountersJSON(s.Total), TCP: newCountersJSON(s.TCP),
		UDP: newCountersJSON(s.UDP), ICMP: newCountersJSON(s.ICMP), Other: newCountersJSON(s.Other),
		FirstSeen: utcRef(s.FirstSeen), LastSeen: utcRef(s.LastSeen), SequenceFailures: s.SequenceFailures,
		Exporters: []ExporterJSON{}}
	for _, e := range s.Exporters {
		out.Exporters = append(out.Exporters, ExporterJSON{Addr: ElemExporter.Format(Value{Addr: e.Addr}),
			Domain: e.ObservationDomain, CountersJSON: newCountersJSON(e.Counters), SequenceFailures: e.SequenceFailures})
	}
	return out
}

// LineStatsJSON are a line's figures in the series' unit, per second.
type LineStatsJSON struct {
	Min   float64 `json:"min"`
	Avg   float64 `json:"avg"`
	P95   float64 `json:"p95"`
	Max   float64 `json:"max"`
	Last  float64 `json:"last"`
	Total uint64  `json:"total"`
}

// LineJSON is one line of a series: its key, per bucket its rate in the
// series' unit (Values) and the exact counts behind it.
type LineJSON struct {
	Name  string   `json:"name"`
	Key   []string `json:"key,omitempty"`
	Other bool     `json:"other,omitempty"`
	// Filter selects the line's records within the series' request
	// (omitted when the filter language cannot say it).
	Filter  string        `json:"filter,omitempty"`
	Values  []float64     `json:"values"`
	Flows   []uint64      `json:"flows"`
	Packets []uint64      `json:"packets"`
	Bytes   []uint64      `json:"bytes"`
	Stats   LineStatsJSON `json:"stats"`
}

// SeriesJSON is a time series.
type SeriesJSON struct {
	Start       time.Time  `json:"start"`
	StepSeconds float64    `json:"step_seconds"`
	Points      int        `json:"points"`
	Unit        string     `json:"unit"`
	Rank        string     `json:"rank"`
	Dims        []string   `json:"dims"`
	Distinct    int        `json:"distinct"`
	Lines       []LineJSON `json:"lines"`
	Total       LineJSON   `json:"total"`
	// Reverse holds the opposite direction of each line, in the same
	// order (bidirectional mode); Previous the total of the previous
	// period on the same buckets.
	Reverse  []LineJSON `json:"reverse,omitempty"`
	Previous *LineJSON  `json:"previous,omitempty"`
}

// NewSeriesJSON encodes a series.
func NewSeriesJSON(s *Series) SeriesJSON {
	js := SeriesJSON{Start: s.Start.UTC(), StepSeconds: s.Step.Seconds(), Points: s.Points, Unit: s.Unit.String(),
		Rank: s.Rank.String(), Dims: []string{}, Distinct: s.Distinct, Lines: []LineJSON{}}
	for _, d := range s.Dims {
		js.Dims = append(js.Dims, d.String())
	}
	line := func(l *Line) LineJSON {
		st := l.Stats(s.Unit, s.Step)
		lj := LineJSON{Name: s.LineName(l), Other: l.Other, Values: make([]float64, s.Points),
			Flows: l.Flows, Packets: l.Packets, Bytes: l.Bytes,
			Stats: LineStatsJSON{Min: st.Min, Avg: st.Avg, P95: st.P95, Max: st.Max, Last: st.Last, Total: st.Total}}
		for i, v := range l.Key {
			lj.Key = append(lj.Key, s.Dims[i].Element.Format(v))
		}
		lj.Filter, _ = s.LineFilter(l)
		for i := range lj.Values {
			lj.Values[i] = float64(l.Value(s.Unit, i)) / s.Step.Seconds()
		}
		return lj
	}
	for i := range s.Lines {
		js.Lines = append(js.Lines, line(&s.Lines[i]))
	}
	js.Total = line(&s.Total)
	for i := range s.Reverse {
		js.Reverse = append(js.Reverse, line(&s.Reverse[i]))
	}
	if s.Previous != nil {
		p := line(s.Previous)
		p.Name = "Previous period"
		js.Previous = &p
	}
	return js
}

// SankeyJSON is a series over 2 or 3 dimensions as a flow diagram:
// one node per value of each dimension (Other at each for the folded
// keys), a link between the values of consecutive dimensions of each line.
type SankeyJSON struct {
	Unit  string           `json:"unit"`
	Dims  []string         `json:"dims"`
	Nodes []SankeyNodeJSON `json:"nodes"`
	Links []SankeyLinkJSON `json:"links"`
	Total CounterJSON      `json:"total"`
	Scan  ScanJSON         `json:"scan"`
}

// SankeyNodeJSON is one value of one dimension.
type SankeyNodeJSON struct {
	ID    string `json:"id"` // dimension index and value: "0:198.18.0.10"
	Dim   int    `json:"dim"`
	Value string `json:"value"`
}

// SankeyLinkJSON is the traffic between two nodes: Value is the series'
// unit per second averaged over the window, Count the unit's count.
type SankeyLinkJSON struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Count  uint64  `json:"count"`
}

// NewSankeyJSON encodes a series result as a sankey.
func NewSankeyJSON(res *Result) SankeyJSON {
	s := res.Series
	js := SankeyJSON{Unit: s.Unit.String(), Dims: []string{}, Nodes: []SankeyNodeJSON{}, Links: []SankeyLinkJSON{},
		Total: NewCounterJSON(&res.Total), Scan: NewScanJSON(res)}
	for _, d := range s.Dims {
		js.Dims = append(js.Dims, d.String())
	}
	secs := (time.Duration(s.Points) * s.Step).Seconds()
	nodes := map[string]bool{}
	links := map[[2]string]int{}
	for i := range s.Lines {
		l := &s.Lines[i]
		total := l.Stats(s.Unit, s.Step).Total
		var ids []string
		for d := range s.Dims {
			v := "Other"
			if !l.Other {
				v = s.Dims[d].Element.Format(l.Key[d])
			}
			id := strconv.Itoa(d) + ":" + v
			if !nodes[id] {
				nodes[id] = true
				js.Nodes = append(js.Nodes, SankeyNodeJSON{ID: id, Dim: d, Value: v})
			}
			ids = append(ids, id)
		}
		for d := 1; d < len(ids); d++ {
			k := [2]string{ids[d-1], ids[d]}
			at, ok := links[k]
			if !ok {
				at = len(js.Links)
				links[k] = at
				js.Links = append(js.Links, SankeyLinkJSON{Source: k[0], Target: k[1]})
			}
			js.Links[at].Count += total
			js.Links[at].Value = float64(js.Links[at].Count) / secs
		}
	}
	return js
}

// ListJSON is a page of a listing (the web API's flows): Rows from
// Offset; Matched rows in all when Exact, else at least Matched (a listing
// in file order stops reading one row past the page); More when rows
// follow the page.
type ListJSON struct {
	Rows    []RowJSON   `json:"rows"`
	Offset  int         `json:"offset"`
	Matched int         `json:"matched"`
	Exact   bool        `json:"exact"`
	More    bool        `json:"more"`
	Total   CounterJSON `json:"total"` // of the records read (all when Exact)
	Scan    ScanJSON    `json:"scan"`
}

// NewListJSON encodes the result of a listing request.
func NewListJSON(req *Request, res *Result) ListJSON {
	return ListJSON{Rows: RowsJSON(res.Rows), Offset: req.Offset, Matched: res.Matched,
		Exact: req.Limit == 0 || res.Scan.Passed < req.Limit, More: res.Matched > req.Offset+len(res.Rows),
		Total: NewCounterJSON(&res.Total), Scan: NewScanJSON(res)}
}

// FilterJSON is the check of a filter: Valid with its text and its
// reverse (src and dst swapped), or the syntax error.
type FilterJSON struct {
	Valid   bool       `json:"valid"`
	Filter  string     `json:"filter"`
	Reverse string     `json:"reverse,omitempty"`
	Error   *ErrorJSON `json:"error,omitempty"`
}

// NewFilterJSON encodes the result of parsing a filter.
func NewFilterJSON(f *filter.Filter, err error) FilterJSON {
	if err != nil {
		e := NewErrorJSON(err)
		return FilterJSON{Filter: e.Filter, Error: &e}
	}
	return FilterJSON{Valid: true, Filter: f.String(), Reverse: f.Reverse().String()}
}

// ErrorJSON is an error; for a filter syntax error, where it is: byte
// offset, line and column (1-based) and the offending token ("" at the
// end of the filter).
type ErrorJSON struct {
	Message string `json:"message"`
	Filter  string `json:"filter,omitempty"`
	Offset  *int   `json:"offset,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Token   string `json:"token,omitempty"`
}

// NewErrorJSON encodes an error.
func NewErrorJSON(err error) ErrorJSON {
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		off := se.Offset
		return ErrorJSON{Message: se.Error(), Filter: se.Source, Offset: &off, Line: se.Line, Column: se.Column, Token: se.Token}
	}
	return ErrorJSON{Message: err.Error()}
}
