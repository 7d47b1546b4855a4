// SPDX-License-Identifier: Apache-2.0

package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/nfdump"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// FileStat is what one flow file holds (kflow file stat, nfdump -I).
type FileStat struct {
	Path    string
	Format  string // "kflow", or "nfdump 1.7 lz4" and the like
	Ident   string
	Created time.Time // zero when the file does not say (nfdump 1.6)
	// End: "clean" (closed by its writer), "truncated" (cut short: counted
	// from its readable blocks) or "damaged" (read up to Damage).
	End     string
	Corrupt int // kflow files: corrupt blocks skipped
	// nfdump files: records skipped for an unknown type or extension, and
	// unknown elements left out of records.
	SkippedRecords, SkippedElements uint64
	Damage                          *nfdump.Error
	Summary                         flowfile.Summary
	// Reports are what the exporters said about themselves while the file
	// was written (kflow files closed cleanly).
	Reports []flowfile.ExporterReport
}

// StatFile reads the summary of the flow file at path, of either format:
// the stored one of a kflow file closed cleanly, else one counted from its
// readable records. A damaged nfdump file is not an error: its stat says
// where the damage is (Damage) and counts the records before it.
func StatFile(path string) (FileStat, error) {
	format, err := FileFormat(path)
	if err != nil {
		return FileStat{Path: path}, err
	}
	if format == FormatNfdump {
		return statNfdump(path)
	}
	r, err := flowfile.Open(path, flowfile.ReaderOptions{SkipCorrupt: true})
	if err != nil {
		return FileStat{Path: path}, err
	}
	defer r.Close()
	h := r.Header()
	out := FileStat{Path: path, Format: FormatKflow.String(), Ident: h.Ident, Created: h.Created.UTC(), End: "clean"}
	sum, ok := r.Summary()
	if !ok {
		out.End = "truncated"
		z := flowfile.NewSummarizer()
		for r.Next() {
			z.Add(r.Record())
		}
		if err := r.Err(); err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		sum = z.Summary()
		sum.Blocks = uint64(r.End().Blocks - r.End().Corrupt)
	}
	out.Corrupt = len(r.Corrupt())
	out.Summary = sum
	if ok {
		if out.Reports, err = r.Reports(); err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

func statNfdump(path string) (FileStat, error) {
	out := FileStat{Path: path, Format: FormatNfdump.String()}
	z := flowfile.NewSummarizer()
	res, err := nfdump.Scan(path, nfdump.ScanOptions{}, func(recs []flow.Record) error {
		for i := range recs {
			z.Add(&recs[i])
		}
		return nil
	})
	h := res.Header
	if h.Layout == 0 { // the header itself could not be read
		return out, err
	}
	out.Format = fmt.Sprintf("nfdump %s %s", map[int]string{nfdump.LayoutV1: "1.6", nfdump.LayoutV2: "1.7"}[h.Layout], h.Compression)
	out.Ident, out.Created = h.Ident, h.Created.UTC()
	if h.Created.IsZero() {
		out.Created = time.Time{}
	}
	out.SkippedRecords = res.UnknownRecords + res.UnknownExtensions
	out.SkippedElements = res.UnknownElements
	out.End = "clean"
	if res.Truncated {
		out.End = "truncated"
	}
	var damage *nfdump.Error
	switch {
	case errors.As(err, &damage):
		out.End, out.Damage = "damaged", damage
	case err != nil:
		return out, err
	}
	out.Summary = z.Summary()
	out.Summary.Blocks = uint64(res.Blocks)
	if h.HasStat {
		out.Summary.SequenceFailures = h.Stat.SequenceFailures
	}
	return out, nil
}
