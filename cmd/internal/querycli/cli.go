// SPDX-License-Identifier: Apache-2.0

// Package querycli is the command line of nfdump's questions on flow
// files: nfdump's options, filters and output layouts over the query
// library. "kflow file query" and the kflow-query binary both run it; the
// second links nothing else (no eBPF, web or ClickHouse code), so that it
// starts in about half the time.
package querycli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
)

// ErrUsage marks an error in how the command was called (exit status 2).
var ErrUsage = errors.New("usage")

// Env is what a command may touch: everything a test replaces.
type Env struct {
	Ctx    context.Context
	Stdout io.Writer
	// JSON and Pretty ask for JSON output (indented).
	JSON, Pretty bool
	Log          *slog.Logger
}

// FileArgs are the options shared by the commands that read flow files.
type FileArgs struct {
	Prefix string
	UTC    bool
}

// Register adds --prefix and --utc to fs.
func (f *FileArgs) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Prefix, "prefix", flowfile.DefaultPrefix, "in directories, read files named with this prefix")
	fs.BoolVar(&f.UTC, "utc", false, "print times in UTC instead of local time")
}

// Loc is the time zone times print in.
func (f *FileArgs) Loc() *time.Location {
	if f.UTC {
		return time.UTC
	}
	return time.Local
}

// FilterError turns a filter syntax error into a usage error whose text
// shows the filter with a caret under the offending token.
func FilterError(err error) error {
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: filter: %v\n  %s", ErrUsage, se, strings.ReplaceAll(se.Caret(), "\n", "\n  "))
	}
	return fmt.Errorf("%w: filter: %v", ErrUsage, err)
}

// WarnScan logs what a scan skipped.
func WarnScan(log *slog.Logger, st *query.ScanStats) {
	if st.CorruptBlocks > 0 {
		log.Warn("corrupt blocks skipped", "blocks", st.CorruptBlocks)
	}
	if st.SkippedRecords+st.SkippedElements > 0 {
		log.Warn("nfdump records and elements of unknown types skipped", "records", st.SkippedRecords, "elements", st.SkippedElements)
	}
}

// StartCPUProfile profiles the process into path until stop is called.
func StartCPUProfile(path string) (stop func(), err error) {
	pf, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		pf.Close()
	}, nil
}

// Dump prints every record of the flow files under paths in nfdump's line
// format (JSON lines with e.JSON), the first limit of them (0: all).
func Dump(e *Env, f *FileArgs, paths []string, limit uint64) error {
	line, err := compileFormat("line")
	if err != nil {
		return err
	}
	out := outFormat{text: line}
	if e.JSON {
		out = outFormat{special: "ndjson"}
	}
	bw := bufio.NewWriterSize(e.Stdout, 64<<10)
	defer bw.Flush()
	r := &queryRender{e: e, w: bw, o: &fmtOpts{loc: f.Loc()}, out: out}
	r.listHeader()
	req := &query.Request{Limit: limit, Stream: func(w *query.Row) error { r.row(w); return nil }}
	res, err := (&query.FileBackend{Paths: paths, Prefix: f.Prefix}).Query(e.Ctx, req)
	if err != nil {
		return err
	}
	WarnScan(e.Log, &res.Scan)
	r.listFooter(res)
	return res.Scan.DamagedError()
}

// FmtTime prints t to the millisecond in loc, "-" when zero.
func FmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04:05.000")
}
