// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"errors"
	"fmt"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// FileSink writes records to rotated flow files with the bundled
// collector's writer, in-process: the exporter's embedded mode.
type FileSink struct {
	r *flowfile.Rotator
	// Rejected counts records the files could not store.
	Rejected uint64
}

// NewFileSink opens the flow-file rotator (finishing any .current files a
// crash left behind).
func NewFileSink(opts flowfile.RotatorOptions) (*FileSink, error) {
	if opts.Writer.Aux == nil {
		opts.Writer.Aux = query.NewRollupBuilders // what long-range series read
	}
	r, err := flowfile.NewRotator(opts)
	if err != nil {
		return nil, fmt.Errorf("flow files in %s: %w", opts.Dir, err)
	}
	return &FileSink{r: r}, nil
}

// Write appends the records and flushes them to disk as a block, so a
// crash loses at most one drain interval.
func (s *FileSink) Write(recs []flow.Record) error {
	var first error
	var rejected uint64
	for i := range recs {
		err := s.r.Append(&recs[i])
		if err == nil {
			continue
		}
		// A rejected record is not stored; any other error is a failed
		// block write whose records stay buffered and are retried.
		if errors.Is(err, flowfile.ErrRejected) {
			rejected++
		}
		if first == nil {
			first = err
		}
	}
	s.Rejected += rejected
	flushErr := s.r.Flush()
	if first != nil && rejected > 0 {
		first = fmt.Errorf("%d records not stored: %w", rejected, first)
	}
	return errors.Join(first, flushErr)
}

// Report keeps what the exporter says about itself in the current file,
// as the collector keeps an exporter's options records.
func (s *FileSink) Report(u *flowfile.ExporterReport) { s.r.Report(u) }

// Close finishes the current files.
func (s *FileSink) Close() error { return s.r.Close() }
