// SPDX-License-Identifier: Apache-2.0

// Package synthdir writes a synthetic mix (tools/synthflow) as a
// collector's directory of rotated flow files over a chosen time span,
// for the web explorer's tests, its screenshots and the benchmarks.
package synthdir

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// Options say what to write.
type Options struct {
	Seed  uint64
	Start time.Time     // the first record's start
	Span  time.Duration // records start evenly over [Start, Start+Span)
	Flows int
	// Interval is the files' rotation (default 5 minutes): a record goes
	// to the file of the slot its end falls in, as a collector writes it.
	Interval time.Duration
	// Exporters take turns as the records' exporter (default one,
	// 198.18.255.1).
	Exporters []netip.Addr
	// Wave scales bytes and packets by 1 + Wave·sin(2π t / 24 h), so the
	// graphs have a daily shape (0: flat).
	Wave float64
	// Cgroups, when set, are the local sockets' cgroup paths the records
	// take in turn ("" for a record without one; flow.Record.Cgroup).
	Cgroups []string
}

// Write writes the records into dir (flat layout, names kflow.STAMP in
// UTC, each file with its rollups as the collector writes them) and
// returns them, in file order, unless keep is false (large
// benchmarks).
func Write(dir string, o Options, keep bool) ([]flow.Record, error) {
	if o.Interval == 0 {
		o.Interval = 5 * time.Minute
	}
	if len(o.Exporters) == 0 {
		o.Exporters = []netip.Addr{netip.MustParseAddr("198.18.255.1")}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := synthflow.NewMix(synthflow.Options{Seed: o.Seed})
	var (
		all  []flow.Record
		w    *flowfile.Writer
		slot time.Time
	)
	closeFile := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	// Records are made in start order; a file holds the records whose end
	// falls in its slot, so each slot's records are collected first.
	pending := map[time.Time][]flow.Record{}
	flush := func(upTo time.Time) error {
		for s := slot; !s.After(upTo); s = s.Add(o.Interval) {
			recs := pending[s]
			delete(pending, s)
			if len(recs) == 0 {
				continue
			}
			if err := closeFile(); err != nil {
				return err
			}
			name := filepath.Join(dir, "kflow."+s.UTC().Format("200601021504"))
			var err error
			if w, err = flowfile.Create(name, flowfile.WriterOptions{Ident: "synthdir", Created: s,
				Aux: query.NewRollupBuilders}); err != nil {
				return err
			}
			for i := range recs {
				if err := w.Append(&recs[i]); err != nil {
					return err
				}
			}
			if keep {
				all = append(all, recs...)
			}
		}
		slot = upTo.Add(o.Interval)
		return nil
	}
	slot = o.Start.Truncate(o.Interval)
	const maxDuration = 2 * time.Minute
	for i := range o.Flows {
		r := m.Record()
		d := min(r.End.Sub(r.Start), maxDuration)
		r.Start = o.Start.Add(time.Duration(float64(o.Span) * float64(i) / float64(o.Flows))).Truncate(time.Millisecond)
		r.End = r.Start.Add(d)
		r.Exporter = o.Exporters[i%len(o.Exporters)]
		if len(o.Cgroups) > 0 {
			r.Cgroup = o.Cgroups[i%len(o.Cgroups)]
			if r.Cgroup != "" {
				r.CgroupID = uint64(1000 + i%len(o.Cgroups))
			}
		}
		if o.Wave != 0 {
			f := 1 + o.Wave*math.Sin(2*math.Pi*float64(r.Start.Unix()%86400)/86400)
			r.Packets = max(1, uint64(float64(r.Packets)*f))
			r.Octets = max(r.Packets*40, uint64(float64(r.Octets)*f))
		}
		s := r.End.Truncate(o.Interval)
		pending[s] = append(pending[s], r)
		// Ends lie at most maxDuration past starts: slots before that are
		// complete.
		if done := r.Start.Truncate(o.Interval).Add(-o.Interval); !done.Before(slot) {
			if err := flush(done); err != nil {
				return nil, fmt.Errorf("synthdir: %w", err)
			}
		}
	}
	if err := flush(o.Start.Add(o.Span + maxDuration + o.Interval)); err != nil {
		return nil, fmt.Errorf("synthdir: %w", err)
	}
	if err := closeFile(); err != nil {
		return nil, fmt.Errorf("synthdir: %w", err)
	}
	return all, nil
}
