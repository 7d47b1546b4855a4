// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
)

func fileCmd() *command {
	return &command{
		name:    "file",
		summary: "inspect flow files written by the collector",
		def:     "stat",
		sub:     []*command{fileStatCmd(), fileDumpCmd(), fileQueryCmd(), fileExpireCmd()},
	}
}

// fileArgs are the options shared by file commands.
type fileArgs struct{ querycli.FileArgs }

func (f *fileArgs) register(fs *pflag.FlagSet) { f.Register(fs) }

// files turns FILE|DIR arguments into flow files: a directory stands for
// every flow file under it (any layout), oldest slot first.
func (f *fileArgs) files(args []string) ([]query.File, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: no FILE or DIR given", errUsage)
	}
	return query.Files(query.Select{Paths: args, Prefix: f.Prefix})
}

// fileStatJSON is one file of "file stat -j".
type fileStatJSON struct {
	Path            string            `json:"path"`
	Format          string            `json:"format"`
	Ident           string            `json:"ident"`
	Created         *time.Time        `json:"created,omitempty"`
	End             string            `json:"end"` // clean, truncated, damaged
	Corrupt         int               `json:"corrupt_blocks"`
	SkippedRecords  uint64            `json:"skipped_records,omitempty"`
	SkippedElements uint64            `json:"skipped_elements,omitempty"`
	Damage          string            `json:"damage,omitempty"`
	Summary         query.SummaryJSON `json:"summary"`
	// Reports: what the exporters said about themselves (options records).
	Reports []flowfile.ExporterReport `json:"reports,omitempty"`
}

func newFileStatJSON(st *query.FileStat) fileStatJSON {
	out := fileStatJSON{Path: st.Path, Format: st.Format, Ident: st.Ident, End: st.End, Corrupt: st.Corrupt,
		SkippedRecords: st.SkippedRecords, SkippedElements: st.SkippedElements, Summary: query.NewSummaryJSON(&st.Summary),
		Reports: st.Reports}
	if !st.Created.IsZero() {
		c := st.Created.UTC()
		out.Created = &c
	}
	if st.Damage != nil {
		out.Damage = st.Damage.Error()
	}
	return out
}

func fileStatCmd() *command {
	f := &fileArgs{}
	return &command{
		name:    "stat",
		aliases: []string{"show"},
		summary: "print what flow files hold: flows, packets and bytes per protocol, first and last seen, exporters (like nfdump -I)",
		usage:   "FILE|DIR...",
		flags:   f.register,
		run: func(e *env, args []string) error {
			files, err := f.files(args)
			if err != nil {
				return err
			}
			total := flowfile.NewSummarizer()
			var stats []fileStatJSON
			var damaged []error
			truncated := 0
			for _, file := range files {
				st, err := query.StatFile(file.Path)
				if err != nil {
					return err
				}
				if st.End != "clean" {
					truncated++
				}
				if st.Damage != nil {
					damaged = append(damaged, st.Damage)
				}
				stats = append(stats, newFileStatJSON(&st))
				total.AddSummary(st.Summary)
			}
			ts := total.Summary()
			if e.json {
				if err := e.printJSON(struct {
					Files []fileStatJSON    `json:"files"`
					Total query.SummaryJSON `json:"total"`
				}{stats, query.NewSummaryJSON(&ts)}); err != nil {
					return err
				}
			} else {
				printStat(e.stdout, stats, ts, truncated, f.Loc())
			}
			return damagedError(damaged)
		},
	}
}

func printStat(w io.Writer, files []fileStatJSON, s flowfile.Summary, truncated int, loc *time.Location) {
	if len(files) == 1 {
		f := &files[0]
		fmt.Fprintf(w, "File       : %s\n", f.Path)
		fmt.Fprintf(w, "Format     : %s\n", f.Format)
		fmt.Fprintf(w, "Ident      : %s\n", f.Ident)
		created := "-"
		if f.Created != nil {
			created = f.Created.In(loc).Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "Created    : %s\n", created)
		fmt.Fprintf(w, "End        : %s\n", f.End)
	} else {
		fmt.Fprintf(w, "Files      : %d\n", len(files))
		if truncated > 0 {
			fmt.Fprintf(w, "Truncated  : %d (counted from their readable blocks)\n", truncated)
		}
	}
	var skippedRecs, skippedElems uint64
	for _, f := range files {
		skippedRecs += f.SkippedRecords
		skippedElems += f.SkippedElements
		if f.Damage != "" {
			fmt.Fprintf(w, "Damaged    : %s\n", f.Damage)
		}
	}
	if skippedRecs+skippedElems > 0 {
		fmt.Fprintf(w, "Skipped    : %d records and %d elements of unknown types (nfdump files)\n", skippedRecs, skippedElems)
	}
	fmt.Fprintf(w, "Blocks     : %d\n", s.Blocks)
	querycli.PrintCounts(w, &s, 11)
	fmt.Fprintf(w, "First      : %s\n", querycli.FmtTime(s.FirstSeen, loc))
	fmt.Fprintf(w, "Last       : %s\n", querycli.FmtTime(s.LastSeen, loc))
	fmt.Fprintf(w, "Sequence failures: %d\n", s.SequenceFailures)
	fmt.Fprintf(w, "Exporters  : %d\n", len(s.Exporters))
	for _, x := range s.Exporters {
		fmt.Fprintf(w, "  %-39s domain %-10d flows %d packets %d bytes %d sequence failures %d\n",
			query.ElemExporter.Format(query.Value{Addr: x.Addr}), x.ObservationDomain, x.Flows, x.Packets, x.Octets, x.SequenceFailures)
	}
	if len(files) == 1 {
		printReports(w, files[0].Reports)
	}
}

// printReports prints what exporters said about themselves.
func printReports(w io.Writer, reps []flowfile.ExporterReport) {
	if len(reps) == 0 {
		return
	}
	fmt.Fprintf(w, "Exporter reports: %d\n", len(reps))
	for _, r := range reps {
		fmt.Fprintf(w, "  %-39s domain %-10d", query.ElemExporter.Format(query.Value{Addr: r.Addr}), r.Domain)
		if r.HasStats {
			fmt.Fprintf(w, " ignored packets %d bytes %d messages %d records %d", r.IgnoredPackets, r.IgnoredOctets, r.Messages, r.Records)
		}
		if len(r.Interfaces) > 0 {
			fmt.Fprintf(w, " interfaces %d", len(r.Interfaces))
		}
		if r.SamplingInterval > 1 {
			fmt.Fprintf(w, " sampling 1/%d", r.SamplingInterval)
		}
		fmt.Fprintln(w)
		for _, e := range r.Earlier {
			fmt.Fprintf(w, "    earlier start %s: ignored packets %d bytes %d messages %d records %d\n",
				e.SystemInit.UTC().Format(time.RFC3339Nano), e.IgnoredPackets, e.IgnoredOctets, e.Messages, e.Records)
		}
	}
}

// damagedError is the command's error for damaged files it read around.
func damagedError(damaged []error) error {
	if len(damaged) == 0 {
		return nil
	}
	return fmt.Errorf("%d damaged file(s), read up to the damage: %w", len(damaged), errors.Join(damaged...))
}

// fileDumpCmd prints every record: "kflow file query" without a filter,
// in nfdump's line format (JSON lines with -j).
func fileDumpCmd() *command {
	f := &fileArgs{}
	var limit uint64
	return &command{
		name:    "dump",
		summary: "print the flow records of flow files, one per line (JSON lines with -j)",
		usage:   "FILE|DIR...",
		flags: func(fs *pflag.FlagSet) {
			f.register(fs)
			fs.Uint64VarP(&limit, "count", "c", 0, "stop after `N` records (0: all)")
		},
		run: func(e *env, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: no FILE or DIR given", errUsage)
			}
			return querycli.Dump(e.query(), &f.FileArgs, args, limit)
		},
	}
}

// fileQueryCmd is nfdump's questions on flow files (querycli), and on
// ClickHouse with --clickhouse.
func fileQueryCmd() *command {
	q := &querycli.Args{OpenClickHouse: func(url string) (query.Backend, error) { return chquery.Open(url) }}
	return &command{
		name:    "query",
		summary: "filter flow files and print records, top-N statistics, aggregations or a summary (like nfdump)",
		usage:   "[FILE|DIR...] [FILTER]",
		flags:   q.Register,
		run:     func(e *env, args []string) error { return q.Run(e.query(), args) },
	}
}
