// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
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
	done := false
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		res, err := flowfile.Scan(f.Path, s.scanOptions(), func(recs []flow.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			st.Read += uint64(len(recs))
			for i := range recs {
				rec := &recs[i]
				if match != nil && !match(rec) {
					continue
				}
				if win && !s.Window.Contains(rec.Start, rec.End) {
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
		})
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
	if s.Limit > 0 {
		return s.Scan(ctx, files, func(r *flow.Record) error { fn(0, r); return nil })
	}
	var st ScanStats
	var match filter.Pred
	if s.Filter != nil && !s.Filter.MatchesAll() {
		match = s.Filter.Pred()
	}
	win := !s.Window.IsZero()
	opts := s.scanOptions()
	type counts struct {
		passed uint64
		_      [56]byte // no false sharing
	}
	passed := make([]counts, flowfile.ScanWorkers(opts))
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	// One set of workers decodes every file's blocks.
	summaries := make([]*flowfile.Summary, len(files))
	err := flowfile.ScanFilesEach(ctx, paths, opts, func(w int, recs []flow.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := uint64(0)
		for i := range recs {
			rec := &recs[i]
			if match != nil && !match(rec) {
				continue
			}
			if win && !s.Window.Contains(rec.Start, rec.End) {
				continue
			}
			n++
			fn(w, rec)
		}
		passed[w].passed += n
		return nil
	}, func(i int, res flowfile.ScanResult, _ error) {
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
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return st, err
		}
		return st, fmt.Errorf("scan: %w", err)
	}
	for _, p := range passed {
		st.Passed += p.passed
	}
	return st, nil
}
