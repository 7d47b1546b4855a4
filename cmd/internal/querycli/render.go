// SPDX-License-Identifier: Apache-2.0

package querycli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Rendering of "kflow file query" results: nfdump's text layouts, or the
// query library's JSON encodings.

// outFormat is how listed rows print: special is csv or json (nfdump's
// layouts), kflow-csv, kflow-json or ndjson (kflow's), else text is a
// compiled nfdump format.
type outFormat struct {
	special string
	text    recordFormat
}

type queryRender struct {
	names *query.IfNames // interface names for statistics
	e     *Env
	w     *bufio.Writer
	o     *fmtOpts
	quiet bool
	out   outFormat
	line  []byte
	n     int // rows printed
}

func (r *queryRender) jsonOut() bool {
	switch r.out.special {
	case "json", "kflow-json", "ndjson":
		return true
	}
	return r.e.JSON
}

func (r *queryRender) printJSON(v any) error {
	enc := json.NewEncoder(r.w)
	if r.e.Pretty {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

func (r *queryRender) listHeader() {
	switch {
	case r.out.special == "json" || r.out.special == "kflow-json":
		r.w.WriteString("[")
	case r.out.special == "ndjson":
	case r.out.special == "csv":
		if !r.quiet {
			r.w.WriteString(nfCSVHeader + "\n")
		}
	case r.out.special == "kflow-csv":
		r.w.WriteString(csvHeader + "\n")
	case !r.quiet:
		r.w.WriteString(r.out.text.header() + "\n")
	}
}

func (r *queryRender) row(w *query.Row) {
	defer func() { r.n++ }()
	switch r.out.special {
	case "json":
		if r.n > 0 {
			r.w.WriteString(",")
		}
		r.w.WriteString("\n")
		r.line = nfJSONRecord(r.line[:0], w, r.o)
		r.w.Write(r.line)
	case "kflow-json", "ndjson":
		b, _ := json.Marshal(query.NewRowJSON(w))
		if r.out.special == "kflow-json" {
			if r.n > 0 {
				r.w.WriteString(",")
			}
			r.w.WriteString("\n")
			r.w.Write(b)
			return
		}
		r.w.Write(b)
		r.w.WriteByte('\n')
	case "csv":
		r.line = nfCSVRow(r.line[:0], w, r.o)
		r.line = append(r.line, '\n')
		r.w.Write(r.line)
	case "kflow-csv":
		r.line = csvRow(r.line[:0], w, r.o)
		r.line = append(r.line, '\n')
		r.w.Write(r.line)
	default:
		r.line = r.out.text.format(r.line[:0], w, r.o)
		r.line = append(r.line, '\n')
		r.w.Write(r.line)
	}
}

func (r *queryRender) listFooter(res *query.Result) {
	switch {
	case r.out.special == "json": // as nfdump closes it
		r.w.WriteString("]\n")
	case r.out.special == "kflow-json":
		if r.n > 0 {
			r.w.WriteString("\n")
		}
		r.w.WriteString("]\n")
	case r.out.special == "csv" && !r.quiet:
		r.w.WriteString(nfCSVFooter(&res.Total))
	case r.out.special == "ndjson" || r.out.special == "csv" || r.out.special == "kflow-csv" || r.quiet:
	default:
		r.totalsFooter(res)
	}
}

// totalsFooter prints nfdump's closing lines.
func (r *queryRender) totalsFooter(res *query.Result) {
	t, st, o := &res.Total, &res.Scan, r.o
	fmt.Fprintf(r.w, "Summary: total flows: %d, total bytes: %s, total packets: %s, avg bps: %s, avg pps: %s, avg bpp: %d\n",
		t.Flows, scaled(t.Bytes, o), scaled(t.Packets, o), scaled(t.BPS(), o), scaled(t.PPS(), o), t.BPP())
	// nfdump's lines (its window in whole seconds); kflow adds the files.
	sec := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(o.loc).Format(time.DateTime)
	}
	fmt.Fprintf(r.w, "Time window: %s - %s\n", sec(t.FirstSeen()), sec(t.LastSeen()))
	fmt.Fprintf(r.w, "Total flows processed: %d, passed: %d, Blocks skipped: %d, files: %d\n", st.Read, st.Passed, st.CorruptBlocks, st.Files)
}

// SummaryJSON is -I's JSON: the files read and their summary.
type SummaryJSON struct {
	Files  int      `json:"files"`
	Idents []string `json:"idents"`
	query.SummaryJSON
	// Reports: what the exporters said about themselves (ignored packets
	// and octets: totals up to their last report in the files read).
	Reports []flowfile.ExporterReport `json:"reports,omitempty"`
}

func (r *queryRender) summary(res *query.Result) error {
	s := res.Summary
	if r.jsonOut() {
		idents := res.Idents
		if idents == nil {
			idents = []string{}
		}
		return r.printJSON(SummaryJSON{Files: res.Scan.Files, Idents: idents, SummaryJSON: query.NewSummaryJSON(s), Reports: res.Reports})
	}
	w := r.w
	fmt.Fprintf(w, "Files: %d\n", res.Scan.Files)
	for _, id := range res.Idents {
		fmt.Fprintf(w, "Ident: %s\n", id)
	}
	PrintCounts(w, s, 0)
	first, last := s.FirstSeen, s.LastSeen
	fmt.Fprintf(w, "First: %d\nLast: %d\nmsec_first: %d\nmsec_last: %d\n",
		unixOr0(first), unixOr0(last), msOf(first), msOf(last))
	fmt.Fprintf(w, "Sequence failures: %d\n", s.SequenceFailures)
	printIgnored(w, s, res.Reports)
	if !r.quiet {
		fmt.Fprintf(w, "Time window: %s - %s\n", FmtTime(first, r.o.loc), FmtTime(last, r.o.loc))
	}
	return nil
}

func unixOr0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func msOf(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return t.Nanosecond() / 1e6
}

func (r *queryRender) stats(res *query.Result, top int) error {
	r.names = query.NewIfNames(res.Reports)
	if r.jsonOut() {
		return r.printJSON(query.NewStatsJSON(res))
	}
	for i := range res.Stats {
		if i > 0 {
			r.w.WriteString("\n")
		}
		st := &res.Stats[i]
		if st.Element == query.ElemRecord {
			r.recordStat(st, top)
			continue
		}
		r.statTable(st, top, &res.Total)
	}
	if !r.quiet {
		r.w.WriteString("\n")
		r.totalsFooter(res)
	}
	return nil
}

func (r *queryRender) recordStat(st *query.StatTable, top int) {
	if !r.quiet {
		fmt.Fprintf(r.w, "Aggregated flows %d\nTop %d flows ordered by %s:\n", st.Distinct, top, st.Order)
		r.w.WriteString(r.out.text.header() + "\n")
	}
	for i := range st.Rows {
		r.row(&st.Rows[i])
	}
}

func (r *queryRender) statTable(st *query.StatTable, top int, total *query.Counter) {
	e, w, o := st.Element, r.w, r.o
	if !r.quiet {
		if top > 0 {
			fmt.Fprintf(w, "Top %d %s ordered by %s:\n", top, e.Title(), st.Order)
		} else {
			fmt.Fprintf(w, "Top %s ordered by %s:\n", e.Title(), st.Order) // -n 0: every entry
		}
		// nfdump 1.7.1's layout, its header's spacing included.
		fmt.Fprintf(w, "%-23s %16s %-5s  %16s    Flows(%%)     Packets(%%)       Bytes(%%)         pps      bps   bpp\n",
			"Date first seen", "Duration", "Proto", e.Title())
	}
	for _, en := range st.Entries {
		proto := "any"
		if e == query.ElemProto {
			proto = protoText(uint8(en.Value.Num), o)
		}
		fmt.Fprintf(w, "%-23s %16s %-5s  %16s %8s(%4.1f) %8s(%4.1f) %8s(%4.1f) %8s %8s %5d\n",
			fmtTS(en.FirstSeen(), o), fmtDurationOpt(en.DurationMs(), o), proto, r.statValue(e, en.Value),
			scaled(en.Flows, o), query.Pct(en.Flows, total.Flows), scaled(en.Packets, o), query.Pct(en.Packets, total.Packets),
			scaled(en.Bytes, o), query.Pct(en.Bytes, total.Bytes), scaled(en.PPS(), o), scaled(en.BPS(), o), en.BPP())
	}
}

// PrintRecords prints records in the given format (a predefined format
// or fmt:...), with its header. ifName, when set, names interfaces for %in
// and %out.
func PrintRecords(w io.Writer, recs []flow.Record, format string, loc *time.Location, ifName func(uint32) string) error {
	bw := bufio.NewWriter(w)
	line, err := compileFormat(format)
	if err != nil {
		return err
	}
	r := &queryRender{w: bw, o: &fmtOpts{loc: loc, ifName: ifName}, out: outFormat{text: line}}
	r.listHeader()
	row := query.Row{Flows: 1}
	for i := range recs {
		row.Record = recs[i]
		r.row(&row)
	}
	return bw.Flush()
}

// printIgnored prints, per exporter that reported its statistics, the
// packets and bytes in its flows next to those it said it ignored: the
// two add up to what it saw.
func printIgnored(w io.Writer, s *flowfile.Summary, reps []flowfile.ExporterReport) {
	for _, rep := range reps {
		if !rep.HasStats {
			continue
		}
		var c flowfile.Counters
		for _, x := range s.Exporters {
			if x.Addr == rep.Addr && x.ObservationDomain == rep.Domain {
				c = x.Counters
			}
		}
		fmt.Fprintf(w, "Exporter %s domain %d: flows %d packets %d bytes %d ignored packets %d ignored bytes %d\n",
			query.ElemExporter.Format(query.Value{Addr: rep.Addr}), rep.Domain, c.Flows, c.Packets, c.Octets, rep.IgnoredPackets, rep.IgnoredOctets)
	}
}

// statValue prints a statistic's value: an interface by the name its
// exporters gave it, when they gave one.
func (r *queryRender) statValue(e query.Element, v query.Value) string {
	if e.IsInterface() && v.Num != 0 {
		if n := r.names.Index(v.Num); n != "" {
			return n
		}
	}
	return e.Format(v)
}

// PrintCounts prints the flows, packets and bytes of s, in all and per
// protocol, one "Name: value" line each, names padded to width (nfdump's
// -I lines with 0, kflow file stat's with 11).
func PrintCounts(w io.Writer, s *flowfile.Summary, width int) {
	for _, row := range []struct {
		name string
		get  func(flowfile.Counters) uint64
	}{
		{"Flows", func(c flowfile.Counters) uint64 { return c.Flows }},
		{"Packets", func(c flowfile.Counters) uint64 { return c.Packets }},
		{"Bytes", func(c flowfile.Counters) uint64 { return c.Octets }},
	} {
		fmt.Fprintf(w, "%-*s: %d\n", width, row.name, row.get(s.Total))
		for _, p := range []struct {
			n string
			c flowfile.Counters
		}{{"tcp", s.TCP}, {"udp", s.UDP}, {"icmp", s.ICMP}, {"other", s.Other}} {
			fmt.Fprintf(w, "%-*s: %d\n", width, row.name+"_"+p.n, row.get(p.c))
		}
	}
}
