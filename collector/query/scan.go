// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/nfdump"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Scanner reads the records of files through a filter and a time window.
type Scanner struct {
	Filter *filter.Filter // nil: every record
	Window Window
	// Limit stops the scan after that many records passed (nfdump's -c);
	// 0 for no limit.
	Limit uint64
	// Workers decode blocks in parallel (default GOMAXPROCS).
	Workers int
	// Idents sets each record's Ident to its file's (filters and
	// statistics of idents need it).
	Idents bool
	// Fields are the record fields the callback reads (0: all). The
	// filter's and the window's are added; the others are left zero, and
	// decoding fewer fields is faster.
	Fields flowfile.Fields
}

// scanOptions returns the flowfile options: the fields to decode.
func (s *Scanner) scanOptions() flowfile.ScanOptions {
	opts := flowfile.ScanOptions{Workers: s.Workers}
	if s.Fields != 0 {
		opts.Fields = s.Fields
		if s.Filter != nil {
			opts.Fields |= s.Filter.Fields()
		}
		if !s.Window.IsZero() {
			opts.Fields |= flowfile.FieldTimes
		}
	}
	return opts
}

// NumWorkers is the number of workers ScanEach calls its function on.
func (s *Scanner) NumWorkers() int { return flowfile.ScanWorkers(s.scanOptions()) }

// ScanStats counts what a scan did.
type ScanStats struct {
	Files         int
	Blocks        int    // whole blocks, readable or corrupt
	Read          uint64 // records read
	Passed        uint64 // records that passed filter and window
	CorruptBlocks int    // skipped
	Truncated     int    // files that ended without a summary
	Rollups       int    // files answered from their rollups, not read
	// Summaries holds the stored summary of each file closed cleanly, for
	// totals a record scan cannot know (sequence failures).
	Summaries []flowfile.Summary
	// In nfdump files, never fatal: records skipped for their unknown type
	// or extension, and elements of an unknown type left out of the
	// records they were in.
	SkippedRecords, SkippedElements uint64
	// Damaged are the files that could not be read to their end (nfdump
	// files, whose blocks have no checksums to skip a bad one by): their
	// records before the damage passed, and the other files were read.
	Damaged []*nfdump.Error
}

// DamagedError is the error of the damaged files a scan read around, nil
// when there were none.
func (st *ScanStats) DamagedError() error {
	if len(st.Damaged) == 0 {
		return nil
	}
	errs := make([]error, len(st.Damaged))
	for i, d := range st.Damaged {
		errs[i] = d
	}
	return fmt.Errorf("%d damaged file(s), read up to the damage: %w", len(errs), errors.Join(errs...))
}

// setIdent sets the records' Ident.
func setIdent(recs []flow.Record, ident string) {
	for i := range recs {
		recs[i].Ident = ident
	}
}

// FileIdent returns the ident in the header of a flow file of the format.
func FileIdent(path string, format Format) (string, error) {
	if format == FormatNfdump {
		r, err := nfdump.Open(path)
		if err != nil {
			return "", err
		}
		defer r.Close()
		return r.Header().Ident, nil
	}
	r, err := flowfile.Open(path, flowfile.ReaderOptions{SkipCorrupt: true})
	if err != nil {
		return "", err
	}
	defer r.Close()
	return r.Header().Ident, nil
}

// scanNfdump reads the nfdump file f, calling each with its records in
// file order, and counts what it read into st. Damage is noted in st, not
// returned; the error is each's, or the file's that could not be opened.
func (s *Scanner) scanNfdump(f File, st *ScanStats, each func(recs []flow.Record) error) error {
	res, err := nfdump.Scan(f.Path, nfdump.ScanOptions{Workers: s.Workers}, each)
	st.Files++
	st.Blocks += res.Blocks
	st.SkippedRecords += res.UnknownRecords + res.UnknownExtensions
	st.SkippedElements += res.UnknownElements
	if res.Truncated {
		st.Truncated++
	}
	var damage *nfdump.Error
	if errors.As(err, &damage) {
		st.Damaged = append(st.Damaged, damage)
		return nil
	}
	return err
}

// Scan calls fn for every record that passes, file by file in order, on
// the calling goroutine; blocks are decompressed and decoded on Workers
// goroutines (flowfile.Scan). The record is only valid during the call.
// An error fn returns ends the scan with it. Corrupt blocks are skipped
// and counted; a file that cannot be opened or read is an error.
func (s *Scanner) Scan(ctx context.Context, files []File, fn func(r *flow.Record) error) (ScanStats, error) {
	var st ScanStats
	var match filter.Pred
	if s.Filter != nil && !s.Filter.MatchesAll() {
		match = s.Filter.Pred()
	}
	win := !s.Window.IsZero()
	pass := func(rec *flow.Record) bool {
		return (match == nil || match(rec)) && (!win || s.Window.Contains(rec.Start, rec.End))
	}
	// The filter and the window are applied on the flow files' decoding
	// workers (flowfile.ScanOptions.Keep), unless records need their
	// file's ident first.
	filtering := match != nil || win
	opts := s.scanOptions()
	if filtering && !s.Idents {
		// The workers decode the fields pass reads first, and the others
		// only for the chunks of records where it keeps one.
		opts.Keep = pass
		if match != nil {
			opts.KeepFields = s.Filter.Fields()
		}
		if win {
			opts.KeepFields |= flowfile.FieldTimes
		}
	}
	done := false
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		format, err := FileFormat(f.Path)
		if err != nil {
			return st, fmt.Errorf("scan: %w", err)
		}
		ident := ""
		if s.Idents {
			if ident, err = FileIdent(f.Path, format); err != nil {
				return st, fmt.Errorf("scan: %w", err)
			}
		}
		// kept: the records come filtered (opts.Keep). A flow file's
		// records read are counted by flowfile.Scan, whole blocks at a
		// time.
		flowFile := format != FormatNfdump
		kept := flowFile && opts.Keep != nil
		each := func(recs []flow.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !flowFile {
				st.Read += uint64(len(recs))
			}
			if s.Idents {
				setIdent(recs, ident)
			}
			for i := range recs {
				rec := &recs[i]
				if filtering && !kept && !pass(rec) {
					continue
				}
				st.Passed++
				if err := fn(rec); err != nil {
					return err
				}
				if s.Limit > 0 && st.Passed >= s.Limit {
					done = true
					return flowfile.ErrStopScan
				}
			}
			return nil
		}
		if format == FormatNfdump {
			if err := s.scanNfdump(f, &st, each); err != nil {
				return st, fmt.Errorf("scan: %w", err)
			}
			if done {
				break
			}
			continue
		}
		res, err := flowfile.Scan(f.Path, opts, each)
		st.Read += res.Records
		st.Files++
		st.Blocks += res.Blocks
		st.CorruptBlocks += res.Corrupt
		if res.Summary != nil {
			st.Summaries = append(st.Summaries, *res.Summary)
		} else if !done {
			st.Truncated++
		}
		if err != nil {
			return st, fmt.Errorf("scan: %w", err)
		}
		if done {
			break
		}
	}
	return st, nil
}

// ScanEach is Scan for order-independent work (counting, statistics): fn
// is called on the workers that decode the blocks, several at once, with
// the index of the calling worker (0 ≤ worker < NumWorkers()), so that
// each worker can count into its own accumulator. With a Limit, which
// depends on the order, it is Scan with worker 0.
func (s *Scanner) ScanEach(ctx context.Context, files []File, fn func(worker int, r *flow.Record)) (ScanStats, error) {
	return s.scanBlocks(ctx, files, false, false, func(w int, b *flowfile.Block, sel []int32) {
		recs := b.Records
		for _, k := range sel {
			fn(w, &recs[k])
		}
	})
}

// scanBlocks is ScanEach a piece of a block at a time: fn gets the piece
// with the positions of its records that passed (sel, in order), and,
// with indexes, the block's address dictionary and indexes
// (flowfile.ScanOptions.AddrIndexes) when the file has them. With a
// Limit (which depends on the order), or when records need their file's
// ident, it is Scan, a record at a time, with worker 0.
//
// With columns, fn may get the pieces of flow files as columns
// (flowfile.ScanOptions.Columns; Block.Records nil), filtered on the
// columns: when the fields (Fields and the filter's) are columns, the
// filter has a column matcher and there is no window. It must take
// records too (damaged and nfdump files).
func (s *Scanner) scanBlocks(ctx context.Context, files []File, indexes, columns bool, fn func(worker int, b *flowfile.Block, sel []int32)) (ScanStats, error) {
	if s.Limit > 0 || s.Idents {
		one, sel := make([]flow.Record, 1), []int32{0}
		return s.Scan(ctx, files, func(r *flow.Record) error {
			one[0] = *r
			fn(0, &flowfile.Block{Records: one}, sel)
			return nil
		})
	}
	var st ScanStats
	var match filter.Pred
	if s.Filter != nil && !s.Filter.MatchesAll() {
		match = s.Filter.Pred()
	}
	win := !s.Window.IsZero()
	opts := s.scanOptions()
	opts.AddrIndexes = indexes
	type perWorker struct {
		passed uint64
		sel    []int32
		cols   *filter.ColumnMatcher
		_      [32]byte // no false sharing
	}
	per := make([]perWorker, flowfile.ScanWorkers(opts))
	if columns && s.Fields != 0 && opts.Fields&^flowfile.ColumnFields == 0 && !win {
		f := s.Filter
		if f == nil {
			f = filter.MustParse("")
		}
		opts.Columns = true
		for i := range per {
			m, ok := f.ColumnMatcher()
			if !ok {
				opts.Columns = false
				break
			}
			per[i].cols = m
		}
	}
	var paths []string
	var nf []File
	for _, f := range files {
		format, err := FileFormat(f.Path)
		if err != nil {
			return st, fmt.Errorf("scan: %w", err)
		}
		if format == FormatNfdump {
			nf = append(nf, f)
		} else {
			paths = append(paths, f.Path)
		}
	}
	each := func(w int, b *flowfile.Block) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs := b.Records
		sel := per[w].sel[:0]
		if recs == nil {
			sel = per[w].cols.Match(b, sel)
		}
		for i := range recs {
			rec := &recs[i]
			if match != nil && !match(rec) {
				continue
			}
			if win && !s.Window.Contains(rec.Start, rec.End) {
				continue
			}
			sel = append(sel, int32(i))
		}
		per[w].sel = sel
		per[w].passed += uint64(len(sel))
		if len(sel) > 0 {
			fn(w, b, sel)
		}
		return nil
	}
	// One set of workers decodes every flow file's blocks.
	summaries := make([]*flowfile.Summary, len(paths))
	err := flowfile.ScanFilesBlocks(ctx, paths, opts, each, func(i int, res flowfile.ScanResult, _ error) {
		st.Files++
		st.Blocks += res.Blocks
		st.Read += res.Records
		st.CorruptBlocks += res.Corrupt
		if res.Summary != nil {
			summaries[i] = res.Summary
		} else {
			st.Truncated++
		}
	})
	for _, s := range summaries {
		if s != nil {
			st.Summaries = append(st.Summaries, *s)
		}
	}
	// nfdump files after them, each decompressed on workers of its own
	// and handed over here, as worker 0 (the others are done).
	for _, f := range nf {
		if err != nil {
			break
		}
		err = s.scanNfdump(f, &st, func(recs []flow.Record) error {
			st.Read += uint64(len(recs))
			return each(0, &flowfile.Block{Records: recs})
		})
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return st, err
		}
		return st, fmt.Errorf("scan: %w", err)
	}
	for _, p := range per {
		st.Passed += p.passed
	}
	return st, nil
}
