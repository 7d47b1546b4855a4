// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// queryArgs are the options of "kflow file query", named like nfdump's.
type queryArgs struct {
	fileArgs
	read       []string // -r/-R
	multi      []string // -M
	window     string   // -t
	filterFile string   // -f
	stats      []string // -s
	top        int      // -n
	aggregate  string   // -A
	fiveTuple  bool     // -a
	bidir      bool     // -b
	bidirGuess bool     // -B
	summary    bool     // -I
	order      string   // -O
	limit      uint64   // -c
	output     string   // -o
	quiet      bool     // -q
	plain      bool     // -N
	check      bool     // -Z
	fs         *pflag.FlagSet
}

func (q *queryArgs) register(fs *pflag.FlagSet) {
	q.fs = fs
	q.fileArgs.register(fs)
	fs.StringArrayVarP(&q.read, "read", "r", nil, "read `PATH`: a flow file or a directory tree (repeatable)")
	fs.StringArrayVarP(&q.read, "recursive", "R", nil, "same as -r (nfdump habit: -R `DIR` reads DIR recursively)")
	fs.StringArrayVarP(&q.multi, "multi", "M", nil, "read several directories: `DIR1:DIR2:...` (names after the first are siblings of it); with -r, read -r PATH under each")
	fs.StringVarP(&q.window, "time", "t", "", "time `WINDOW` START[-END], YYYY/MM/dd.hh:mm:ss or RFC 3339; selects files by name, then records")
	fs.StringVarP(&q.filterFile, "filter-file", "f", "", "read the filter from `FILE`")
	fs.StringArrayVarP(&q.stats, "stat", "s", nil, "top-N statistic `ELEM[/ORDER...]`: srcip dstip ip srcport dstport port proto flags tos inif outif if vlan exporter dir record; by flows packets bytes pps bps bpp (repeatable)")
	fs.IntVarP(&q.top, "top", "n", 10, "print the top `N` of statistics (0: all); given with -O, -A, -a, -B or -b: print the first N records")
	fs.StringVarP(&q.aggregate, "aggregate", "A", "", "aggregate records by `FIELDS`: srcip,dstip,srcport,dstport,proto, srcip4/N, dstip6/N ...")
	fs.BoolVarP(&q.fiveTuple, "aggregate-flows", "a", false, "aggregate records by the five-tuple")
	fs.BoolVarP(&q.bidir, "bidir", "b", false, "pair both directions of a connection into one record")
	fs.BoolVarP(&q.bidirGuess, "bidir-guess", "B", false, "as -b, turning TCP/UDP pairs so the lower port is the server's")
	fs.BoolVarP(&q.summary, "info", "I", false, "print a summary of the selected records (flows, packets, bytes per protocol)")
	fs.StringVarP(&q.order, "order", "O", "", "sort records by `ORDER`: tstart tend flows packets bytes pps bps bpp duration")
	fs.Uint64VarP(&q.limit, "count", "c", 0, "process the first `N` records that pass the filter (0: all)")
	fs.StringVarP(&q.output, "output", "o", "", "output `FORMAT`: line long extended biline bilong csv json ndjson fmt:%ts %sa ... (default line)")
	fs.BoolVarP(&q.quiet, "quiet", "q", false, "no headers and no summary lines")
	fs.BoolVarP(&q.plain, "plain", "N", false, "plain numbers: do not scale to M, G")
	fs.BoolVarP(&q.check, "check", "Z", false, "check the filter's syntax and exit")
}

func fileQueryCmd() *command {
	q := &queryArgs{}
	return &command{
		name:    "query",
		summary: "filter flow files and print records, top-N statistics, aggregations or a summary (like nfdump)",
		usage:   "[FILE|DIR...] [FILTER]",
		flags:   q.register,
		run:     func(e *env, args []string) error { return q.run(e, args) },
	}
}

// filterError turns a filter syntax error into a usage error whose text
// shows the filter with a caret under the offending token.
func filterError(err error) error {
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: filter: %v\n  %s", errUsage, se, strings.ReplaceAll(se.Caret(), "\n", "\n  "))
	}
	return fmt.Errorf("%w: filter: %v", errUsage, err)
}

// inputs splits the arguments into paths (the leading ones that exist) and
// the filter (the rest), and adds -r/-R/-M.
func (q *queryArgs) inputs(args []string) (paths []string, filterText string) {
	i := 0
	for ; i < len(args); i++ {
		if _, err := os.Stat(args[i]); err != nil {
			break
		}
		paths = append(paths, args[i])
	}
	var multi []string
	for _, m := range q.multi {
		parts := strings.Split(m, ":")
		parent := filepath.Dir(parts[0])
		multi = append(multi, parts[0])
		for _, p := range parts[1:] {
			if !filepath.IsAbs(p) && !strings.Contains(p, "/") {
				p = filepath.Join(parent, p)
			}
			multi = append(multi, p)
		}
	}
	switch {
	case len(multi) > 0 && len(q.read) > 0:
		for _, m := range multi {
			for _, r := range q.read {
				paths = append(paths, filepath.Join(m, r))
			}
		}
	default:
		paths = append(paths, multi...)
		paths = append(paths, q.read...)
	}
	return paths, strings.Join(args[i:], " ")
}

func (q *queryArgs) run(e *env, args []string) error {
	paths, text := q.inputs(args)
	if q.filterFile != "" {
		if strings.TrimSpace(text) != "" {
			return fmt.Errorf("%w: give the filter either on the command line or with -f, not both", errUsage)
		}
		b, err := os.ReadFile(q.filterFile)
		if err != nil {
			return fmt.Errorf("read filter: %w", err)
		}
		text = string(b)
	}
	flt, err := filter.Parse(text)
	if err != nil {
		return filterError(err)
	}
	if q.check {
		return nil
	}
	if !q.fs.Changed("top") && len(q.stats) == 0 {
		q.top = 0 // listings are not cut unless asked
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: no FILE or DIR given (kflow file query [OPTIONS] FILE|DIR... [FILTER])", errUsage)
	}
	opts := &fmtOpts{loc: q.loc(), plain: q.plain}
	var win query.Window
	if q.window != "" {
		if win, err = query.ParseWindow(q.window, opts.loc); err != nil {
			return fmt.Errorf("%w: -t: %v", errUsage, err)
		}
	}
	plan, err := q.plan()
	if err != nil {
		return err
	}
	files, err := query.Files(query.Select{Paths: paths, Prefix: q.prefix, Window: win})
	if err != nil {
		return err
	}
	sc := &query.Scanner{Filter: flt, Window: win, Limit: q.limit}
	bw := bufio.NewWriterSize(e.stdout, 64<<10)
	defer bw.Flush()
	out := &queryOut{e: e, w: bw, q: q, o: opts, plan: plan}
	return out.run(sc, files)
}

// queryPlan is what a query computes, decided from the options.
type queryPlan struct {
	stats    []query.StatSpec
	aggSpec  *query.AggSpec // listing of aggregated records
	bidir    query.Bidir
	order    query.Order
	ordered  bool
	format   recordFormat
	special  string // csv, json, ndjson or "" for a text format
	recStats bool   // a "record" statistic needs the aggregator
}

func (q *queryArgs) plan() (*queryPlan, error) {
	p := &queryPlan{}
	for _, s := range q.stats {
		spec, err := query.ParseStat(s)
		if err != nil {
			return nil, fmt.Errorf("%w: -s: %v", errUsage, err)
		}
		p.stats = append(p.stats, spec)
		p.recStats = p.recStats || spec.Element == query.ElemRecord
	}
	if q.bidir && q.bidirGuess {
		return nil, fmt.Errorf("%w: -b and -B exclude each other", errUsage)
	}
	switch {
	case q.bidirGuess:
		p.bidir = query.PairedGuess
	case q.bidir:
		p.bidir = query.Paired
	}
	if q.aggregate != "" {
		if p.bidir != query.Unidirectional {
			return nil, fmt.Errorf("%w: -A cannot be combined with -b or -B (they pair five-tuples)", errUsage)
		}
		spec, err := query.ParseAggSpec(q.aggregate)
		if err != nil {
			return nil, fmt.Errorf("%w: -A: %v", errUsage, err)
		}
		p.aggSpec = &spec
	} else if q.fiveTuple || p.bidir != query.Unidirectional {
		spec := query.FiveTuple()
		p.aggSpec = &spec
	}
	if q.order != "" {
		o, ok := query.ParseOrder(q.order)
		if !ok {
			return nil, fmt.Errorf("%w: -O %q: want tstart, tend, flows, packets, bytes, pps, bps, bpp or duration", errUsage, q.order)
		}
		p.order, p.ordered = o, true
	}
	outSpec := q.output
	switch outSpec {
	case "csv", "json", "ndjson":
		p.special = outSpec
		return p, nil
	case "":
		outSpec = "line"
		if p.bidir != query.Unidirectional {
			outSpec = "biline"
		} else if p.aggSpec != nil {
			outSpec = aggFormat(*p.aggSpec)
		}
	}
	f, err := compileFormat(outSpec)
	if err != nil {
		return nil, fmt.Errorf("%w: -o: %v", errUsage, err)
	}
	p.format = f
	return p, nil
}

// aggFormat is nfdump's automatic format for -A: the kept fields between
// the times and the counters.
func aggFormat(a query.AggSpec) string {
	f := "fmt:%ts %td"
	if a.Proto {
		f += " %pr"
	}
	switch {
	case a.SrcIP && a.SrcPort:
		f += " %sap"
	case a.SrcIP:
		f += " %sa"
	case a.SrcPort:
		f += " %sp"
	}
	if (a.SrcIP || a.SrcPort) && (a.DstIP || a.DstPort) {
		f += " ->"
	}
	switch {
	case a.DstIP && a.DstPort:
		f += " %dap"
	case a.DstIP:
		f += " %da"
	case a.DstPort:
		f += " %dp"
	}
	return f + " %pkt %byt %bps %bpp %fl"
}

// queryOut runs a plan and prints the result.
type queryOut struct {
	e    *env
	w    *bufio.Writer
	q    *queryArgs
	o    *fmtOpts
	plan *queryPlan
	line []byte
}

func (x *queryOut) jsonOut() bool {
	return x.plan.special == "json" || x.plan.special == "ndjson" || (x.e.json && x.q.output == "")
}

func (x *queryOut) run(sc *query.Scanner, files []query.File) error {
	p, q := x.plan, x.q
	ctx := x.e.ctx
	var (
		sum   query.Summary
		stats []*query.Stat
		agg   *query.Aggregator
		rows  []flow.Record
		total query.Counter
	)
	for _, s := range p.stats {
		if s.Element != query.ElemRecord {
			stats = append(stats, query.NewStat(s))
		}
	}
	listing := !q.summary && len(p.stats) == 0
	if p.aggSpec != nil && (listing || p.recStats) {
		agg = query.NewAggregator(*p.aggSpec, p.bidir)
	} else if p.recStats {
		agg = query.NewAggregator(query.FiveTuple(), query.Unidirectional)
	}
	stream := listing && agg == nil && !p.ordered
	if stream {
		x.listHeader()
	}
	n := 0
	var fn func(r *flow.Record)
	switch {
	case q.summary:
		fn = sum.Add
	default:
		fn = func(r *flow.Record) {
			total.Add(r)
			for _, s := range stats {
				s.Add(r)
			}
			if agg != nil {
				agg.Add(r)
			}
			switch {
			case stream:
				x.printRow(&row{r: r, flows: 1}, n)
				n++
			case listing && agg == nil:
				rows = append(rows, *r)
			}
		}
	}
	// -I over whole files reads their stored summaries.
	if q.summary && sc.Filter.MatchesAll() && sc.Window.IsZero() && sc.Limit == 0 {
		st, ok := x.storedSummary(files, &sum)
		if ok {
			return x.printSummary(&sum, st)
		}
		sum = query.Summary{}
	}
	var st query.ScanStats
	var err error
	if !listing && agg == nil {
		// Summaries and statistics do not depend on the order: each
		// worker counts on its own, reading only the fields needed.
		st, err = x.scanEach(sc, files, &sum, stats, &total)
	} else {
		st, err = sc.Scan(ctx, files, fn)
	}
	if err != nil {
		return err
	}
	if st.CorruptBlocks > 0 {
		x.e.log.Warn("corrupt blocks skipped", "blocks", st.CorruptBlocks)
	}
	switch {
	case q.summary:
		return x.printSummary(&sum, st)
	case len(p.stats) > 0:
		return x.printStats(p.stats, stats, agg, &total, st)
	case agg != nil:
		aggs := agg.Records()
		if p.ordered {
			aggs = sortAggs(aggs, p.order)
		}
		if q.top > 0 && len(aggs) > q.top {
			aggs = aggs[:q.top]
		}
		x.listHeader()
		for i, g := range aggs {
			x.printRow(aggRow(g), i)
		}
		x.listFooter(len(aggs), &total, st)
	case !stream:
		sortRecords(rows, p.order)
		if q.top > 0 && len(rows) > q.top {
			rows = rows[:q.top]
		}
		x.listHeader()
		for i := range rows {
			x.printRow(&row{r: &rows[i], flows: 1}, i)
		}
		x.listFooter(len(rows), &total, st)
	default:
		x.listFooter(n, &total, st)
	}
	return nil
}

// scanEach counts what run's callback counts for a summary (-I) or
// statistics without the aggregator, with one set of counters per worker,
// merged into sum, stats and total at the end.
func (x *queryOut) scanEach(sc *query.Scanner, files []query.File, sum *query.Summary, stats []*query.Stat, total *query.Counter) (query.ScanStats, error) {
	type counts struct {
		sum   query.Summary
		total query.Counter
		stats []*query.Stat
	}
	sc.Fields = query.SummaryFields
	if !x.q.summary {
		sc.Fields = query.CounterFields
		for _, s := range stats {
			sc.Fields |= s.Spec.Element.Fields()
		}
	}
	per := make([]*counts, sc.NumWorkers())
	st, err := sc.ScanEach(x.e.ctx, files, func(w int, r *flow.Record) {
		c := per[w]
		if c == nil {
			c = &counts{}
			for _, s := range stats {
				c.stats = append(c.stats, query.NewStat(s.Spec))
			}
			per[w] = c
		}
		if x.q.summary {
			c.sum.Add(r)
			return
		}
		c.total.Add(r)
		for _, s := range c.stats {
			s.Add(r)
		}
	})
	for _, c := range per {
		if c == nil {
			continue
		}
		sum.Merge(&c.sum)
		total.Merge(c.total)
		for i, s := range c.stats {
			stats[i].Merge(s)
		}
	}
	return st, err
}

func aggRow(g *query.Agg) *row {
	return &row{r: &g.Rec, flows: g.Flows, outPackets: g.Out.Packets, outBytes: g.Out.Bytes}
}

func sortRecords(rows []flow.Record, o query.Order) {
	key := func(r *flow.Record) uint64 {
		switch o {
		case query.ByPackets:
			return r.Packets
		case query.ByBytes:
			return r.Octets
		case query.ByPPS:
			return filter.PPS(r)
		case query.ByBPS:
			return filter.BPS(r)
		case query.ByBPP:
			return filter.BPP(r)
		case query.ByDuration:
			return filter.DurationMs(r)
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b flow.Record) int {
		switch o {
		case query.ByStart:
			return a.Start.Compare(b.Start)
		case query.ByEnd:
			return a.End.Compare(b.End)
		case query.ByFlows:
			return 0
		}
		return cmp.Compare(key(&b), key(&a))
	})
}

func sortAggs(aggs []*query.Agg, o query.Order) []*query.Agg {
	out := slices.Clone(aggs)
	slices.SortStableFunc(out, func(a, b *query.Agg) int {
		switch o {
		case query.ByStart:
			return a.Rec.Start.Compare(b.Rec.Start)
		case query.ByEnd:
			return a.Rec.End.Compare(b.Rec.End)
		}
		ca, cb := a.Counter(), b.Counter()
		ca.Packets += a.Out.Packets
		ca.Bytes += a.Out.Bytes
		cb.Packets += b.Out.Packets
		cb.Bytes += b.Out.Bytes
		return cmp.Compare(orderValue(&cb, o), orderValue(&ca, o))
	})
	return out
}

func orderValue(c *query.Counter, o query.Order) uint64 {
	switch o {
	case query.ByFlows:
		return c.Flows
	case query.ByPackets:
		return c.Packets
	case query.ByBytes:
		return c.Bytes
	case query.ByPPS:
		return c.PPS()
	case query.ByBPS:
		return c.BPS()
	case query.ByBPP:
		return c.BPP()
	case query.ByDuration:
		return c.DurationMs()
	}
	return 0
}

func (x *queryOut) listHeader() {
	switch {
	case x.jsonOut():
		if x.plan.special == "json" {
			x.w.WriteString("[")
		}
	case x.plan.special == "csv":
		x.w.WriteString(csvHeader + "\n")
	case !x.q.quiet:
		x.w.WriteString(x.plan.format.header() + "\n")
	}
}

func (x *queryOut) printRow(w *row, i int) {
	switch {
	case x.jsonOut():
		b, _ := json.Marshal(toQueryJSON(w))
		if x.plan.special == "json" {
			if i > 0 {
				x.w.WriteString(",")
			}
			x.w.WriteString("\n")
			x.w.Write(b)
			return
		}
		x.w.Write(b)
		x.w.WriteByte('\n')
	case x.plan.special == "csv":
		x.line = csvRow(x.line[:0], w, x.o)
		x.line = append(x.line, '\n')
		x.w.Write(x.line)
	default:
		x.line = x.plan.format.format(x.line[:0], w, x.o)
		x.line = append(x.line, '\n')
		x.w.Write(x.line)
	}
}

func (x *queryOut) listFooter(n int, total *query.Counter, st query.ScanStats) {
	switch {
	case x.jsonOut():
		if x.plan.special == "json" {
			if n > 0 {
				x.w.WriteString("\n")
			}
			x.w.WriteString("]\n")
		}
		return
	case x.plan.special == "csv" || x.q.quiet:
		return
	}
	x.totalsFooter(total, st)
}

// totalsFooter prints nfdump's closing lines.
func (x *queryOut) totalsFooter(total *query.Counter, st query.ScanStats) {
	fmt.Fprintf(x.w, "Summary: total flows: %d, total bytes: %s, total packets: %s, avg bps: %s, avg pps: %s, avg bpp: %d\n",
		total.Flows, scaled(total.Bytes, x.o), scaled(total.Packets, x.o), scaled(total.BPS(), x.o), scaled(total.PPS(), x.o), total.BPP())
	fmt.Fprintf(x.w, "Time window: %s - %s\n", fmtTime(total.FirstSeen(), x.o.loc), fmtTime(total.LastSeen(), x.o.loc))
	fmt.Fprintf(x.w, "Total flows processed: %d, passed: %d, blocks skipped: %d, files: %d\n", st.Read, st.Passed, st.CorruptBlocks, st.Files)
}

// storedSummary sums the stored summaries of files closed cleanly; ok is
// false when a file has none (it must be scanned).
func (x *queryOut) storedSummary(files []query.File, sum *query.Summary) (query.ScanStats, bool) {
	st := query.ScanStats{}
	for _, f := range files {
		s, ok, err := readStoredSummary(f.Path)
		if err != nil || !ok {
			return st, false
		}
		sum.AddStored(s)
		st.Files++
		st.Read += s.Total.Flows
		st.Passed += s.Total.Flows
	}
	return st, true
}

func (x *queryOut) printSummary(s *query.Summary, st query.ScanStats) error {
	if x.e.json || x.jsonOut() {
		return x.printJSON(summaryOut(s, st))
	}
	w := x.w
	fmt.Fprintf(w, "Files: %d\n", st.Files)
	rows := []struct {
		name string
		get  func(*query.Counter) uint64
	}{
		{"Flows", func(c *query.Counter) uint64 { return c.Flows }},
		{"Packets", func(c *query.Counter) uint64 { return c.Packets }},
		{"Bytes", func(c *query.Counter) uint64 { return c.Bytes }},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s: %d\n", r.name, r.get(&s.Total))
		for _, p := range []struct {
			n string
			c *query.Counter
		}{{"tcp", &s.TCP}, {"udp", &s.UDP}, {"icmp", &s.ICMP}, {"other", &s.Other}} {
			fmt.Fprintf(w, "%s_%s: %d\n", r.name, p.n, r.get(p.c))
		}
	}
	first, last := s.Total.FirstSeen(), s.Total.LastSeen()
	fmt.Fprintf(w, "First: %d\nLast: %d\nmsec_first: %d\nmsec_last: %d\n",
		unixOr0(first), unixOr0(last), msOf(first), msOf(last))
	fmt.Fprintf(w, "Sequence failures: %d\n", s.SequenceFailures)
	if !x.q.quiet {
		fmt.Fprintf(w, "Time window: %s - %s\n", fmtTime(first, x.o.loc), fmtTime(last, x.o.loc))
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

func (x *queryOut) printJSON(v any) error {
	enc := json.NewEncoder(x.w)
	if x.e.pretty {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// JSON shapes of statistics and summaries.

type counterJSON struct {
	Flows   uint64     `json:"flows"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
	First   *time.Time `json:"first,omitempty"`
	Last    *time.Time `json:"last,omitempty"`
}

func toCounterJSON(c *query.Counter) counterJSON {
	j := counterJSON{Flows: c.Flows, Packets: c.Packets, Bytes: c.Bytes}
	if t := c.FirstSeen(); !t.IsZero() {
		j.First = &t
	}
	if t := c.LastSeen(); !t.IsZero() {
		j.Last = &t
	}
	return j
}

type querySummaryJSON struct {
	Files            int         `json:"files"`
	Total            counterJSON `json:"total"`
	TCP              counterJSON `json:"tcp"`
	UDP              counterJSON `json:"udp"`
	ICMP             counterJSON `json:"icmp"`
	Other            counterJSON `json:"other"`
	SequenceFailures uint64      `json:"sequence_failures"`
}

func summaryOut(s *query.Summary, st query.ScanStats) querySummaryJSON {
	return querySummaryJSON{Files: st.Files, Total: toCounterJSON(&s.Total), TCP: toCounterJSON(&s.TCP),
		UDP: toCounterJSON(&s.UDP), ICMP: toCounterJSON(&s.ICMP), Other: toCounterJSON(&s.Other),
		SequenceFailures: s.SequenceFailures}
}

type statEntryJSON struct {
	Value string `json:"value"`
	counterJSON
	Pps        uint64  `json:"pps"`
	Bps        uint64  `json:"bps"`
	Bpp        uint64  `json:"bpp"`
	FlowsPct   float64 `json:"flows_pct"`
	PacketsPct float64 `json:"packets_pct"`
	BytesPct   float64 `json:"bytes_pct"`
}

type statJSON struct {
	Element string            `json:"element"`
	Order   string            `json:"order"`
	Top     []statEntryJSON   `json:"top"`
	Records []queryRecordJSON `json:"records,omitempty"`
}

type statsJSON struct {
	Stats []statJSON  `json:"stats"`
	Total counterJSON `json:"total"`
	Read  uint64      `json:"records_read"`
	Files int         `json:"files"`
}

func pct(v, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(v) * 100 / float64(total)
}

// statValue prints an element value as nfdump does.
func statValue(e query.Element, v query.Value) string {
	switch {
	case e.IsAddr():
		if !v.Addr.IsValid() {
			return "local"
		}
		return v.Addr.String()
	case e == query.ElemFlags:
		return tcpFlags(uint16(v.Num))
	case e == query.ElemDir:
		return flow.Direction(v.Num).String()
	}
	return fmt.Sprint(v.Num)
}

func (x *queryOut) topN() int { return max(x.q.top, 0) }

func (x *queryOut) printStats(specs []query.StatSpec, stats []*query.Stat, agg *query.Aggregator, total *query.Counter, st query.ScanStats) error {
	n := x.topN()
	var js statsJSON
	si := 0
	for k, spec := range specs {
		var s *query.Stat
		if spec.Element != query.ElemRecord {
			s = stats[si]
			si++
		}
		for _, o := range spec.Orders {
			if x.e.json || x.jsonOut() {
				sj := statJSON{Element: spec.Element.Name(), Order: o.String(), Top: []statEntryJSON{}}
				if s == nil {
					for _, g := range agg.Top(o, n) {
						sj.Records = append(sj.Records, toQueryJSON(aggRow(g)))
					}
				} else {
					for _, en := range s.Top(o, n) {
						sj.Top = append(sj.Top, statEntryJSON{Value: statValue(spec.Element, en.Value), counterJSON: toCounterJSON(&en.Counter),
							Pps: en.PPS(), Bps: en.BPS(), Bpp: en.BPP(), FlowsPct: pct(en.Flows, total.Flows),
							PacketsPct: pct(en.Packets, total.Packets), BytesPct: pct(en.Bytes, total.Bytes)})
					}
				}
				js.Stats = append(js.Stats, sj)
				continue
			}
			if k > 0 || o != spec.Orders[0] {
				x.w.WriteString("\n")
			}
			if s == nil {
				x.printRecordStat(agg, o, n)
				continue
			}
			x.printStatTable(s, o, n, total)
		}
	}
	if x.e.json || x.jsonOut() {
		js.Total, js.Read, js.Files = toCounterJSON(total), st.Read, st.Files
		return x.printJSON(js)
	}
	if !x.q.quiet {
		x.w.WriteString("\n")
		x.totalsFooter(total, st)
	}
	return nil
}

func (x *queryOut) printRecordStat(agg *query.Aggregator, o query.Order, n int) {
	if !x.q.quiet {
		fmt.Fprintf(x.w, "Aggregated flows %d\nTop %d flows ordered by %s:\n", agg.Len(), n, o)
		x.w.WriteString(x.plan.format.header() + "\n")
	}
	for i, g := range agg.Top(o, n) {
		x.printRow(aggRow(g), i)
	}
}

func (x *queryOut) printStatTable(s *query.Stat, o query.Order, n int, total *query.Counter) {
	e := s.Spec.Element
	w := x.w
	if !x.q.quiet {
		fmt.Fprintf(w, "Top %d %s ordered by %s:\n", n, e.Title(), o)
		fmt.Fprintf(w, "%-23s %12s %-5s %16s %14s %14s %16s %8s %8s %6s\n", "Date first seen", "Duration", "Proto", e.Title(),
			"Flows(%)", "Packets(%)", "Bytes(%)", "pps", "bps", "bpp")
	}
	for _, en := range s.Top(o, n) {
		proto := "any"
		if e == query.ElemProto {
			proto = protoLabel(uint8(en.Value.Num))
		}
		fmt.Fprintf(w, "%-23s %12s %-5s %16s %14s %14s %16s %8s %8s %6d\n",
			fmtTS(en.FirstSeen(), x.o), fmtDuration(en.DurationMs()), proto, statValue(e, en.Value),
			withPct(scaled(en.Flows, x.o), en.Flows, total.Flows), withPct(scaled(en.Packets, x.o), en.Packets, total.Packets),
			withPct(scaled(en.Bytes, x.o), en.Bytes, total.Bytes), scaled(en.PPS(), x.o), scaled(en.BPS(), x.o), en.BPP())
	}
}

func withPct(s string, v, total uint64) string {
	return fmt.Sprintf("%s(%4.1f)", s, pct(v, total))
}

// readStoredSummary returns the summary a clean file carries.
func readStoredSummary(path string) (flowfile.Summary, bool, error) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return flowfile.Summary{}, false, err
	}
	defer r.Close()
	s, ok := r.Summary()
	return s, ok, nil
}
