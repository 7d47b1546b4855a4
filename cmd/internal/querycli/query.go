// SPDX-License-Identifier: Apache-2.0

package querycli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
)

// Args are the options of a query, named like nfdump's.
type Args struct {
	FileArgs
	// OpenClickHouse, when set, adds --clickhouse URL: the questions go
	// to that database instead of flow files.
	OpenClickHouse func(url string) (query.Backend, error)

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
	cpuProfile string   // hidden: a Go CPU profile of the query
	clickhouse string   // --clickhouse
	fs         *pflag.FlagSet
}

// Register adds the options to fs.
func (q *Args) Register(fs *pflag.FlagSet) {
	q.fs = fs
	q.FileArgs.Register(fs)
	fs.StringArrayVarP(&q.read, "read", "r", nil, "read `PATH`: a flow file or a directory tree (repeatable)")
	fs.StringArrayVarP(&q.read, "recursive", "R", nil, "same as -r (nfdump habit: -R `DIR` reads DIR recursively)")
	fs.StringArrayVarP(&q.multi, "multi", "M", nil, "read several directories: `DIR1:DIR2:...` (names after the first are siblings of it); with -r, read -r PATH under each")
	fs.StringVarP(&q.window, "time", "t", "", "time `WINDOW` START[-END], YYYY/MM/dd.hh:mm:ss or RFC 3339; selects files by name, then records")
	fs.StringVarP(&q.filterFile, "filter-file", "f", "", "read the filter from `FILE`")
	fs.StringArrayVarP(&q.stats, "stat", "s", nil, "top-N statistic `ELEM[/ORDER...]`: srcip dstip ip srcport dstport port proto flags tos inif outif if vlan exporter dir ident record; by flows packets bytes pps bps bpp (repeatable)")
	fs.IntVarP(&q.top, "top", "n", 10, "print the top `N` of statistics (0: all); given with -O, -A, -a, -B or -b: print the first N records")
	fs.StringVarP(&q.aggregate, "aggregate", "A", "", "aggregate records by `FIELDS`: srcip,dstip,srcport,dstport,proto, srcip4/N, dstip6/N ...")
	fs.BoolVarP(&q.fiveTuple, "aggregate-flows", "a", false, "aggregate records by the five-tuple")
	fs.BoolVarP(&q.bidir, "bidir", "b", false, "pair both directions of a connection into one record")
	fs.BoolVarP(&q.bidirGuess, "bidir-guess", "B", false, "as -b, turning TCP/UDP pairs so the lower port is the server's")
	fs.BoolVarP(&q.summary, "info", "I", false, "print a summary of the selected records (flows, packets, bytes per protocol)")
	fs.StringVarP(&q.order, "order", "O", "", "sort records by `ORDER`: tstart tend flows packets bytes pps bps bpp duration")
	fs.Uint64VarP(&q.limit, "count", "c", 0, "process the first `N` records that pass the filter (0: all)")
	fs.StringVarP(&q.output, "output", "o", "", "output `FORMAT`: line long extended biline bilong csv json (nfdump 1.7's), ndjson kflow-csv kflow-json (kflow's), fmt:%ts %sa ... (default line)")
	fs.BoolVarP(&q.quiet, "quiet", "q", false, "no headers and no summary lines")
	fs.BoolVarP(&q.plain, "plain", "N", false, "plain numbers: do not scale to M, G")
	fs.BoolVarP(&q.check, "check", "Z", false, "check the filter's syntax and exit")
	fs.StringVar(&q.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the query to `FILE`")
	_ = fs.MarkHidden("cpu-profile")
	if q.OpenClickHouse != nil {
		fs.StringVar(&q.clickhouse, "clickhouse", "", "ask the ClickHouse database at `URL` (http://user:pass@host:8123/kflow) instead of flow files")
	}
}

// inputs splits the arguments into paths (the leading ones that exist) and
// the filter (the rest), and adds -r/-R/-M.
func (q *Args) inputs(args []string) (paths []string, filterText string) {
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

// Run answers the question the options and args (paths, then the
// filter) ask, printed to e.Stdout.
func (q *Args) Run(e *Env, args []string) error {
	paths, text := q.inputs(args)
	if q.filterFile != "" {
		if strings.TrimSpace(text) != "" {
			return fmt.Errorf("%w: give the filter either on the command line or with -f, not both", ErrUsage)
		}
		b, err := os.ReadFile(q.filterFile)
		if err != nil {
			return fmt.Errorf("read filter: %w", err)
		}
		text = string(b)
	}
	flt, err := filter.Parse(text)
	if err != nil {
		return FilterError(err)
	}
	if q.check {
		return nil
	}
	switch {
	case len(paths) == 0 && q.OpenClickHouse == nil:
		return fmt.Errorf("%w: no FILE or DIR given ([OPTIONS] FILE|DIR... [FILTER], or -R DIR)", ErrUsage)
	case len(paths) == 0 && q.clickhouse == "":
		return fmt.Errorf("%w: no FILE or DIR given ([OPTIONS] FILE|DIR... [FILTER], or --clickhouse URL)", ErrUsage)
	case len(paths) > 0 && q.clickhouse != "":
		return fmt.Errorf("%w: give flow files or --clickhouse, not both", ErrUsage)
	}
	opts := &fmtOpts{loc: q.Loc(), plain: q.plain}
	req, err := q.Request(flt, opts.loc)
	if err != nil {
		return err
	}
	out, err := q.outputFormat(req)
	if err != nil {
		return err
	}
	if e.JSON && q.output == "" {
		out = outFormat{special: "ndjson"}
	}
	bw := bufio.NewWriterSize(e.Stdout, 64<<10)
	defer bw.Flush()
	r := &queryRender{e: e, w: bw, o: opts, quiet: q.quiet, out: out}
	kind := req.Kind()
	if (kind == query.KindRecords || kind == query.KindAggregates) && !req.Ordered {
		r.listHeader()
		req.Stream = func(w *query.Row) error {
			r.row(w)
			return nil
		}
	}
	if q.cpuProfile != "" {
		stop, err := StartCPUProfile(q.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	fb := &query.FileBackend{Paths: paths, Prefix: q.Prefix}
	var b query.Backend = fb
	if q.clickhouse == "" && kind != query.KindSummary && out.text.namesInterfaces() {
		// Interfaces by the names their exporters gave, for %in and %out
		// (statistics tables name them from the result's reports).
		if names, err := fb.Interfaces(req.Window); err == nil && names.Len() > 0 {
			opts.names = names
		}
	}
	if q.clickhouse != "" {
		if b, err = q.OpenClickHouse(q.clickhouse); err != nil {
			return fmt.Errorf("%w: --clickhouse: %v", ErrUsage, err)
		}
	}
	res, err := b.Query(e.Ctx, req)
	if err != nil {
		if errors.Is(err, query.ErrRequest) {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		return err
	}
	WarnScan(e.Log, &res.Scan)
	switch kind {
	case query.KindSummary:
		err = r.summary(res)
	case query.KindStats:
		err = r.stats(res, q.top)
	default:
		if req.Stream == nil {
			r.listHeader()
			for i := range res.Rows {
				r.row(&res.Rows[i])
			}
		}
		r.listFooter(res)
	}
	if err != nil {
		return err
	}
	// The answer is printed: damaged files were read up to their damage.
	bw.Flush()
	return res.Scan.DamagedError()
}

// Request builds the query library's request from the options.
func (q *Args) Request(flt *filter.Filter, loc *time.Location) (*query.Request, error) {
	req := &query.Request{Filter: flt, Limit: q.limit, Summary: q.summary, Top: max(q.top, 0)}
	if q.window != "" {
		w, err := query.ParseWindow(q.window, loc)
		if err != nil {
			return nil, fmt.Errorf("%w: -t: %v", ErrUsage, err)
		}
		req.Window = w
	}
	for _, s := range q.stats {
		spec, err := query.ParseStat(s)
		if err != nil {
			return nil, fmt.Errorf("%w: -s: %v", ErrUsage, err)
		}
		req.Stats = append(req.Stats, spec)
	}
	if !q.fs.Changed("top") && len(req.Stats) == 0 {
		req.Top = 0 // listings are not cut unless asked
	}
	if q.bidir && q.bidirGuess {
		return nil, fmt.Errorf("%w: -b and -B exclude each other", ErrUsage)
	}
	switch {
	case q.bidirGuess:
		req.Bidir = query.PairedGuess
	case q.bidir:
		req.Bidir = query.Paired
	}
	switch {
	case q.aggregate != "" && req.Bidir != query.Unidirectional:
		return nil, fmt.Errorf("%w: -A cannot be combined with -b or -B (they pair five-tuples)", ErrUsage)
	case q.aggregate != "":
		spec, err := query.ParseAggSpec(q.aggregate)
		if err != nil {
			return nil, fmt.Errorf("%w: -A: %v", ErrUsage, err)
		}
		req.Aggregate = &spec
	case q.fiveTuple:
		spec := query.FiveTuple()
		req.Aggregate = &spec
	}
	if q.order != "" {
		o, ok := query.ParseOrder(q.order)
		if !ok {
			return nil, fmt.Errorf("%w: -O %q: want tstart, tend, flows, packets, bytes, pps, bps, bpp or duration", ErrUsage, q.order)
		}
		req.Order, req.Ordered = o, true
	}
	return req, nil
}

// outputFormat decides how rows print: csv, json, ndjson, or a text format
// (nfdump's automatic one for -A and -b/-B unless -o names one).
func (q *Args) outputFormat(req *query.Request) (outFormat, error) {
	spec := q.output
	switch spec {
	case "csv", "json", "ndjson", "kflow-csv", "kflow-json":
		return outFormat{special: spec}, nil
	case "":
		spec = "line"
		switch {
		case req.Bidir != query.Unidirectional:
			spec = "biline"
		case req.Aggregate != nil:
			spec = aggFormat(*req.Aggregate)
		}
	}
	f, err := compileFormat(spec)
	if err != nil {
		return outFormat{}, fmt.Errorf("%w: -o: %v", ErrUsage, err)
	}
	return outFormat{text: f}, nil
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
